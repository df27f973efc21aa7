package cention

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// sessionState is the vendor session the core stores with the conversation:
// all a restarted daemon needs to resume the chat.
type sessionState struct {
	// Token is the random string connectord made up for the chat; the
	// server keys the chat on it, so a socket with the same token and a
	// resume frame continues it.
	Token string `json:"token"`
	// SessionID and Secret are what register answered: the upload call
	// and the add attachment frame carry them.
	SessionID string `json:"session_id,omitempty"`
	Secret    string `json:"secret,omitempty"`
	// Agent is the agent last reported joined, so that a resumed chat does
	// not report the same agent again.
	Agent string `json:"agent,omitempty"`
	// MCount is the last mcount given to a customer line in the chat.
	MCount int64 `json:"mcount,omitempty"`
	// NoAgent: no chat runs (closed, nobody available, queue full); only a
	// left message may follow.
	NoAgent bool `json:"no_agent,omitempty"`
	// Ended: Cention ended the chat; End and Resume have nothing to do.
	Ended bool `json:"ended,omitempty"`
}

func (st sessionState) marshal() json.RawMessage {
	b, _ := json.Marshal(st) // strings, ints and bools cannot fail
	return b
}

// maxSession bounds a stored session read back.
const maxSession = 4 << 10

func parseSession(raw json.RawMessage) (sessionState, error) {
	var st sessionState
	if len(raw) == 0 {
		return st, errors.New("no cention session stored")
	}
	if len(raw) > maxSession {
		return st, fmt.Errorf("stored cention session over %d bytes", maxSession)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return sessionState{}, fmt.Errorf("stored cention session: %w", err)
	}
	if len(st.Token) > maxID || len(st.SessionID) > maxID || len(st.Secret) > maxID || len(st.Agent) > maxAgentName || st.MCount < 0 {
		return sessionState{}, errors.New("stored cention session out of bounds")
	}
	return st, nil
}

// newToken makes up a chat token: 26 characters of crypto/rand base32.
func newToken() string { return "connectord-" + rand.Text() }

// errDone ends a chat's supervision for a reason already dealt with (the
// chat is over). It is returned Permanent so that Supervise stops.
var errDone = errors.New("cention chat socket no longer needed")

// chatLost is the error for the chat of token, which Cention no longer has.
func chatLost(token, why string) error {
	return fmt.Errorf("cention chat %s (%s): %w", shortToken(token), why, connector.ErrChatLost)
}

// shortToken names a token in logs and errors without giving it away.
func shortToken(t string) string {
	if len(t) > 16 {
		return t[:16] + "…"
	}
	return t
}

// session is one conversation's chat: its socket, reconnected with the same
// token under connector.Supervise, and the goroutine that turns frames into
// events, one at a time and in order.
type session struct {
	v      *Vendor
	id     int64
	log    *zap.Logger
	status connector.Status

	done    chan struct{} // closed when run returned (or never ran)
	firstUp chan struct{} // closed once run serves its first socket
	lost    chan struct{} // closed once Cention refused to resume the chat

	mu      sync.Mutex
	cancel  context.CancelFunc
	state   sessionState
	conn    *conn
	ready   chan struct{} // closed while conn is set
	ending  bool
	umids   *idSet                   // umids the server confirmed
	waiters map[string]chan struct{} // Sends waiting for their umid

	// Owned by the run goroutine.
	seen     *seenSet
	typing   bool
	queuePos int
}

func (v *Vendor) newSession(id int64, st sessionState) *session {
	return &session{v: v, id: id, log: connector.LightWith(v.log, zap.Int64("conversation", id)), state: st,
		done: make(chan struct{}), firstUp: make(chan struct{}), lost: make(chan struct{}), ready: make(chan struct{}),
		umids: newIDSet(maxRemembered), waiters: map[string]chan struct{}{}, seen: newSeenSet(maxRemembered)}
}

func (s *session) snapshot() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.marshal()
}

func (s *session) token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Token
}

// setConn installs the live socket (nil: down).
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

