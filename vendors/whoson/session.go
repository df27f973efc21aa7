package whoson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// translationWait is how long an operator line (lineo) is held, when
// translation is on, for the translation (linet) that replaces it. The
// server sends no linet when the operator speaks the visitor's language.
const translationWait = 2 * time.Second

// stableAfter is how long a socket must live to count as healthy. One that
// drops sooner (a server that takes the chat back and hangs up at once)
// makes the next reconnect wait, with a back-off that grows from one such
// drop to the next: reconnecting succeeds every time there, so the
// reconnect's own back-off never grows.
const stableAfter = 10 * time.Second

// reasonLost is the end reason when WhosOn no longer knows the chat.
const reasonLost = "whoson could not resume the chat"

// sessionState is the vendor session the core stores with the conversation
// (Conversation.Session); it is all a restarted daemon needs to resume.
type sessionState struct {
	// ChatUID is the server's chat id, from accepted or notaccepted.
	ChatUID string `json:"chat_uid"`
	// Cookie is the visitor tracking cookie connectord made up for the chat;
	// the server matches a returning visitor by it.
	Cookie string `json:"cookie"`
	// SessionID is the current socket's SessionID (new on every Connect).
	SessionID string `json:"session_id,omitempty"`
	// Lines counts the newline events seen in the chat; SourceIDs number lines
	// by it, and it is stored with every relayed line so a resumed session
	// goes on counting.
	Lines int `json:"lines,omitempty"`
	// NoAgent: no agent took the chat; only a left message may follow.
	NoAgent bool `json:"no_agent,omitempty"`
	// LeaveMessage: the site takes left messages.
	LeaveMessage bool `json:"leave_message,omitempty"`
}

func (st sessionState) marshal() json.RawMessage {
	b, _ := json.Marshal(st) // plain strings, ints and bools cannot fail
	return b
}

// parseSession reads a stored session.
func parseSession(raw json.RawMessage) (sessionState, error) {
	var st sessionState
	if len(raw) == 0 {
		return st, errors.New("no whoson session stored")
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("stored whoson session: %w", err)
	}
	return st, nil
}

// errChatLost means the server answered a resuming Connect without the chat.
var errChatLost = errors.New(reasonLost)

// session is one conversation's chat: its socket and the goroutine that
// reads it. Events reach the sink from that one goroutine, in arrival order.
type session struct {
	v      *Vendor
	id     int64
	log    *zap.Logger
	ctx    context.Context // ends with Stop or when the session is replaced
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned (or never ran)

	up        atomic.Bool // the socket is usable
	wantsConn atomic.Bool // the chat needs a socket (Health counts it)

	mu       sync.Mutex
	state    sessionState
	conn     *conn
	ready    chan struct{} // closed while conn is set
	leave    bool          // the site takes left messages
	ending   bool          // End or LeaveMessage is closing it
	progress sendProgress
	out      []*outLine // lines not yet known to have arrived, oldest first
	owed     int        // echoes still to come for lines settled by a pong

	// Owned by the run goroutine.
	agent     string
	lastQueue time.Time
	held      *heldLine
	flaps     *backoff.ExponentialBackOff // waits after sockets that died young
}

// sendProgress remembers how many parts of a split message went out, so a
// retried Send does not repeat them.
type sendProgress struct {
	msgID int64
	sent  int
}

// heldLine is an operator line waiting for its translation.
type heldLine struct {
	n       int
	content string
	timer   *time.Timer
}

// newSession makes a session; it runs once start is called.
func (v *Vendor) newSession(id int64, st sessionState, leave bool) *session {
	ctx, cancel := context.WithCancel(v.ctx)
	s := &session{v: v, id: id, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log: v.log.With(zap.Int64("conversation", id)), state: st, leave: leave,
		ready: make(chan struct{})}
	s.wantsConn.Store(!st.NoAgent)
	s.flaps = backoff.NewExponentialBackOff()
	s.flaps.InitialInterval = 100 * time.Millisecond
	s.flaps.MaxInterval = v.cfg.ReconnectMax
	return s
}

// snapshot is the session as the core stores it.
func (s *session) snapshot() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.marshal()
}

// current returns the live socket and session id, or nil while down.
func (s *session) current() (*conn, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn, s.state.SessionID
}

// setConn installs the socket (nil: down).
func (s *session) setConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil {
		if s.conn != nil {
			s.ready = make(chan struct{})
		}
	} else if s.conn == nil {
		close(s.ready)
	}
	s.conn = c
	s.up.Store(c != nil)
}

