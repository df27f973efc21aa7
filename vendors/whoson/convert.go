package whoson

import (
	"context"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxLine is the longest Message text the server takes, in characters.
const maxLine = 4000

// lineKind is what a newline event is to the adapter.
type lineKind int

const (
	lineSkip        lineKind = iota // linesays, pagingmessage, unknown
	lineEcho                        // linev: our own line, echoed back
	lineOperator                    // lineo: relay as text
	lineTranslation                 // linet: the translation of the previous lineo
	lineWaiting                     // lineo linewaitingN: relay as a notice
	lineFinal                       // lineo final: no agent
	lineQueue                       // queuemessage: queue notice
)

// classify maps a newline Classname to what the adapter does with it.
func classify(l lineData) lineKind {
	cls := l.classes()
	has := func(name string) bool {
		for _, c := range cls {
			if c == name {
				return true
			}
		}
		return false
	}
	switch {
	case has("final"):
		return lineFinal
	case has("linewaiting1"), has("linewaiting2"), hasPrefixWord(cls, "linewaiting"):
		return lineWaiting
	case has("queuemessage"):
		return lineQueue
	case has("linet"):
		return lineTranslation
	case has("lineo"):
		return lineOperator
	case has("linev"):
		return lineEcho
	default:
		return lineSkip
	}
}

func hasPrefixWord(words []string, prefix string) bool {
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			return true
		}
	}
	return false
}

