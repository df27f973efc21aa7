package whoson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// translationWait is how long an operator line (lineo) is held, when
// translation is on, for the translation (linet) that replaces it. The
// server sends no linet when the operator speaks the visitor's language.
const translationWait = 2 * time.Second

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

// errDone ends a chat's supervision for a reason already dealt with: the
// chat is over, or an event could not be stored (logged by emit). It is
// returned as a connector.Permanent error so that Supervise stops.
var errDone = errors.New("whoson chat socket no longer needed")

// session is one conversation's chat: its socket and the goroutine that
// reads it, reconnecting under connector.Supervise. Events reach the sink in
// arrival order, from a goroutine that runs while there are some (inbox).
type session struct {
	v       *Vendor
	id      int64
	log     *zap.Logger
	done    chan struct{}    // closed when run has returned (or never ran)
	firstUp chan struct{}    // closed once run serves the first socket
	lost    chan struct{}    // closed once a reconnect found the chat gone
	status  connector.Status // the chat socket's health, kept by Supervise

	wantsConn atomic.Bool  // the chat needs a socket (Health counts it)
	lastSent  atomic.Int64 // the last message written whole (send)

	mu     sync.Mutex
	cancel context.CancelFunc // ends run; set by start
	state  sessionState
	conn   *conn
	ready  chan struct{} // closed while conn is set
	leave  bool          // the site takes left messages
	ending bool          // End or LeaveMessage is closing it
	out    []*outLine    // lines not yet known to have arrived, oldest first
	owed   int           // echoes still to come for lines settled by a pong

	// hmu serialises event handling: the run goroutine's, and a held
	// line's timer. It guards the fields below.
	hmu       sync.Mutex
	halted    atomic.Bool // a held line could not be stored: the reader stops
	agent     string
	lastQueue time.Time
	held      *heldLine
}

// heldLine is an operator line waiting for its translation.
type heldLine struct {
	n       int
	content string
	timer   *time.Timer // flushes it (flushLate) unless stopped
}

// newSession makes a session; it runs once start is called.
// log, when not nil, already names the conversation.
func (v *Vendor) newSession(id int64, st sessionState, leave bool, log *zap.Logger) *session {
	if log == nil {
		log = connector.LightWith(v.log, zap.Int64("conversation", id))
	}
	s := &session{v: v, id: id, done: make(chan struct{}), firstUp: make(chan struct{}),
		lost: make(chan struct{}), log: log, state: st, leave: leave,
		ready: make(chan struct{})}
	s.wantsConn.Store(!st.NoAgent)
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
		case <-s.lost:
			return nil, "", s.lostError()
		case <-s.done:
			if s.isLost() {
				return nil, "", s.lostError()
			}
			return nil, "", errors.New("whoson chat socket is gone")
		case <-ctx.Done():
			return nil, "", fmt.Errorf("whoson socket still reconnecting: %w", ctx.Err())
		}
	}
}

// start runs the session on c, the socket Open or Resume made; backlog
// holds events read during the handshake, dispatched first. It returns once
// the socket counts as up (Health says so from then on); false when the
// vendor is stopping.
func (s *session) start(c *conn, backlog []event) bool {
	ctx, cancel := s.v.group.Bind(context.Background())
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.setConn(c)
	// cancel once run returns: a finished chat keeps no hook on the vendor.
	if !s.v.group.Go(func(context.Context) { defer cancel(); s.run(ctx, c, backlog) }) {
		cancel()
		s.setConn(nil)
		c.Close()
		close(s.done)
		return false
	}
	select {
	case <-s.firstUp:
	case <-s.done:
	}
	return true
}

// stop ends the run goroutine and waits for it. The socket is dropped
// here: its reader does not watch ctx (see pump).
func (s *session) stop() {
	s.mu.Lock()
	cancel, c := s.cancel, s.conn
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if c != nil {
		c.Close()
	}
	<-s.done
}

// run serves the chat until it is over or ctx ends: on first, then, each
// time a socket drops while the chat still needs one, on a new socket, at
// the pace of the reconnect policy, until WhosOn no longer has the chat
// (EventLost) or refuses the new socket (the conversation ends).
func (s *session) run(ctx context.Context, first *conn, backlog []event) {
	defer close(s.done)
	defer s.v.forget(s)
	defer func() {
		s.hmu.Lock()
		defer s.hmu.Unlock()
		s.stopHeld()
	}()
	// The first attempt serves the socket the handshake already made; every
	// later one resumes the chat by its ChatUid on a new socket.
	err := connector.Supervise(ctx, s.v.cfg.reconnect(), &s.status, s.log, func(ctx context.Context, up func()) error {
		if first != nil {
			c, events := first, backlog
			first, backlog = nil, nil
			up()
			close(s.firstUp)
			return s.serve(ctx, c, events)
		}
		c, events, err := s.resume(ctx)
		if err != nil {
			return err
		}
		up()
		return s.serve(ctx, c, events)
	})
	s.over(ctx, err)
}

