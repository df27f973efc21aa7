// Package whoson is the WhosOn Chat API vendor: each conversation is a
// visitor chat on its own WebSocket to the WhosOn chat server, as Parker
// Software's Chat API describes it; README.md in this folder says what the
// wire really does and the choices made where the API is silent.
package whoson

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// connectInfo is what a connected event told us.
type connectInfo struct {
	connectedData
	chatUID string // the event's ChatUid: set when the server kept our chat
}

// connect dials and sends Connect (with chatUID when resuming), waiting
// within connect_timeout for the connected event.
func (v *Vendor) connect(ctx context.Context, log *zap.Logger, cookie, chatUID string) (*conn, connectInfo, []event, error) {
	var info connectInfo
	c, err := v.dial(ctx, log)
	if err != nil {
		return nil, info, nil, err
	}
	if err := c.send(ctx, connectCmd(v.cfg, cookie, chatUID)); err != nil {
		c.Close()
		return nil, info, nil, err
	}
	ev, backlog, err := c.await(ctx, v.cfg.ConnectTimeout, nil, evConnected)
	if err == nil {
		info.connectedData, err = connectedOf(ev) // SessionID present and bounded
	}
	if err != nil {
		c.Close()
		return nil, info, nil, fmt.Errorf("whoson Connect: %w", err)
	}
	info.chatUID = ev.ChatUID
	return c, info, backlog, nil
}

// newCookie makes up a visitor tracking cookie session id.
func newCookie() string { return "connectord-" + rand.Text()[:16] }

// Open starts a chat: Connect, Hello with the customer's details, and the
// server's accepted or notaccepted. On notaccepted the no-agent event is
// committed before Open returns, and the session is returned with a nil
// error. A socket or timeout failure is an error to retry; an error event
// from the server is permanent.
func (v *Vendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if old := v.take(c.ID); old != nil {
		old.stop()
	}
	log := connector.LightWith(v.log, zap.Int64("conversation", c.ID))
	st := sessionState{Cookie: newCookie()}
	cn, info, _, err := v.connect(ctx, log, st.Cookie, "")
	if err != nil {
		return nil, err
	}
	st.SessionID = info.SessionID
	if err := cn.send(ctx, helloCmd(v.cfg, v.hello(c, st))); err != nil {
		cn.Close()
		return nil, err
	}
	quit := func() { v.quitUnanswered(ctx, cn, st.SessionID) }
	ev, backlog, err := cn.await(ctx, v.cfg.AcceptTimeout, quit, evAccepted, evNotAccepted)
	if err != nil {
		if !errors.Is(err, errNoAnswer) { // else quit ran, and the socket is gone
			quit()
		}
		cn.Close()
		return nil, fmt.Errorf("whoson Hello: %w", err)
	}
	st.ChatUID = ev.ChatUID
	s := v.newSession(c.ID, st, bool(info.LeaveMessageEnabled), log)
	if ev.Name == evNotAccepted {
		return v.refused(ctx, s, cn, ev)
	}
	if !v.register(s) || !s.start(cn, backlog) {
		cn.Close()
		return nil, errStopped
	}
	log.Info("whoson chat accepted", zap.String("chat", st.ChatUID))
	return s.snapshot(), nil
}

// hello is the Hello command's content for c.
func (v *Vendor) hello(c *connector.Conversation, st sessionState) helloParams {
	return helloParams{
		VisitorName: v.cfg.visitorName(c),
		Department:  v.cfg.Department,
		SessionID:   st.SessionID,
		Cookie:      st.Cookie,
		Language:    v.cfg.language(c),
		Translation: v.cfg.Translation,
		Fields: []field{
			{"Phone", customerPhone(c)},
			{"Email", c.Profile.Email},
			{"Channel", c.Channel},
		},
	}
}

// quitUnanswered quits a chat whose Hello got no answer (or a bad one).
func (v *Vendor) quitUnanswered(ctx context.Context, cn *conn, sessionID string) {
	if err := cn.send(ctx, quitCmd(v.cfg, sessionID)); err != nil {
		cn.Logger().Debug("whoson Quit for an unanswered Hello not sent", zap.Error(err))
	}
}

// refused handles notaccepted after Hello: the no-agent event is committed
// first; the socket is kept only when a message can be left over it.
func (v *Vendor) refused(ctx context.Context, s *session, cn *conn, ev event) (json.RawMessage, error) {
	s.mu.Lock()
	s.state.NoAgent, s.state.LeaveMessage = true, s.leave
	s.mu.Unlock()
	s.wantsConn.Store(false)
	sess := s.snapshot()
	err := v.deliver(ctx, connector.Event{ConversationID: s.id, Type: connector.EventNoAgent,
		LeaveMessage: s.leave, Text: clipText(ev.text(), maxNoticeText), Session: sess})
	if err != nil {
		cn.Close()
		return nil, err
	}
	s.log.Info("whoson chat not accepted", zap.Bool("leave_message", s.leave))
	if !s.leave || !v.register(s) || !s.start(cn, nil) {
		cn.Close()
	}
	return sess, nil
}