// waitReady waits for a live socket, within ctx.
func (s *session) waitReady(ctx context.Context) (*conn, error) {
	for {
		s.mu.Lock()
		c, ready, ending := s.conn, s.ready, s.ending
		s.mu.Unlock()
		if c != nil {
			return c, nil
		}
		if ending {
			return nil, errors.New("the cention chat is closing")
		}
		select {
		case <-ready:
		case <-s.lost:
			return nil, s.lostError()
		case <-s.done:
			if s.isLost() {
				return nil, s.lostError()
			}
			return nil, connector.Permanent(errors.New("the cention chat is over"))
		case <-ctx.Done():
			return nil, fmt.Errorf("the cention chat's socket is still reconnecting: %w", ctx.Err())
		}
	}
}

func (s *session) isLost() bool {
	select {
	case <-s.lost:
		return true
	default:
		return false
	}
}

func (s *session) lostError() error { return chatLost(s.token(), "resume refused") }

func (s *session) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// peek runs on the reader goroutine for every frame: it takes the umid
// confirmations ("message sent", and the customer's own lines in a batch)
// at once, however long the events queued ahead of them take to store.
func (s *session) peek(f serverFrame) {
	switch f.Event {
	case evSent:
		if _, umid, ok := decodeSent(f.arg0()); ok {
			s.confirm(umid)
		}
	case evNewMessage, evChatMessage:
		for _, m := range decodeBatch(f.Args).Messages {
			if m.fromCustomer() && m.UMID != "" {
				s.confirm(m.UMID)
			}
		}
	}
}

// confirm records that the server has umid and wakes its Send.
func (s *session) confirm(umid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.umids.add(umid)
	if w, ok := s.waiters[umid]; ok {
		close(w)
		delete(s.waiters, umid)
	}
}

// waiter returns a channel closed once umid is confirmed (already closed
// when it is).
func (s *session) waiter(umid string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.waiters[umid]; ok {
		return w
	}
	w := make(chan struct{})
	if s.umids.has(umid) {
		close(w)
		return w
	}
	s.waiters[umid] = w
	return w
}

func (s *session) dropWaiter(umid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters, umid)
}

// start runs the session on first, the socket Open or Resume made, with
// backlog (frames read during the handshake) dispatched first. It returns
// once the socket counts as up; false when the vendor is stopping (first is
// then closed).
func (s *session) start(first *conn, backlog []serverFrame) bool {
	ctx, cancel := s.v.group.Bind(context.Background())
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.setConn(first)
	// cancel once run returns: a finished chat keeps no hook on the vendor.
	if !s.v.group.Go(func(context.Context) { defer cancel(); s.run(ctx, first, backlog) }) {
		cancel()
		s.setConn(nil)
		first.Close()
		close(s.done)
		return false
	}
	select {
	case <-s.firstUp:
	case <-s.done:
	}
	return true
}

// stop ends the run goroutine and waits for it. The goroutine's read does
// not watch its context (see serve): the socket is dropped to end it.
func (s *session) stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	<-s.done
}

// run serves the chat until it is over or ctx ends: on first, then, each
// time the socket drops, on a new socket with the same token and a resume
// frame, at the pace of the reconnect policy, until Cention refuses the
// resume (EventLost: the core opens a new chat).
func (s *session) run(ctx context.Context, first *conn, backlog []serverFrame) {
	defer close(s.done)
	defer s.v.forget(s)
	err := connector.Supervise(ctx, s.v.cfg.reconnect(), &s.status, s.log, func(ctx context.Context, up func()) error {
		if first != nil {
			c, frames := first, backlog
			first, backlog = nil, nil
			up()
			close(s.firstUp)
			return s.serve(ctx, c, frames)
		}
		if s.v.group.Stopped() {
			// Stop drops the sockets before the chats' contexts end (they
			// are bound to the vendor's by a callback): no new one.
			return connector.Permanent(errDone)
		}
		c, frames, err := s.reattach(ctx)
		if errors.Is(err, connector.ErrChatLost) {
			return connector.Permanent(err)
		}
		if err != nil {
			return err
		}
		s.log.Info("cention chat resumed on a new socket")
		up()
		return s.serve(ctx, c, frames)
	})
	s.over(ctx, err)
}

