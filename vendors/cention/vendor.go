// Package cention is the Cention Contact Center chat vendor: each
// conversation is a chat on its own WebSocket to the workspace's
// external.ws, in the envelope Cention's own clients speak (client frames
// {"type","data","id"}, server frames {"event","args"}), with canchat asked
// before a chat starts. README.md in this folder says what the wire really
// does and the choices made where Cention's document is silent.
package cention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// Open starts a chat: canchat for the area (closed, or nobody available, is
// the core's no-agent path: the event is committed before Open returns,
// with a nil error), then a socket with a fresh random token and register
// with the customer's name, email, phone and the question. The chat is
// accepted once register answers with its session. A retry of an Open
// whose register went unanswered resumes that chat rather than starting a
// second one.
func (v *Vendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if old := v.session(c.ID); old != nil {
		v.forget(old)
		old.stop()
	}
	cc, err := v.canChat(ctx)
	var perm *connector.PermanentError
	if errors.As(err, &perm) {
		// A canchat the server refuses (a wrong base_url or area) will work
		// once the configuration is fixed: the customer's lines wait,
		// /readyz says why, rather than every conversation failing.
		return nil, perm.Err
	}
	if err != nil {
		return nil, err
	}
	if why, closed := cc.refusal(); why != "" {
		return v.refuse(ctx, c, why, closed)
	}
	log := connector.LightWith(v.log, zap.Int64("conversation", c.ID))
	token := v.halfOpened(c.ID)
	if token != "" {
		if sess, err := v.reopen(ctx, c, token); sess != nil || err != nil {
			return sess, err
		}
	} else {
		token = newToken()
		v.keepOpened(c.ID, token)
	}
	s := v.newSession(c.ID, sessionState{Token: token})
	cn, f, backlog, err := v.registerChat(ctx, token, log, s.peek, v.registration(c, false, v.cfg.question(c)))
	if err != nil {
		return nil, err
	}
	ans, _ := decodeAnswer(f.arg0())
	if f.Event == evUnavailable || f.Event == evQueueFull || ans.Error != "" {
		why := "Cention: " + f.Event
		if ans.Error != "" {
			why = "Cention refused the chat: " + ans.Error
		}
		_ = cn.send(ctx, typeClose, nil)
		cn.closeGracefully(ctx, v.group)
		return v.refuse(ctx, c, why, false)
	}
	s.state.SessionID, s.state.Secret = ans.SessionID, ans.Secret
	if !v.register(s) || !s.start(cn, backlog) {
		return nil, errStopped
	}
	log.Info("cention chat started", zap.String("token", shortToken(token)), zap.String("session", ans.SessionID))
	return s.snapshot(), nil
}

// reopen is the retry of an Open whose register went unanswered: the chat
// of token is resumed when Cention has it. (nil, nil) means it does not:
// register again.
func (v *Vendor) reopen(ctx context.Context, c *connector.Conversation, token string) (json.RawMessage, error) {
	s := v.newSession(c.ID, sessionState{Token: token})
	cn, backlog, err := s.reattach(ctx)
	if errors.Is(err, connector.ErrChatLost) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !v.register(s) || !s.start(cn, backlog) {
		return nil, errStopped
	}
	s.log.Info("cention chat of an earlier Open resumed", zap.String("token", shortToken(token)))
	return s.snapshot(), nil
}

// registration is the register frame's data for c.
func (v *Vendor) registration(c *connector.Conversation, offline bool, message string) registerData {
	return registerData{Area: v.cfg.Area, Name: v.cfg.customerName(c), Email: clip(c.Profile.Email, maxName),
		Phone: customerPhone(c), Message: message, BaseURL: v.cfg.base.String(), OfflineChat: offline}
}