// Send relays a customer message (KindText) or the context line of a chat
// opened again (KindContext) as Message commands, split at 4000
// characters: both are visitor lines to the operator. A chat whose socket
// is gone is resumed first; a chat WhosOn lost is an error wrapping
// connector.ErrChatLost.
func (v *Vendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
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
	return nil, connector.Permanent(errors.New("the whoson chat is over"))
}

// End quits the chat at WhosOn and closes its socket. A chat that is not
// live (already ended, or unknown) needs nothing: nil.
func (v *Vendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	s := v.take(c.ID)
	if s == nil {
		return nil
	}
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	err := s.finish(ctx, func(sid string) *command {
		if s.state.NoAgent {
			return nil
		}
		cmd := quitCmd(v.cfg, sid)
		return &cmd
	})
	if err != nil {
		// Nothing is left to retry with: the socket is closed and the
		// server ends a chat whose visitor is gone.
		s.log.Warn("whoson Quit not sent", zap.Error(err))
	}
	s.log.Info("whoson chat ended", zap.String("reason", reason))
	return nil
}

// LeaveMessage leaves the customer's message for operators after no agent
// took the chat: over the chat's socket when it is still open, else over a
// new one (Connect first, as every command needs a session).
func (v *Vendor) LeaveMessage(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	lm := leftMessage{Name: v.cfg.visitorName(c), Department: v.cfg.Department,
		Email: c.Profile.Email, Phone: customerPhone(c), Text: visitorText(m)}
	if s := v.session(c.ID); s != nil {
		if cn, _ := s.current(); cn != nil {
			v.take(c.ID)
			s.mu.Lock()
			lm.ChatUID = s.state.ChatUID
			s.mu.Unlock()
			err := s.finish(ctx, func(sid string) *command {
				lm.SessionID = sid
				cmd := leaveMessageCmd(v.cfg, lm)
				return &cmd
			})
			if err != nil {
				return err // retried over a new socket
			}
			s.log.Info("message left at whoson")
			return nil
		}
	}
	return v.leaveOnNewSocket(ctx, c, lm)
}

func (v *Vendor) leaveOnNewSocket(ctx context.Context, c *connector.Conversation, lm leftMessage) error {
	log := connector.LightWith(v.log, zap.Int64("conversation", c.ID))
	st, err := parseSession(c.Session)
	if err != nil || st.Cookie == "" {
		st.Cookie = newCookie()
	}
	cn, info, _, err := v.connect(ctx, log, st.Cookie, "")
	if err != nil {
		return err
	}
	lm.ChatUID, lm.SessionID = st.ChatUID, info.SessionID
	if err := cn.send(ctx, leaveMessageCmd(v.cfg, lm)); err != nil {
		cn.Close()
		return err
	}
	cn.closeGracefully(ctx, v.group)
	log.Info("message left at whoson")
	return nil
}

// Resume continues a stored chat after a restart: Connect with the stored
// cookie and ChatUid. When the server answers with the same ChatUid the
// session goes on; when it answers with another (it lost the chat) Resume
// returns an error wrapping connector.ErrChatLost, and the core opens a new
// chat for the conversation. A dial failure is an error to retry. A chat
// that was never accepted has nothing to resume.
func (v *Vendor) Resume(ctx context.Context, c *connector.Conversation) error {
	if s := v.session(c.ID); s != nil {
		return nil
	}
	st, err := parseSession(c.Session)
	if err != nil {
		return connector.Permanent(err)
	}
	if st.ChatUID == "" || st.NoAgent {
		return nil
	}
	if v.isLost(c.ID, st.ChatUID) {
		return chatLost(st.ChatUID)
	}
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	s := v.newSession(c.ID, st, st.LeaveMessage, nil)
	cn, backlog, err := s.reattach(ctx)
	if errors.Is(err, connector.ErrChatLost) {
		s.log.Info("whoson lost the chat while we were away", zap.String("chat", st.ChatUID))
		v.markLost(c.ID, st.ChatUID, nil)
		return err
	}
	if err != nil {
		return err
	}
	if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventSession,
		Session: s.snapshot()}); err != nil {
		cn.Close()
		return err
	}
	if !v.register(s) || !s.start(cn, backlog) {
		cn.Close()
		return errStopped
	}
	s.log.Info("whoson chat resumed", zap.String("chat", st.ChatUID))
	return nil
}