// lineSourceID names the n-th newline event (1-based) of a chat. The Chat API
// gives lines no id, so the id is the chat uid, the line's position in the
// chat and a hash of its content: stable when the same line is seen again,
// and distinct for new lines even if a position were ever counted twice.
func lineSourceID(chatUID string, n int, content string) string {
	h := fnv.New32a()
	h.Write([]byte(content))
	return chatUID + ":" + strconv.Itoa(n) + ":" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

// queuePosition reads a position from "2" or "You are in position 3 of 10":
// the first number after the word "position", else the first number. It
// returns 0, meaning no position, when there is none, or when the number is
// negative ("-1"), zero, fractional ("2.5") or above maxQueuePosition.
func queuePosition(s string) int {
	// ASCII-only lower case keeps byte offsets: strings.ToLower does not on
	// invalid UTF-8, and the index is used on s.
	if i := strings.Index(asciiLower(s), "position"); i >= 0 {
		if n, ok := firstNumber(s[i:]); ok {
			return n
		}
	}
	n, _ := firstNumber(s)
	return n
}

// asciiLower lower-cases the ASCII letters of s, leaving every other byte.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// firstNumber parses the first run of ASCII digits in s as a position: ok
// is false when there is none, and n is 0 when the run is not a plausible
// position (signed, part of a decimal, out of range).
func firstNumber(s string) (n int, ok bool) {
	start := strings.IndexFunc(s, func(r rune) bool { return '0' <= r && r <= '9' })
	if start < 0 {
		return 0, false
	}
	end := start
	for end < len(s) && '0' <= s[end] && s[end] <= '9' {
		end++
	}
	if start > 0 && (s[start-1] == '-' || s[start-1] == '.' || s[start-1] == '+') ||
		end < len(s) && s[end] == '.' && end+1 < len(s) && '0' <= s[end+1] && s[end+1] <= '9' {
		return 0, true
	}
	n, err := strconv.Atoi(s[start:end])
	if err != nil || n <= 0 || n > maxQueuePosition {
		return 0, true
	}
	return n, true
}

// splitText cuts text into parts of at most max characters (runes), at the
// last white space before the limit when there is one in the second half of
// the part, else hard at the limit. White space at a cut is dropped; nothing
// else is lost. Empty text gives no parts.
func splitText(text string, max int) []string {
	text = strings.TrimSpace(text)
	var parts []string
	for text != "" {
		if utf8.RuneCountInString(text) <= max {
			return append(parts, text)
		}
		cut := byteOffset(text, max)
		if sp := lastSpace(text[:cut]); sp > 0 && utf8.RuneCountInString(text[:sp]) > max/2 {
			cut = sp
		}
		parts = append(parts, strings.TrimRightFunc(text[:cut], unicode.IsSpace))
		text = strings.TrimLeftFunc(text[cut:], unicode.IsSpace)
	}
	return parts
}

// byteOffset is the byte index of rune n in s (len(s) when s is shorter).
func byteOffset(s string, n int) int {
	i := 0
	for j := range s {
		if i == n {
			return j
		}
		i++
	}
	return len(s)
}

// lastSpace is the byte index of the last white-space rune in s, or -1.
func lastSpace(s string) int {
	return strings.LastIndexFunc(s, unicode.IsSpace)
}

// visitorText is what a customer message becomes at WhosOn: its text, and
// the links of its attachments (the Chat API's File command needs an upload
// to the WhosOn document store, which connectord does not do).
func visitorText(m *connector.Message) string {
	text := m.Text
	for _, a := range m.Attachments {
		if a.URL == "" {
			continue
		}
		if text != "" {
			text += "\n"
		}
		text += a.URL
	}
	return text
}

// handle dispatches one event; false means the chat is over.
func (s *session) handle(ctx context.Context, ev event) bool {
	if ev.Name != evNewLine && !s.flushHeld(ctx) {
		return false
	}
	switch ev.Name {
	case evNewLine:
		return s.line(ctx, ev)
	case evOperatorJoined:
		return s.joined(ctx, ev)
	case evTyping, evTypingStop:
		return s.emit(ctx, connector.Event{Type: connector.EventTyping, Typing: ev.Name == evTyping})
	case evQueue:
		return s.queue(ctx, queuePosition(ev.text()), "")
	case evQuit:
		return s.quit(ctx)
	case evNotAccepted:
		return s.noAgent(ctx, clipText(ev.text(), maxNoticeText), true)
	case evError:
		return s.serverError(ctx, clipText(ev.text(), maxErrorText))
	case evRequestFile:
		s.log.Info("operator asked for a file; the customer's channel cannot upload one",
			zap.String("types", clipText(ev.text(), maxClassname)))
	case evRequestField:
		return s.requestField(ctx, ev)
	default:
		s.log.Debug("whoson event skipped", zap.String("event", ev.Name))
	}
	return true
}

// line dispatches a newline event by its class.
func (s *session) line(ctx context.Context, ev event) bool {
	s.mu.Lock()
	s.state.Lines++
	n := s.state.Lines
	s.mu.Unlock()
	l, err := lineOf(ev)
	if err != nil {
		s.log.Warn("skipping malformed whoson line", zap.Error(err))
		return true
	}
	kind := classify(l)
	if kind != lineTranslation && !s.flushHeld(ctx) {
		return false
	}
	switch kind {
	case lineOperator:
		if s.v.cfg.Translation {
			s.hold(ctx, n, l.Content)
			return true
		}
		return s.text(ctx, connector.EventText, n, l.Content)
	case lineTranslation:
		if !s.v.cfg.Translation {
			return true
		}
		s.stopHeld()
		return s.text(ctx, connector.EventText, n, l.Content)
	case lineEcho:
		s.echoed()
		return true
	case lineWaiting:
		return s.text(ctx, connector.EventNotice, n, l.Content)
	case lineFinal:
		return s.noAgent(ctx, l.Content, true)
	case lineQueue:
		return s.queue(ctx, queuePosition(l.Content), l.Content)
	default:
		s.log.Debug("whoson line skipped", zap.String("class", l.Classname))
		return true
	}
}

// text relays line n as agent text or a notice, with the session (and its
// line count) in the same commit.
func (s *session) text(ctx context.Context, typ connector.EventType, n int, content string) bool {
	s.mu.Lock()
	uid := s.state.ChatUID
	s.mu.Unlock()
	return s.emit(ctx, connector.Event{Type: typ, Text: content, Format: connector.FormatHTML,
		SourceID: lineSourceID(uid, n, content), Session: s.snapshot()})
}

// flushHeld relays a held operator line whose translation did not come.
func (s *session) flushHeld(ctx context.Context) bool {
	h := s.held
	if h == nil {
		return true
	}
	s.stopHeld()
	return s.text(ctx, connector.EventText, h.n, h.content)
}

func (s *session) stopHeld() {
	if s.held != nil {
		s.held.timer.Stop()
		s.held = nil
	}
}

// joined reports the first operator as joined and a different later one as
// a transfer (the Chat API has no transfer event of its own).
func (s *session) joined(ctx context.Context, ev event) bool {
	op, err := operatorOf(ev)
	if err != nil {
		s.log.Warn("skipping malformed operatorjoined", zap.Error(err))
		return true
	}
	typ := connector.EventJoined
	switch {
	case s.agent == "":
	case s.agent == op.Name:
		return true // seen again after a reconnect
	default:
		typ = connector.EventTransferred
	}
	s.agent = op.Name
	// The join may come before Open has returned and its session been stored;
	// carrying the session here commits it with the state it moves the
	// conversation to, so a crash in between cannot leave an active chat the
	// next process knows nothing about.
	return s.emit(ctx, connector.Event{Type: typ, Agent: op.Name, Session: s.snapshot()})
}

// queue relays a queue position (or the server's queue text) at most once
// per queue_notice_interval. With neither a position (pos 0) nor a text
// there is nothing new to tell: the customer already had the queued notice,
// and a notice template reading .Position would say "number 0".
func (s *session) queue(ctx context.Context, pos int, text string) bool {
	if pos <= 0 && strings.TrimSpace(text) == "" {
		s.log.Debug("whoson queue event without a position skipped")
		return true
	}
	now := time.Now()
	if !s.lastQueue.IsZero() && now.Sub(s.lastQueue) < s.v.cfg.QueueNoticeInterval {
		return true
	}
	s.lastQueue = now
	return s.emit(ctx, connector.Event{Type: connector.EventQueue, Position: pos, Text: text})
}

// noAgent reports that no agent will take the chat. quit ends the chat at
// the server first, as the spec asks after a final waiting line or a queue
// time-out. The socket stays only when a message can be left over it.
func (s *session) noAgent(ctx context.Context, text string, quit bool) bool {
	s.mu.Lock()
	if s.state.NoAgent { // a final waiting line and a notaccepted: tell once
		s.mu.Unlock()
		return s.leave
	}
	s.state.NoAgent, s.state.LeaveMessage = true, s.leave
	leave, c, sid := s.leave, s.conn, s.state.SessionID
	s.mu.Unlock()
	s.wantsConn.Store(false)
	if quit && c != nil {
		if err := c.send(ctx, quitCmd(s.v.cfg, sid)); err != nil {
			s.log.Warn("whoson Quit after no agent not sent", zap.Error(err))
		}
	}
	stored := s.emit(ctx, connector.Event{Type: connector.EventNoAgent, LeaveMessage: leave, Text: text,
		Session: s.snapshot()})
	return stored && leave
}

// requestField tells the customer what the operator asked for; the answer
// comes back as an ordinary line.
func (s *session) requestField(ctx context.Context, ev event) bool {
	f, err := fieldOf(ev)
	if err != nil || f.Prompt == "" {
		s.log.Info("operator asked for a field", zap.String("field", f.FieldName))
		return true
	}
	return s.emit(ctx, connector.Event{Type: connector.EventNotice, Text: f.Prompt})
}

// quit is the operator (or the server) ending the chat. After no agent took
// it, the conversation waits for a left message instead, which goes over a
// new socket.
func (s *session) quit(ctx context.Context) bool {
	s.wantsConn.Store(false)
	s.mu.Lock()
	noAgent := s.state.NoAgent
	s.mu.Unlock()
	if !noAgent {
		s.emit(ctx, connector.Event{Type: connector.EventEnded, Reason: "agent"})
	}
	return false
}

// serverError handles an error event during the chat. One saying the chat
// is gone ends the conversation; any other is logged.
func (s *session) serverError(ctx context.Context, text string) bool {
	lower := strings.ToLower(text)
	s.mu.Lock()
	noAgent := s.state.NoAgent
	s.mu.Unlock()
	if noAgent || !(strings.Contains(lower, "has ended") || strings.Contains(lower, "no chat session")) {
		s.log.Warn("whoson reported an error", zap.String("error", text))
		return true
	}
	s.log.Warn("whoson says the chat is over", zap.String("error", text))
	s.wantsConn.Store(false)
	s.emit(ctx, connector.Event{Type: connector.EventEnded, Reason: "whoson ended the chat: " + text})
	return false
}