// serve reads c until it drops while the chat still needs a socket (an
// error: Supervise reconnects) or the chat is over (errDone).
func (s *session) serve(ctx context.Context, c *conn, backlog []event) error {
	s.setConn(c)
	// stop, or the vendor's Stop (keepalive.closeAll), drops the socket
	// that is set; one set after they looked is dropped here.
	dropped := ctx.Err() == nil && s.pump(ctx, c, backlog)
	s.setConn(nil)
	c.Close()
	if !dropped || !s.wantsConn.Load() || s.isEnding() {
		return connector.Permanent(errDone)
	}
	return fmt.Errorf("whoson socket dropped: %w", c.Err())
}

// over deals with supervision having stopped for good. WhosOn no longer
// having the chat is not the end of the conversation: the session ends
// here and the core, told by EventLost, opens a new chat (see lose). A
// refusal of the new socket (an error event, which repeating would risk the
// IP blacklist) ends the conversation.
func (s *session) over(ctx context.Context, err error) {
	if err == nil || errors.Is(err, errDone) {
		return
	}
	s.wantsConn.Store(false)
	if errors.Is(err, connector.ErrChatLost) {
		s.lose(ctx, err)
		return
	}
	var p *connector.PermanentError
	if errors.As(err, &p) {
		err = p.Err
	}
	reason := "whoson refused to reconnect: " + connector.RedactError(err)
	s.log.Warn("whoson chat cannot continue", zap.String("reason", reason))
	s.emit(ctx, connector.Event{Type: connector.EventEnded, Reason: reason})
}

// lose ends a session whose chat WhosOn no longer has. It is no longer the
// conversation's session before EventLost is emitted, so that an Open the
// core makes for the conversation meanwhile starts afresh instead of
// waiting for this one; a Send for the lost chat meanwhile gets
// ErrChatLost (markLost).
func (s *session) lose(ctx context.Context, err error) {
	s.mu.Lock()
	uid := s.state.ChatUID
	s.mu.Unlock()
	s.v.markLost(s.id, uid, s)
	close(s.lost)
	s.log.Warn("whoson lost the chat; the conversation gets a new one", zap.String("chat", uid))
	s.emit(ctx, connector.Event{Type: connector.EventLost, Reason: connector.RedactError(err), Session: s.snapshot()})
}

// isLost reports whether a reconnect found the chat gone.
func (s *session) isLost() bool {
	select {
	case <-s.lost:
		return true
	default:
		return false
	}
}

// lostError is what a Send for the lost chat returns.
func (s *session) lostError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return chatLost(s.state.ChatUID)
}

// chatLost is the error for chat uid, which WhosOn no longer has.
func chatLost(uid string) error {
	return fmt.Errorf("whoson chat %s: %w", uid, connector.ErrChatLost)
}

func (s *session) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// pump dispatches backlog, then frames from c, until the socket drops (true)
// or the chat is over or ctx ends (false). This goroutine reads the socket
// (and so takes the pongs of the keepalive's pings); the events go to the
// sink from a goroutine of their own (inbox), in order, which lives only
// while there are events to hand over. Handing one over runs deep through
// the core and its store, and a goroutine's stack keeps the size it grew
// to: so the reader, which waits all the idle life of a chat, stays small.
func (s *session) pump(ctx context.Context, c *conn, backlog []event) bool {
	in := &inbox{}
	for _, ev := range backlog {
		if !s.enqueue(ctx, c, in, frame{ev: ev}) {
			return false
		}
	}
	for {
		// Not ctx: a read watching a context costs a registration with it
		// for as long as the chat is idle. stop drops the socket instead.
		buf, err := c.Next(context.Background())
		if err != nil {
			if in.wait() {
				return false // the chat is over: that dropped the socket
			}
			// The vendor's Stop drops every socket, maybe before ctx ends:
			// not a drop to reconnect from.
			if ctx.Err() != nil || s.halted.Load() || s.v.group.Stopped() {
				return false
			}
			s.hmu.Lock()
			s.flushHeld(ctx)
			s.hmu.Unlock()
			return true
		}
		if !s.enqueue(ctx, c, in, frame{buf: buf}) {
			return false
		}
	}
}