// registerChat dials with token, sends register and waits within
// connect_timeout for its answer: the register event (a session or an
// error), or agent unavailable or queue full. Frames read before it are
// returned as backlog.
func (v *Vendor) registerChat(ctx context.Context, token string, log *zap.Logger, peek func(serverFrame), reg registerData) (*conn, serverFrame, []serverFrame, error) {
	cn, err := v.dial(ctx, token, log)
	if err != nil {
		return nil, serverFrame{}, nil, err
	}
	if err := cn.send(ctx, typeRegister, reg); err != nil {
		cn.Close()
		return nil, serverFrame{}, nil, err
	}
	f, backlog, err := cn.await(ctx, v.cfg.ConnectTimeout, "register", peek, func(f serverFrame) bool {
		if f.Event == evUnavailable || f.Event == evQueueFull {
			return true
		}
		_, ok := decodeAnswer(f.arg0())
		return ok && (f.Event == evRegister || f.Event == evResume)
	})
	if err != nil {
		cn.Close()
		return nil, serverFrame{}, nil, fmt.Errorf("cention register: %w", err)
	}
	return cn, f, backlog, nil
}

// refuse reports that no chat runs: the closed notice (when the chat is
// closed) and the no-agent event, committed before Open returns; the session
// says there is no chat.
func (v *Vendor) refuse(ctx context.Context, c *connector.Conversation, why string, closed bool) (json.RawMessage, error) {
	v.take(c.ID)
	sess := sessionState{NoAgent: true}.marshal()
	if closed && v.cfg.ClosedNotice != "" {
		if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventNotice,
			Text: v.cfg.ClosedNotice}); err != nil {
			return nil, err
		}
	}
	if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventNoAgent,
		LeaveMessage: v.cfg.OfflineMessages, Text: clip(why, maxNotice), Session: sess}); err != nil {
		return nil, err
	}
	v.log.Info("cention chat not started", zap.Int64("conversation", c.ID), zap.String("why", why),
		zap.Bool("leave_message", v.cfg.OfflineMessages))
	return sess, nil
}

// Send relays a customer line (KindText) or the context line of a chat
// opened again (KindContext) to the agent, and returns once the server
// confirmed its umid (see send). A chat whose socket is gone is resumed
// first; one Cention refuses to resume is an error wrapping
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
	return nil, connector.Permanent(errors.New("no cention chat is open for the conversation"))
}

// End closes the chat at Cention (close chat) because the customer or
// connectord ended it. A chat not live in this process (after a restart)
// is resumed once to say it; one Cention no longer has is over already:
// nil.
func (v *Vendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if s := v.take(c.ID); s != nil {
		if s.end(ctx) {
			s.log.Info("cention chat closed", zap.String("reason", reason))
			return nil
		}
	}
	st, err := parseSession(c.Session)
	if err != nil || st.NoAgent || st.Ended || st.Token == "" {
		return nil
	}
	log := connector.LightWith(v.log, zap.Int64("conversation", c.ID))
	cn, _, _, err := v.resume(ctx, st.Token, log, nil)
	if errors.Is(err, connector.ErrChatLost) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := cn.send(ctx, typeClose, nil); err != nil {
		cn.Close()
		return err
	}
	v.closeSoon(ctx, cn)
	log.Info("cention chat closed", zap.String("reason", reason))
	return nil
}

// closeSoon closes cn gracefully, waiting at most send_timeout, so that the
// frames written just before reach the server.
func (v *Vendor) closeSoon(ctx context.Context, cn *conn) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.SendTimeout)
	defer cancel()
	cn.closeGracefully(ctx, v.group)
}

// end closes a live chat from our side: close chat on its socket, the
// socket's end, then the run goroutine stops. False when there was no live
// socket to say it on (the caller resumes once to say it).
func (s *session) end(ctx context.Context) bool {
	s.mu.Lock()
	s.ending = true
	c := s.conn
	s.mu.Unlock()
	ok := false
	if c != nil {
		ok = c.send(ctx, typeClose, nil) == nil
		if ok {
			s.v.closeSoon(ctx, c)
		}
	}
	s.stop()
	return ok
}

