// Package cobrowser is the CoBrowser Public API vendor: a chat starts with
// REST calls (campaign, chat session, XMPP credentials) and runs over XMPP,
// on a WebSocket (RFC 7395) or a TCP stream with STARTTLS, one stream per
// conversation. README.md in this folder says what the wire really does and
// the choices made where CoBrowser's document is silent.
package cobrowser

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// Open starts a chat: the campaign must be active with an agent available;
// then POST chatsessions and POST xmppcredentials, the XMPP login and the
// presence sequence, after which the chat shows at the agent's side and
// the agent CoBrowser chose is reported as joined. No availability (the
// campaign's or a 409), an inactive campaign and a blocked customer are
// the core's no-agent path: the event is committed before Open returns,
// with a nil error, and the customer's next message tries again.
func (v *Vendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if old := v.session(c.ID); old != nil {
		v.forget(old)
		old.stop()
	}
	if v.blocks.blocked(blockKey(c), v.now()) {
		return v.refuse(ctx, c, "the agent blocked this customer", v.cfg.BlockedNotice)
	}
	st, half := v.halfOpened(c.ID)
	if !half || st.User == "" {
		var why string
		var err error
		st, why, err = v.create(ctx, c, st)
		if err != nil {
			return nil, err
		}
		if why != "" {
			return v.refuse(ctx, c, why, "")
		}
	}
	s := v.newSession(c, st)
	stream, err := s.connect(ctx, true)
	if errors.Is(err, errRefused) {
		v.take(c.ID) // the credentials are no good: the retry starts afresh
		return nil, err
	}
	if err != nil {
		return nil, err // the retry logs in with the same chat
	}
	sess := st.marshal()
	if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventJoined,
		Agent: st.Agent, Session: sess}); err != nil {
		stream.close()
		return nil, err
	}
	if !v.launch(s, stream) {
		return nil, errStopped
	}
	s.settle(ctx, stream)
	s.log.Info("cobrowser chat started", zap.String("chat_session", st.ChatSession), zap.String("agent", st.Agent))
	return sess, nil
}

// create makes the chat at CoBrowser, resuming from what an earlier,
// failed Open of the conversation already made (st). A non-empty why is
// CoBrowser saying no chat can start now.
func (v *Vendor) create(ctx context.Context, c *connector.Conversation, st sessionState) (sessionState, string, error) {
	if st.ChatSession == "" {
		camp, err := v.api.campaign(ctx, v.cfg.CampaignID)
		if err != nil {
			return st, "", err
		}
		if ok, why := camp.open(); !ok {
			return st, why, nil
		}
		cs, err := v.api.createChatSession(ctx, chatSessionRequest{CampaignID: v.cfg.CampaignID,
			TrackerID: trackerID(c), VisitorIdentifier: v.cfg.visitorIdentifier(c), RequestURL: v.cfg.RequestURL})
		if ae, ok := noAgent(err); ok {
			return st, "CoBrowser: " + ae.Message, nil
		}
		if err != nil {
			return st, "", err
		}
		st.ChatSession = cs.ID
		v.keepOpened(c.ID, st)
	}
	cr, err := v.api.createCredentials(ctx, st.ChatSession)
	if ae, ok := noAgent(err); ok {
		v.take(c.ID)
		return st, "CoBrowser: " + ae.Message, nil
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		v.take(c.ID) // the chat session is gone: the retry makes a new one
		return st, "", err
	}
	if err != nil {
		return st, "", err
	}
	st, err = withCredentials(st, cr)
	if err != nil {
		v.take(c.ID)
		return st, "", err
	}
	v.keepOpened(c.ID, st)
	return st, "", nil
}

// withCredentials adds POST xmppcredentials' answer to st.
func withCredentials(st sessionState, cr *xmppCredentials) (sessionState, error) {
	st.Credentials = clip(cr.ID, maxAttr)
	st.User = clip(cr.Credentials.User, maxAttr)
	st.Password = clip(cr.Credentials.Password, maxAttr)
	st.Domain = clip(cr.Credentials.Domain, maxAttr)
	st.Resource = clip(cr.Credentials.Resource, maxAttr)
	st.AgentJID = clip(cr.Agent.JID, maxAttr)
	st.Agent = clip(firstNonEmpty(cr.Agent.NickName, cr.Agent.FirstName, "an agent"), maxAttr)
	if st.AgentJID == "" {
		return st, errors.New("cobrowser POST xmppcredentials: the answer names no agent jid")
	}
	if _, err := loginOf(st); err != nil {
		return st, err
	}
	return st, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x = strings.TrimSpace(x); x != "" {
			return x
		}
	}
	return ""
}

// trackerID identifies the customer across chats (CoBrowser reports it as
// visitor_id) without showing the address itself.
func trackerID(c *connector.Conversation) string {
	h := sha256.Sum256([]byte(blockKey(c)))
	return "connectord-" + hex.EncodeToString(h[:10])
}