// waitReady waits for a usable socket, within ctx.
func (s *session) waitReady(ctx context.Context) (*conn, string, error) {
	for {
		s.mu.Lock()
		c, sid, ready, ending := s.conn, s.state.SessionID, s.ready, s.ending
		s.mu.Unlock()
		if c != nil {
			return c, sid, nil
		}
		if ending {
			return nil, "", errors.New("whoson chat is closing")
		}
		select {
		case <-ready:
		case <-s.done:
			return nil, "", errors.New("whoson chat socket is gone")
		case <-ctx.Done():
			return nil, "", fmt.Errorf("whoson socket still reconnecting: %w", ctx.Err())
		}
	}
}

// start runs the session on c; backlog holds events read during the
// handshake, dispatched first.
func (s *session) start(c *conn, backlog []event) bool {
	s.setConn(c)
	if !s.v.spawn(func() { s.run(c, backlog) }) {
		s.setConn(nil)
		c.close()
		close(s.done)
		return false
	}
	return true
}

// stop ends the run goroutine and waits for it.
func (s *session) stop() {
	s.cancel()
	<-s.done
}

// run reads the socket until the chat is over, reconnecting when the socket
// drops while the chat still needs it.
func (s *session) run(c *conn, backlog []event) {
	defer close(s.done)
	defer s.v.forget(s)
	defer s.stopHeld()
	for {
		up := time.Now()
		lost := s.pump(c, backlog)
		s.setConn(nil)
		c.close()
		if !lost || !s.wantsConn.Load() || s.isEnding() {
			return
		}
		s.log.Warn("whoson socket dropped, reconnecting", zap.Error(c.err))
		var err error
		if !s.settle(time.Since(up)) {
			return
		}
		if c, backlog, err = s.resume(); err != nil {
			return
		}
		s.setConn(c)
	}
}

// settle waits before a reconnect when the socket lived less than
// stableAfter, longer (with jitter) after each such short life in a row.
// It reports false when the session stopped meanwhile.
func (s *session) settle(lived time.Duration) bool {
	if lived >= stableAfter {
		s.flaps.Reset()
		return true
	}
	t := time.NewTimer(s.flaps.NextBackOff())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *session) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// pump dispatches backlog, then frames from c, until the socket drops (true)
// or the chat is over or the session stops (false).
func (s *session) pump(c *conn, backlog []event) bool {
	for _, ev := range backlog {
		if !s.handle(ev) {
			return false
		}
	}
	for {
		var flush <-chan time.Time
		if s.held != nil {
			flush = s.held.timer.C
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-flush:
			if !s.flushHeld() {
				return false
			}
		case b, ok := <-c.frames:
			if !ok {
				s.flushHeld()
				return true
			}
			ev, err := decodeEvent(b)
			if err != nil {
				s.log.Warn("skipping malformed whoson frame", zap.Error(err), zap.Int("bytes", len(b)))
				continue
			}
			if s.isEnding() {
				continue
			}
			if !s.handle(ev) {
				return false
			}
		}
	}
}

// resume reconnects and writes again what the old socket may have lost.
func (s *session) resume() (*conn, []event, error) {
	for {
		c, backlog, err := s.reconnect()
		if err != nil {
			return nil, nil, err
		}
		if err = s.resend(s.ctx, c); err == nil {
			return c, backlog, nil
		}
		s.log.Warn("whoson socket failed while writing lines again", zap.Error(err))
		c.close()
		if !s.settle(0) {
			return nil, nil, s.ctx.Err()
		}
	}
}

// reconnect dials again with exponential back-off until the chat is back,
// the server says it is gone (EventEnded), or the session stops.
func (s *session) reconnect() (*conn, []event, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = s.v.cfg.ReconnectMax
	type result struct {
		c       *conn
		backlog []event
	}
	r, err := backoff.Retry(s.ctx, func() (result, error) {
		c, backlog, err := s.reattach(s.ctx)
		if errors.Is(err, errChatLost) || connector.IsPermanent(err) {
			return result{}, backoff.Permanent(err)
		}
		return result{c, backlog}, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			s.log.Warn("whoson reconnect failed, retrying", zap.Duration("in", d), zap.Error(err))
		}))
	switch {
	case err == nil:
		s.log.Info("whoson chat resumed on a new socket")
		if err := s.emit(connector.Event{Type: connector.EventSession, Session: s.snapshot()}); err != nil {
			r.c.close()
			return nil, nil, err
		}
		return r.c, r.backlog, nil
	case s.ctx.Err() != nil:
		return nil, nil, err
	default:
		s.log.Warn("whoson chat cannot continue", zap.Error(err))
		reason := reasonLost
		if !errors.Is(err, errChatLost) {
			reason = "whoson refused to reconnect: " + err.Error()
		}
		s.wantsConn.Store(false)
		if err := s.emit(connector.Event{Type: connector.EventEnded, Reason: reason}); err != nil {
			s.log.Error("whoson chat end not recorded", zap.Error(err))
		}
		return nil, nil, err
	}
}