// Resume continues a stored chat after a restart: a socket with the stored
// token and resume. Cention refusing it ("no session") is an error wrapping
// connector.ErrChatLost, and the core opens a new chat; a dial failure is
// an error to retry. A chat that never started has nothing to resume.
func (v *Vendor) Resume(ctx context.Context, c *connector.Conversation) error {
	if v.session(c.ID) != nil {
		return nil
	}
	st, err := parseSession(c.Session)
	if err != nil {
		return connector.Permanent(err)
	}
	if st.NoAgent || st.Ended || st.Token == "" {
		return nil
	}
	if v.isLost(c.ID, st.Token) {
		return chatLost(st.Token, "resume refused")
	}
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	s := v.newSession(c.ID, st)
	cn, backlog, err := s.reattach(ctx)
	if errors.Is(err, connector.ErrChatLost) {
		v.markLost(c.ID, st.Token, nil)
		return err
	}
	if err != nil {
		return err
	}
	if sess := s.snapshot(); string(sess) != string(st.marshal()) {
		if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventSession, Session: sess}); err != nil {
			cn.Close()
			return err
		}
	}
	if !v.register(s) || !s.start(cn, backlog) {
		return errStopped
	}
	s.log.Info("cention chat resumed", zap.String("token", shortToken(st.Token)))
	return nil
}

// leftRecord is the send progress of a left message: the token of its
// offline chat, so that a retry resumes that one instead of leaving the
// message twice.
type leftRecord struct {
	Token string `json:"left_token"`
	Left  bool   `json:"left,omitempty"` // register answered: nothing more to do
}

// LeaveMessage leaves the customer's message after no agent took the chat:
// register with offlineChat on a socket of its own, then close it. The
// offline chat's token is kept in the send progress before register and
// marked left once register answered: a retry after that does nothing, and
// one before it resumes the offline chat when Cention still has it, else
// registers again with the same token.
func (v *Vendor) LeaveMessage(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if s := v.take(c.ID); s != nil {
		s.stop()
	}
	log := connector.LightWith(v.log, zap.Int64("conversation", c.ID))
	var rec leftRecord
	if b, err := v.progress.LoadProgress(ctx, m.ID); err != nil {
		return fmt.Errorf("load cention send progress: %w", err)
	} else if len(b) > 0 && len(b) < maxSession {
		_ = json.Unmarshal(b, &rec) // unreadable: a new offline chat
	}
	if rec.Left {
		return nil
	}
	if rec.Token != "" && len(rec.Token) <= maxID {
		cn, _, _, err := v.resume(ctx, rec.Token, log, nil)
		if err == nil {
			cn.Close()
			log.Info("cention offline message already left")
			return nil
		}
		if !errors.Is(err, connector.ErrChatLost) {
			return err
		}
	} else {
		rec.Token = newToken()
		if err := v.saveLeft(ctx, m.ID, rec); err != nil {
			return err
		}
	}
	cn, f, _, err := v.registerChat(ctx, rec.Token, log, nil, v.registration(c, true, lineText(m)))
	if err != nil {
		return err
	}
	v.closeSoon(ctx, cn)
	if ans, _ := decodeAnswer(f.arg0()); ans.Error != "" || f.Event == evQueueFull || f.Event == evUnavailable {
		why := ans.Error
		if why == "" {
			why = f.Event
		}
		return connector.Permanent(fmt.Errorf("cention refused the offline message: %s", why))
	}
	rec.Left = true
	if err := v.saveLeft(ctx, m.ID, rec); err != nil {
		return err
	}
	log.Info("cention offline message left")
	return nil
}

func (v *Vendor) saveLeft(ctx context.Context, id int64, rec leftRecord) error {
	b, _ := json.Marshal(rec) // a string and a bool cannot fail
	if err := v.progress.SaveProgress(ctx, id, b); err != nil {
		return fmt.Errorf("save cention send progress: %w", err)
	}
	return nil
}