// maxQueued and maxQueuedBytes bound the frames read ahead of their
// dispatch: past either the reader waits until they are handed over, so
// that a slow store slows the socket down instead of filling memory.
const (
	maxQueued      = 64
	maxQueuedBytes = 1 << 20
)

// frame is one event for dispatch: still to decode (buf, a frame buffer of
// the socket), or decoded (ev, from the handshake's backlog). Decoding is
// left to the dispatching goroutine: it runs deep too.
type frame struct {
	buf *bytes.Buffer
	ev  event
}

// inbox holds one socket's events between its reader and their dispatch.
type inbox struct {
	mu      sync.Mutex
	events  []frame
	bytes   int           // of the buffers in events
	running bool          // a goroutine is dispatching events
	over    bool          // a dispatch found the chat over
	idle    chan struct{} // closed when the running goroutine returns
}

// enqueue hands ev to the inbox's goroutine, starting one if none runs; false
// when the chat is over (the rest is not dispatched) or the vendor stops.
func (s *session) enqueue(ctx context.Context, c *conn, in *inbox, f frame) bool {
	in.mu.Lock()
	if in.over {
		in.mu.Unlock()
		if f.buf != nil {
			c.PutBuf(f.buf)
		}
		return false
	}
	in.events = append(in.events, f)
	if f.buf != nil {
		in.bytes += f.buf.Len()
	}
	full := len(in.events) >= maxQueued || in.bytes >= maxQueuedBytes
	if !in.running {
		in.running, in.idle = true, make(chan struct{})
		if !s.v.group.Go(func(context.Context) { s.dispatchAll(ctx, c, in) }) {
			in.running, in.over = false, true
			in.mu.Unlock()
			return false
		}
	}
	in.mu.Unlock()
	if full {
		return !in.wait()
	}
	return true
}

// dispatchAll dispatches the inbox's events in order until it is empty. When
// one finds the chat over, the rest are dropped and so is the socket, which
// ends its reader, as a failure to hand an event over always did.
func (s *session) dispatchAll(ctx context.Context, c *conn, in *inbox) {
	for {
		in.mu.Lock()
		if len(in.events) == 0 || in.over {
			for _, f := range in.events { // dropped: the chat is over
				if f.buf != nil {
					c.PutBuf(f.buf)
				}
			}
			in.events, in.bytes = nil, 0 // an idle chat keeps no array of past events
			in.running = false
			close(in.idle)
			in.mu.Unlock()
			return
		}
		f := in.events[0]
		in.events[0] = frame{}
		in.events = in.events[1:]
		if f.buf != nil {
			in.bytes -= f.buf.Len()
		}
		in.mu.Unlock()
		ev, ok := s.decode(c, f)
		if !ok || s.isEnding() {
			continue
		}
		if !s.dispatch(ctx, ev) {
			in.mu.Lock()
			in.over = true
			in.mu.Unlock()
			c.Close()
		}
	}
}

// decode returns f's event, giving its buffer back; false for a malformed
// frame, which is logged and skipped.
func (s *session) decode(c *conn, f frame) (event, bool) {
	if f.buf == nil {
		return f.ev, true
	}
	ev, err := decodeEvent(f.buf.Bytes()) // copies what it keeps
	n := f.buf.Len()
	c.PutBuf(f.buf)
	if err != nil {
		s.log.Warn("skipping malformed whoson frame", zap.Error(err), zap.Int("bytes", n))
		return event{}, false
	}
	return ev, true
}

// wait waits until every queued event is dispatched, and reports whether
// one found the chat over.
func (in *inbox) wait() bool {
	in.mu.Lock()
	running, idle := in.running, in.idle
	in.mu.Unlock()
	if running {
		<-idle
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.over
}

// dispatch handles one event; false means the chat is over.
func (s *session) dispatch(ctx context.Context, ev event) bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.handle(ctx, ev)
}

// hold keeps operator line n until its translation comes, or until
// translationWait passes (flushLate).
func (s *session) hold(ctx context.Context, n int, content string) {
	h := &heldLine{n: n, content: content}
	h.timer = time.AfterFunc(translationWait, func() {
		s.v.group.Go(func(context.Context) { s.flushLate(ctx, h) })
	})
	s.held = h
}