// reattach dials and sends Connect with the stored cookie and ChatUid. It
// returns errChatLost when the connected event names another chat (or
// none), and records the new SessionID otherwise.
func (s *session) reattach(ctx context.Context) (*conn, []event, error) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	c, info, backlog, err := s.v.connect(ctx, s.log, st.Cookie, st.ChatUID)
	if err != nil {
		return nil, nil, err
	}
	if info.chatUID != st.ChatUID {
		c.close()
		s.log.Info("whoson answered with another chat", zap.String("chat", st.ChatUID),
			zap.String("got", info.chatUID))
		return nil, nil, errChatLost
	}
	s.mu.Lock()
	s.state.SessionID = info.SessionID
	s.leave = bool(info.LeaveMessageEnabled)
	s.mu.Unlock()
	return c, backlog, nil
}

// emit hands e to the sink, retrying until it is committed or the session
// stops.
func (s *session) emit(e connector.Event) error {
	e.ConversationID = s.id
	return s.v.deliver(s.ctx, s.log, e)
}

// outLine is a visitor line written to a socket and not yet known to have
// reached the server. A write into a socket that died unnoticed succeeds and
// is lost, so such lines are written again when the chat resumes on a new
// socket. A line is known to have arrived when the server echoes it (linev,
// in order) or when a ping written after it is answered (the server reads
// frames in order).
type outLine struct {
	text string
	conn *conn
	seq  uint64 // conn's write count once written; 0 while being written
}

// send writes m's parts that have not been written yet. It does not wait
// for the server: a line the socket swallows is written again after the
// reconnect (resend).
func (s *session) send(ctx context.Context, m *connector.Message) error {
	parts := splitText(visitorText(m), maxLine)
	if len(parts) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.v.cfg.ConnectTimeout)
	c, sid, err := s.waitReady(wctx)
	cancel()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.progress.msgID != m.ID || m.ID == 0 {
		s.progress = sendProgress{msgID: m.ID}
	}
	from := s.progress.sent
	s.mu.Unlock()
	for i := from; i < len(parts); i++ {
		if err := s.writeLine(ctx, c, sid, parts[i]); err != nil {
			return err
		}
		s.mu.Lock()
		s.progress.sent = i + 1
		s.mu.Unlock()
	}
	return nil
}

// writeLine writes one Message and keeps it until it is known to have
// arrived. A failed write is forgotten: the caller reports it.
func (s *session) writeLine(ctx context.Context, c *conn, sid, text string) error {
	l := &outLine{text: text, conn: c}
	s.mu.Lock()
	s.settleLocked()
	s.out = append(s.out, l) // before the write: its echo may come at once
	s.mu.Unlock()
	seq, err := c.sendCounted(ctx, messageCmd(s.v.cfg, sid, text))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for i, o := range s.out {
			if o == l {
				s.out = append(s.out[:i:i], s.out[i+1:]...)
				break
			}
		}
		return err
	}
	l.seq = seq
	return nil
}

// echoed takes the server's echo of our oldest line.
func (s *session) echoed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	switch {
	case s.owed > 0:
		s.owed--
	case len(s.out) > 0:
		s.out = s.out[1:]
	}
}

// settleLocked forgets the oldest lines a pong proved the server read; their
// echoes, still to come, are owed.
func (s *session) settleLocked() {
	for len(s.out) > 0 {
		l := s.out[0]
		if l.seq == 0 || l.seq > l.conn.acked.Load() {
			return
		}
		s.out = s.out[1:]
		s.owed++
	}
}

// resend writes on c, a new socket for the chat, the lines the old one may
// have swallowed, before anything else can be sent on it. Lines it cannot
// write stay for the next socket.
func (s *session) resend(ctx context.Context, c *conn) error {
	s.mu.Lock()
	s.settleLocked()
	lines, sid := s.out, s.state.SessionID
	s.owed = 0 // echoes do not cross sockets
	for _, l := range lines {
		l.conn, l.seq = c, 0
	}
	s.mu.Unlock()
	for _, l := range lines {
		seq, err := c.sendCounted(ctx, messageCmd(s.v.cfg, sid, l.text))
		if err != nil {
			return err
		}
		s.mu.Lock()
		l.seq = seq
		s.mu.Unlock()
	}
	if len(lines) > 0 {
		s.log.Info("visitor lines the dropped socket may have lost written again", zap.Int("lines", len(lines)))
	}
	return nil
}

// finish sends last (if any) over the live socket, closes it gracefully so
// the command is delivered, and stops the session. It returns the error of
// sending last.
func (s *session) finish(ctx context.Context, last func(sessionID string) *command) error {
	s.mu.Lock()
	s.ending = true
	c, sid := s.conn, s.state.SessionID
	cmd := last(sid)
	s.mu.Unlock()
	s.wantsConn.Store(false)
	var err error
	if c != nil {
		if cmd != nil {
			err = c.send(ctx, *cmd)
		}
		c.closeGracefully(ctx, s.v.spawn)
	}
	s.stop()
	return err
}