// serve reads c until it drops (an error: Supervise reconnects) or the chat
// is over (errDone, or the chat lost). This goroutine only reads the socket
// (and so takes the pongs of the keepalive's pings); the frames are decoded
// and the umid confirmations taken (peek) by a short-lived goroutine, and
// the events handed to the sink, in order, by another (inbox). Decoding
// JSON runs deep, and handing an event over runs deep through the core and
// its store; a goroutine's stack keeps the size it grew to, so the reader,
// which waits all the idle life of a chat, does neither and stays small.
// It goes on reading while the store is slow: pings are answered and
// confirmations taken all along.
func (s *session) serve(ctx context.Context, c *conn, backlog []serverFrame) error {
	c.served.Store(true)
	s.setConn(c)
	defer func() {
		s.setConn(nil)
		c.Close()
	}()
	if err := ctx.Err(); err != nil {
		return err // stop came before the socket was set: it drops no socket
	}
	in := newInbox()
	if !s.queueDecoded(ctx, c, in, backlog) {
		return s.dispatchErr(ctx, in)
	}
	for {
		// Not ctx: a read watching a context costs a registration with it
		// for as long as the chat is idle. stop drops the socket instead.
		b, err := c.Next(context.Background())
		if err != nil {
			if in.wait() {
				return s.dispatchErr(ctx, in)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The vendor's Stop drops every socket, maybe before ctx ends:
			// not a drop to reconnect from.
			if s.isEnding() || s.v.group.Stopped() {
				return connector.Permanent(errDone)
			}
			return fmt.Errorf("cention socket dropped: %w", connector.Redacted(err))
		}
		if !s.enqueue(ctx, c, in, b) {
			return s.dispatchErr(ctx, in)
		}
	}
}

// dispatchErr is why the dispatch of in stopped.
func (s *session) dispatchErr(ctx context.Context, in *inbox) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.err != nil:
		return in.err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return errStopped
}

// Bounds of the frames read ahead of their dispatch: past either the reader
// waits until some are handed over, so that a slow store slows the socket
// down instead of filling memory. A socket holds at most frameQueue frames,
// or frameQueueBytes and one frame of up to readLimit.
const (
	frameQueue      = 8
	frameQueueBytes = 1 << 20
)

// inbox holds one socket's frames between its reader and their dispatch:
// raw, as read, for the decoder; decoded, for the dispatcher. Each of the
// two runs on a goroutine of its own while it has frames, so that a
// dispatch waiting for a slow store holds up neither the reading nor the
// confirmations.
type inbox struct {
	mu          sync.Mutex
	changed     *sync.Cond // a frame left the queue, or a goroutine returned
	raw         []*bytes.Buffer
	decoded     []framed
	bytes       int  // on the wire, of every frame queued
	decoding    bool // a goroutine decodes raw
	dispatching bool // a goroutine hands decoded over
	over        bool // a dispatch stopped the chat's socket
	err         error
}

// framed is a decoded frame and its size on the wire.
type framed struct {
	serverFrame
	size int
}

func newInbox() *inbox {
	in := &inbox{}
	in.changed = sync.NewCond(&in.mu)
	return in
}

// full reports whether the reader is to wait. Guarded by mu.
func (in *inbox) full() bool {
	return !in.over && (len(in.raw)+len(in.decoded) >= frameQueue || in.bytes >= frameQueueBytes)
}

// enqueue hands the frame read into b to the decoder, starting one if none
// runs, and waits while the queue is full; false when the chat's socket is
// to stop.
func (s *session) enqueue(ctx context.Context, c *conn, in *inbox, b *bytes.Buffer) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.over {
		c.PutBuf(b)
		return false
	}
	in.raw = append(in.raw, b)
	in.bytes += b.Len()
	if !in.decoding {
		in.decoding = true
		if !s.v.group.Go(func(context.Context) { s.decodeAll(ctx, c, in) }) {
			in.decoding = false
			in.stop(c, nil)
			return false
		}
	}
	for in.full() {
		in.changed.Wait()
	}
	return !in.over
}

// queueDecoded queues frames already decoded and peeked (a handshake's
// backlog) for dispatch; false when the chat's socket is to stop.
func (s *session) queueDecoded(ctx context.Context, c *conn, in *inbox, fs []serverFrame) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, f := range fs {
		in.decoded = append(in.decoded, framed{serverFrame: f})
	}
	return s.startDispatch(ctx, c, in)
}