// flushLate relays held line h, whose translation did not come in time,
// on the timer's goroutine, after the event being handled (if any). When it
// cannot be stored the chat's reader stops, as a failure in handle stops
// it: its socket is dropped and halted tells it why.
func (s *session) flushLate(ctx context.Context, h *heldLine) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.held != h {
		return
	}
	if !s.flushHeld(ctx) {
		s.halted.Store(true)
		if c, _ := s.current(); c != nil {
			c.Close()
		}
	}
}

// resume attaches the chat to a new socket, stores its SessionID, and
// writes again, before anything else, the lines the old socket may have
// lost. A server that no longer has the chat (connector.ErrChatLost) is
// Permanent, as is one that refuses the Connect with an error event.
func (s *session) resume(ctx context.Context) (*conn, []event, error) {
	c, backlog, err := s.reattach(ctx)
	if errors.Is(err, connector.ErrChatLost) {
		err = connector.Permanent(err)
	}
	if err != nil {
		return nil, nil, err
	}
	if !s.emit(ctx, connector.Event{Type: connector.EventSession, Session: s.snapshot()}) {
		c.Close()
		return nil, nil, connector.Permanent(errDone)
	}
	if err := s.resend(ctx, c); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("whoson socket failed while writing lines again: %w", err)
	}
	s.log.Info("whoson chat resumed on a new socket")
	return c, backlog, nil
}

// reattach dials and sends Connect with the stored cookie and ChatUid. It
// returns an error wrapping connector.ErrChatLost when the connected event
// names another chat (or none), and records the new SessionID otherwise.
func (s *session) reattach(ctx context.Context) (*conn, []event, error) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	c, info, backlog, err := s.v.connect(ctx, s.log, st.Cookie, st.ChatUID)
	if err != nil {
		return nil, nil, err
	}
	if info.chatUID != st.ChatUID {
		c.Close()
		s.log.Info("whoson answered with another chat", zap.String("chat", st.ChatUID),
			zap.String("got", info.chatUID))
		return nil, nil, chatLost(st.ChatUID)
	}
	s.mu.Lock()
	s.state.SessionID = info.SessionID
	s.leave = bool(info.LeaveMessageEnabled)
	s.mu.Unlock()
	return c, backlog, nil
}

// emit commits e through the sink, which retries a store that refuses for
// a moment. False means e was not stored and the chat's reader must stop:
// ctx ended, or the sink refused e for good (logged here; the chat's socket
// is then dropped, as the conversation cannot take its events).
func (s *session) emit(ctx context.Context, e connector.Event) bool {
	e.ConversationID = s.id
	err := s.v.deliver(ctx, e)
	if err != nil && ctx.Err() == nil {
		s.log.Error("whoson event not stored; the chat's socket is dropped", zap.Error(err))
	}
	return err == nil
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

// send writes m's parts that have not been written yet, recording each but
// the last in the send-progress store before the next is written, so that a
// retry, in this process or after a restart, does not repeat them. It does
// not wait for the server: a line the socket swallows is written again after
// the reconnect (resend).
//
// The last part needs no record in the store: once it is written the send
// succeeds and the core's sent mark follows at once, committed the same way
// as a record would be (lazily). A retry in this process of a message
// written whole is told by the session's lastSent: the core sends a
// conversation's messages in order and retries one before the next.
// So only a split message, or one the core hands over as Recovered (it may
// have been under way in an earlier process), can have a record to look for,
// and a single line costs neither a read nor a write. What this gives up: a
// crash of the process between the last part's write and the commit of the
// core's mark writes that part again after the restart.
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
	chat := s.state.ChatUID
	s.mu.Unlock()
	if m.ID != 0 && s.lastSent.Load() == m.ID {
		return nil // written whole already: a retry of a send whose success was not seen
	}
	from := 0
	if len(parts) > 1 || m.Recovered {
		if from, err = s.partsSent(ctx, m.ID, chat, len(parts)); err != nil {
			return err
		}
	}
	for i := from; i < len(parts); i++ {
		if err := s.writeLine(ctx, c, sid, parts[i]); err != nil {
			return err
		}
		if i+1 == len(parts) {
			s.lastSent.Store(m.ID)
			break
		}
		if err := s.saveSent(ctx, m.ID, sendRecord{Chat: chat, Parts: len(parts), Sent: i + 1}); err != nil {
			return err
		}
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
		c.closeGracefully(ctx, s.v.group)
	}
	s.stop()
	return err
}