// refuse reports that no chat starts now: notice (if any) and the no-agent
// event, committed before Open returns; the session says there is no chat.
func (v *Vendor) refuse(ctx context.Context, c *connector.Conversation, why, notice string) (json.RawMessage, error) {
	v.take(c.ID)
	sess := sessionState{NoAgent: true, Why: clip(why, 200)}.marshal()
	if notice != "" {
		if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventNotice, Text: notice}); err != nil {
			return nil, err
		}
	}
	if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventNoAgent,
		Text: why, Session: sess}); err != nil {
		return nil, err
	}
	v.log.Info("cobrowser chat not started", zap.Int64("conversation", c.ID), zap.String("why", why))
	return sess, nil
}

// Send relays a customer line (KindText) or the context line of a chat
// opened again (KindContext) to the agent. It returns once the server took
// it (its answer to a ping written after the line), so a retry after an
// error may repeat a line, with the same stanza id. A chat whose
// credentials the server refuses is ErrChatLost.
func (v *Vendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if w := v.surveyFor(c.ID); w != nil {
		return v.answerSurvey(ctx, c, w, m)
	}
	s, err := v.live(ctx, c)
	if err != nil {
		return err
	}
	return s.send(ctx, m)
}

// live returns the conversation's running session, resuming it if needed.
func (v *Vendor) live(ctx context.Context, c *connector.Conversation) (*session, error) {
	if s := v.session(c.ID); s != nil {
		return s, nil
	}
	if err := v.Resume(ctx, c); err != nil {
		return nil, err
	}
	if s := v.session(c.ID); s != nil {
		return s, nil
	}
	if v.surveyFor(c.ID) != nil {
		return nil, errors.New("the chat is waiting for the survey's answer") // retried: answered then
	}
	return nil, connector.Permanent(errors.New("no cobrowser chat is open for the conversation"))
}

// End ends the chat because the customer or connectord did: closed to the
// agent (CoBrowser's reporting needs it), then the stream's end. A chat
// not live in this process (after a restart) is logged in once to say
// closed; one whose credentials are refused is over already: nil.
func (v *Vendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if w := v.surveyFor(c.ID); w != nil && v.takeSurvey(c.ID, w) {
		close(w.answer) // the chat was closed before the survey
		return nil
	}
	if s := v.take(c.ID); s != nil {
		if s.end() {
			s.log.Info("cobrowser chat ended", zap.String("reason", reason))
			return nil
		}
	}
	st, err := parseSession(c.Session)
	if err != nil || st.NoAgent || st.User == "" || st.Survey != nil {
		return nil
	}
	s := v.newSession(c, st)
	stream, err := s.connect(ctx, false)
	if errors.Is(err, errRefused) {
		return nil
	}
	if err != nil {
		return err
	}
	v.group.Go(func(context.Context) { // answers the confirmation of closed
		_ = stream.read(func(x inbound) bool {
			if x.Kind == "iq" {
				stream.answered(x)
			}
			return true
		})
	})
	s.finishStream(stream)
	s.log.Info("cobrowser chat ended", zap.String("reason", reason))
	return nil
}

// Resume logs a stored chat in again after a restart. The chat is lost
// (ErrChatLost: the core opens a new one) when CoBrowser no longer knows
// the chat session, reports it closed, or the server refuses its
// credentials. A chat that never started has nothing to resume.
func (v *Vendor) Resume(ctx context.Context, c *connector.Conversation) error {
	if v.session(c.ID) != nil {
		return nil
	}
	st, err := parseSession(c.Session)
	if err != nil {
		return connector.Permanent(err)
	}
	if st.Survey != nil {
		return v.resumeSurvey(ctx, c, st)
	}
	if st.NoAgent || st.User == "" {
		return nil
	}
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	log := connector.LightWith(v.log, zap.Int64("conversation", c.ID))
	if gone, why := v.chatGone(ctx, st); gone {
		log.Info("cobrowser chat gone while we were away", zap.String("why", why))
		return fmt.Errorf("cobrowser chat session %s (%s): %w", st.ChatSession, why, connector.ErrChatLost)
	}
	s := v.newSession(c, st)
	stream, err := s.connect(ctx, true)
	if errors.Is(err, errRefused) {
		log.Info("cobrowser chat's credentials refused after a restart", zap.Error(err))
		return fmt.Errorf("cobrowser chat session %s: %v: %w", st.ChatSession, err, connector.ErrChatLost)
	}
	if err != nil {
		return err
	}
	if !v.launch(s, stream) {
		return errStopped
	}
	s.settle(ctx, stream)
	log.Info("cobrowser chat resumed", zap.String("chat_session", st.ChatSession))
	return nil
}

// chatGone asks the API whether the chat session is over: 404 or status
// closed. An API that does not answer decides nothing: the login will.
func (v *Vendor) chatGone(ctx context.Context, st sessionState) (bool, string) {
	cs, err := v.api.chatSession(ctx, st.ChatSession)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return true, "the API no longer knows it"
	case err != nil:
		v.log.Info("cobrowser chat session not checked", zap.String("error", connector.RedactError(err)))
		return false, ""
	case strings.EqualFold(cs.Status, "closed"):
		return true, "the API reports it closed"
	}
	return false, ""
}