// startDispatch starts the dispatcher when frames wait and none runs;
// false when it cannot (the vendor stops). Called with in.mu held.
func (s *session) startDispatch(ctx context.Context, c *conn, in *inbox) bool {
	if in.dispatching || len(in.decoded) == 0 || in.over {
		return !in.over
	}
	in.dispatching = true
	if !s.v.group.Go(func(context.Context) { s.dispatchAll(ctx, c, in) }) {
		in.dispatching = false
		in.stop(c, nil)
		return false
	}
	return true
}

// decodeAll decodes the raw frames in order, shows each to peek (the umid
// confirmations) and queues it for dispatch, until none is left.
// Malformed frames are logged and skipped.
func (s *session) decodeAll(ctx context.Context, c *conn, in *inbox) {
	for {
		in.mu.Lock()
		if len(in.raw) == 0 || in.over {
			for _, b := range in.raw { // dropped: the socket stops
				c.PutBuf(b)
			}
			in.raw = nil // an idle chat keeps no array of past frames
			in.decoding = false
			in.changed.Broadcast()
			in.mu.Unlock()
			return
		}
		b := in.raw[0]
		in.raw[0] = nil
		in.raw = in.raw[1:]
		in.mu.Unlock()
		f, err := decodeFrame(b.Bytes()) // copies what it keeps
		n := b.Len()
		c.PutBuf(b)
		if err != nil {
			s.log.Warn("skipping malformed cention frame", zap.Error(err), zap.Int("bytes", n))
		} else {
			s.peek(f)
		}
		in.mu.Lock()
		if err != nil {
			in.bytes -= n
			in.changed.Broadcast()
		} else {
			in.decoded = append(in.decoded, framed{serverFrame: f, size: n})
			s.startDispatch(ctx, c, in)
		}
		in.mu.Unlock()
	}
}

// dispatchAll hands the decoded frames over in order until none is left.
// When one fails, the rest are dropped and so is the socket, which ends
// its reader.
func (s *session) dispatchAll(ctx context.Context, c *conn, in *inbox) {
	for {
		in.mu.Lock()
		if len(in.decoded) == 0 || in.over {
			in.decoded = nil // an idle chat keeps no array of past frames
			in.dispatching = false
			in.changed.Broadcast()
			in.mu.Unlock()
			return
		}
		f := in.decoded[0]
		in.decoded[0] = framed{}
		in.decoded = in.decoded[1:]
		in.bytes -= f.size
		in.changed.Broadcast()
		in.mu.Unlock()
		if s.isEnding() {
			continue
		}
		if err := s.handle(ctx, f.serverFrame); err != nil {
			in.mu.Lock()
			in.stop(c, err)
			in.mu.Unlock()
		}
	}
}

// stop drops the rest of the frames and the socket, for err. Called with
// in.mu held.
func (in *inbox) stop(c *conn, err error) {
	in.over, in.err = true, err
	in.changed.Broadcast()
	c.Close()
}

// wait waits until every queued frame is handed over, and reports whether
// the dispatch stopped the socket.
func (in *inbox) wait() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for in.decoding || in.dispatching {
		in.changed.Wait()
	}
	return in.over
}

// over deals with supervision having stopped for good. A chat Cention will
// not resume is not the end of the conversation: EventLost, carrying the
// lost session, has the core open a new chat.
func (s *session) over(ctx context.Context, err error) {
	if err == nil || errors.Is(err, errDone) {
		return
	}
	s.v.markLost(s.id, s.token(), s)
	close(s.lost)
	s.log.Warn("cention no longer has the chat; the conversation gets a new one", zap.String("error", connector.RedactError(err)))
	s.emit(ctx, connector.Event{Type: connector.EventLost, Reason: connector.RedactError(err)})
}

// reattach dials with the chat's token and sends resume. A refusal (an
// error answer, "no session") is an error wrapping connector.ErrChatLost.
func (s *session) reattach(ctx context.Context) (*conn, []serverFrame, error) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	c, ans, backlog, err := s.v.resume(ctx, st.Token, s.log, s.peek)
	if err != nil {
		return nil, nil, err
	}
	if ans.SessionID != "" || ans.Secret != "" {
		s.mu.Lock()
		if ans.SessionID != "" {
			s.state.SessionID = ans.SessionID
		}
		if ans.Secret != "" {
			s.state.Secret = ans.Secret
		}
		s.mu.Unlock()
	}
	return c, backlog, nil
}

