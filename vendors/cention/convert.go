package cention

import (
	"context"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// handle turns one server frame into events. An error stops the chat's
// socket: errDone (Permanent) when the chat is over or an event could not
// be stored, a Permanent ErrChatLost when Cention dropped the chat.
func (s *session) handle(ctx context.Context, f serverFrame) error {
	switch f.Event {
	case evNewMessage, evChatMessage:
		return s.batch(ctx, decodeBatch(f.Args))
	case evPreview:
		return s.preview(ctx, decodePreview(f.arg0()))
	case evQueue:
		return s.queue(ctx, decodeQueue(f.arg0()))
	case evUnavailable, evQueueFull:
		return s.noAgent(ctx, f.Event)
	case evOwnerEnds, evClosed, evFinish:
		return s.ended(ctx, "agent", "", f.Event)
	case evExpired:
		return s.ended(ctx, "expired", s.v.cfg.ExpiredNotice, f.Event)
	case evClientEnds:
		return s.ended(ctx, "customer", "", f.Event)
	case evSent, evAcked:
		return nil // taken by peek
	}
	if a, ok := decodeAnswer(f.arg0()); ok && a.Error != "" {
		if a.Error == errNoSession {
			return connector.Permanent(chatLost(s.token(), a.Error))
		}
		s.log.Warn("cention error event", zap.String("event", f.Event), zap.String("error", a.Error))
		return nil
	}
	if f.Event != evRegister && f.Event != evResume {
		s.log.Debug("cention event ignored", zap.String("event", f.Event))
	}
	return nil
}

// batch handles a batch of messages: the assigned agent first, then each
// message not seen before, in the order of their sent time. The customer's
// own lines are never shown to the customer; a system event inside a text
// is acted on and never shown as text.
func (s *session) batch(ctx context.Context, b batch) error {
	if b.Agent != "" {
		if err := s.agentIs(ctx, b.Agent); err != nil {
			return err
		}
	}
	for _, m := range b.Messages {
		if m.ID == "" && m.UMID == "" {
			m.ID = contentKey(m)
		}
		if s.seen.dup(m) {
			continue
		}
		if !m.fromCustomer() {
			if err := s.message(ctx, m); err != nil {
				return err // not marked seen: the resume's history offers it again
			}
		}
		s.seen.add(m)
	}
	return nil
}

// message handles one message that is not the customer's own.
func (s *session) message(ctx context.Context, m chatMsg) error {
	if ev, err := decodeSystemText(m.Text); err == nil {
		return s.systemText(ctx, m, ev)
	}
	if strings.EqualFold(m.Sender, "SYSTEM") {
		s.log.Debug("cention system line not relayed", zap.Int("bytes", len(m.Text)))
		return nil
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil
	}
	if m.Agent != "" {
		if err := s.agentIs(ctx, m.Agent); err != nil {
			return err
		}
	}
	s.typing = false
	format := connector.FormatPlain
	if looksHTML(m.Text) {
		format = connector.FormatHTML
	}
	return s.emit(ctx, connector.Event{Type: connector.EventText, Text: m.Text, Format: format,
		Agent: s.agentName(), SourceID: sourceID(m)})
}

// systemText acts on a system event found in a message text.
func (s *session) systemText(ctx context.Context, m chatMsg, ev sysEvent) error {
	switch ev.Event {
	case evOwnerEnds:
		return s.ended(ctx, "agent", "", ev.Event)
	case evExpired:
		return s.ended(ctx, "expired", s.v.cfg.ExpiredNotice, ev.Event)
	case evClientEnds:
		return s.ended(ctx, "customer", "", ev.Event)
	case fileEvent:
		link := s.v.cfg.fileURL(ev.File.FileDownload)
		if link == "" {
			s.log.Info("cention file notice without a usable link", zap.String("file", ev.File.FileName))
			return nil
		}
		if m.Agent != "" {
			if err := s.agentIs(ctx, m.Agent); err != nil {
				return err
			}
		}
		return s.emit(ctx, connector.Event{Type: connector.EventText, Agent: s.agentName(), SourceID: sourceID(m),
			Attachments: []connector.Attachment{{URL: link, Name: ev.File.FileName}}})
	}
	s.log.Debug("cention system event in a message ignored", zap.String("event", ev.Event))
	return nil
}

// agentIs notes the agent named by a batch or a line: the first one has
// joined, another one took the chat over.
func (s *session) agentIs(ctx context.Context, name string) error {
	s.mu.Lock()
	prev := s.state.Agent
	s.state.Agent = name // the event carries it in its session
	s.mu.Unlock()
	if prev == name {
		return nil
	}
	typ := connector.EventJoined
	if prev != "" {
		typ = connector.EventTransferred
	}
	s.log.Info("cention agent", zap.String("event", string(typ)), zap.String("agent", name))
	if err := s.emit(ctx, connector.Event{Type: typ, Agent: name}); err != nil {
		s.mu.Lock()
		s.state.Agent = prev // not stored: told again when the history comes back
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *session) agentName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Agent
}

func (s *session) preview(ctx context.Context, typing bool) error {
	if typing == s.typing {
		return nil
	}
	s.typing = typing
	return s.emit(ctx, connector.Event{Type: connector.EventTyping, Typing: typing})
}

func (s *session) queue(ctx context.Context, pos int) error {
	if pos == 0 || pos == s.queuePos || s.agentName() != "" {
		return nil
	}
	s.queuePos = pos
	return s.emit(ctx, connector.Event{Type: connector.EventQueue, Position: pos})
}

// noAgent: nobody will take the chat (agent unavailable, queue full). The
// chat is closed at Cention and the core told, with whether a message can
// be left. Once an agent has joined, "agent unavailable" changes nothing.
func (s *session) noAgent(ctx context.Context, event string) error {
	if s.agentName() != "" {
		s.log.Info("cention says no agent after one joined; ignored", zap.String("event", event))
		return nil
	}
	s.mu.Lock()
	s.state.NoAgent = true
	s.mu.Unlock()
	s.finishSocket(ctx)
	s.log.Info("cention: no agent for the chat", zap.String("event", event))
	if err := s.emit(ctx, connector.Event{Type: connector.EventNoAgent, LeaveMessage: s.v.cfg.OfflineMessages,
		Text: "Cention: " + event}); err != nil {
		return err
	}
	return connector.Permanent(errDone)
}

// ended: the chat is over at Cention. text, when set, is what the customer
// reads instead of the core's end notice.
func (s *session) ended(ctx context.Context, reason, text, event string) error {
	s.mu.Lock()
	s.ending, s.state.Ended = true, true
	s.mu.Unlock()
	s.log.Info("cention chat ended", zap.String("event", event), zap.String("reason", reason))
	if err := s.emit(ctx, connector.Event{Type: connector.EventEnded, Reason: reason, Text: text}); err != nil {
		return err
	}
	return connector.Permanent(errDone)
}

// finishSocket closes the chat at Cention over the live socket, best effort.
func (s *session) finishSocket(ctx context.Context) {
	s.mu.Lock()
	s.ending = true
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return
	}
	if err := c.send(ctx, typeClose, nil); err != nil {
		s.log.Debug("cention close chat not sent", zap.Error(err))
	}
}

// sourceID is an agent line's id for the core's de-duplication: Cention's
// message id, else its umid, else a hash of its time and text.
func sourceID(m chatMsg) string {
	switch {
	case m.ID != "" && !strings.HasPrefix(m.ID, "h:"):
		return "id:" + m.ID
	case m.UMID != "":
		return "umid:" + m.UMID
	}
	return contentKey(m)
}

// contentKey names a message that has neither id nor umid by its sent time
// and a hash of its text.
func contentKey(m chatMsg) string {
	h := fnv.New64a()
	h.Write([]byte(m.Text))
	return "h:" + strconv.FormatFloat(m.Sent, 'f', -1, 64) + ":" + strconv.FormatUint(h.Sum64(), 16)
}

// htmlMarkup finds the markup an agent's HTML line carries. A plain line with
// "a < b" or "Tom & Jerry" has none of it.
var htmlMarkup = regexp.MustCompile(`(?i)</?[a-z][a-z0-9]*(?:\s[^<>]*)?/?>|&(?:[a-z]{2,8}|#[0-9]{1,6}|#x[0-9a-f]{1,5});`)

// looksHTML reports whether an agent's text is HTML (Cention's agent editor
// sends HTML; a plain line passes as plain text).
func looksHTML(s string) bool { return htmlMarkup.MatchString(s) }

// refusal says why canchat's answer allows no chat now ("" when one can)
// and whether it is because the chat is closed (outside its hours).
func (c canChat) refusal() (why string, closed bool) {
	switch {
	case c.Error != "":
		return "Cention: " + c.Error, false
	case !c.ChatOpen:
		return "the chat is closed", true
	case c.AgentsAvailable != nil && *c.AgentsAvailable <= 0:
		return "no agent is available", false
	}
	return "", false
}