// resume dials with token and sends resume, waiting within connect_timeout
// for the answer: a register or resume event with the session, or a batch
// of the chat's messages, is a yes; an error in any event's first argument
// is a refusal (ErrChatLost).
func (v *Vendor) resume(ctx context.Context, token string, log *zap.Logger, peek func(serverFrame)) (*conn, registerAnswer, []serverFrame, error) {
	c, err := v.dial(ctx, token, log)
	if err != nil {
		return nil, registerAnswer{}, nil, err
	}
	if err := c.send(ctx, typeResume, resumeData{}); err != nil {
		c.Close()
		return nil, registerAnswer{}, nil, err
	}
	var ans registerAnswer
	f, backlog, err := c.await(ctx, v.cfg.ConnectTimeout, "resume", peek, func(f serverFrame) bool {
		a, ok := decodeAnswer(f.arg0())
		switch {
		case ok && a.Error != "":
			ans = a
			return true
		case f.Event == evRegister || f.Event == evResume:
			ans = a
			return true
		}
		return f.Event == evNewMessage || f.Event == evChatMessage
	})
	if err != nil {
		c.Close()
		return nil, ans, nil, err
	}
	if ans.Error != "" {
		c.Close()
		log.Info("cention refused to resume the chat", zap.String("error", ans.Error))
		return nil, ans, nil, chatLost(token, ans.Error)
	}
	if f.Event == evNewMessage || f.Event == evChatMessage {
		backlog = append(backlog, f) // the chat's messages: dispatched first
	}
	return c, ans, backlog, nil
}

// emit commits e through the sink. Every event but typing carries the
// session, so that the agent and mcount reach the store with it. An error
// stops the chat's reader: the sink refused e for good (Permanent: logged,
// the socket is dropped, as the conversation cannot take its events), or
// it did not store e now (ctx ended; or, from a sink that does not retry,
// any other error: the socket is dropped and resumed, and the history the
// resume brings offers e again).
func (s *session) emit(ctx context.Context, e connector.Event) error {
	e.ConversationID = s.id
	if e.Type != connector.EventTyping {
		e.Session = s.snapshot()
	}
	err := s.v.deliver(ctx, e)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case connector.IsPermanent(err):
		s.log.Error("cention event not stored; the chat's socket is dropped", zap.Error(err))
		return connector.Permanent(fmt.Errorf("%w: %w", errDone, err))
	}
	return fmt.Errorf("cention event not stored now, the chat is read again: %w", err)
}

// idSet is a set of strings that forgets its oldest entries past max.
type idSet struct {
	max   int
	m     map[string]struct{}
	order []string
}

func newIDSet(max int) *idSet { return &idSet{max: max, m: map[string]struct{}{}} }

func (s *idSet) has(id string) bool {
	_, ok := s.m[id]
	return ok
}

func (s *idSet) add(id string) {
	if s.has(id) {
		return
	}
	if len(s.order) >= s.max {
		delete(s.m, s.order[0])
		s.order = s.order[1:]
	}
	s.m[id] = struct{}{}
	s.order = append(s.order, id)
}

// seenSet remembers the messages of a chat already handled, by Cention id
// and by umid. A umid alone identifies a message only when it was not seen
// with another id: agents' lines may share a placeholder umid.
type seenSet struct {
	ids   *idSet
	umids map[string]string // umid -> the id it came with ("" for none)
	order []string
	max   int
}

func newSeenSet(max int) *seenSet {
	return &seenSet{ids: newIDSet(max), umids: map[string]string{}, max: max}
}

// dup reports whether m was handled before.
func (s *seenSet) dup(m chatMsg) bool {
	if m.ID != "" && s.ids.has(m.ID) {
		return true
	}
	prev, ok := s.umids[m.UMID]
	return ok && m.UMID != "" && (prev == "" || m.ID == "" || prev == m.ID)
}

// add records m as handled.
func (s *seenSet) add(m chatMsg) {
	if m.ID != "" {
		s.ids.add(m.ID)
	}
	if m.UMID == "" {
		return
	}
	if _, ok := s.umids[m.UMID]; !ok {
		if len(s.order) >= s.max {
			delete(s.umids, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, m.UMID)
	}
	s.umids[m.UMID] = m.ID
}
