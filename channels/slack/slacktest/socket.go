package slacktest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// socketWriteTimeout bounds one frame write; a client that does not read for
// that long is treated as gone.
const socketWriteTimeout = 5 * time.Second

// Ack is an acknowledgement received over Socket Mode.
type Ack struct {
	EnvelopeID string
	EventID    string // "" when the envelope is unknown
	Time       time.Time
}

// envelope is one Socket Mode delivery of an event.
type envelope struct {
	id      string
	ev      *event
	attempt int
	frame   []byte
	sent    chan struct{} // closed once written to a socket
	acked   chan struct{} // closed on the (not withheld) ack
	isSent  bool
	isAcked bool
}

// socket is an open Socket Mode connection.
type socket struct {
	conn    *websocket.Conn
	ctx     context.Context // ends when the socket closes
	queue   []*envelope     // waiting for the writer
	wake    chan struct{}   // (buffered) new items in queue
	poke    chan struct{}   // (buffered) settings changed or Refresh asked
	refresh bool            // Refresh asked, disconnect not sent yet
	gate    *gateConn       // its connection; nil if not a gateConn
	quiet   quiet           // SilenceSockets, DeafenSockets
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// SetAckTimeout sets how long an envelope may stay unacknowledged before it is
// redelivered (default 3s).
func (s *Server) SetAckTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackTimeout = d
}

// WithholdAcks makes the server ignore the next n acks it receives: they are
// recorded in IgnoredAcks, and their envelopes are redelivered after the ack
// timeout as if the acks had been lost.
func (s *Server) WithholdAcks(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withhold = n
}

// Acks returns the acks taken into account, in order received.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// IgnoredAcks returns the acks ignored because of WithholdAcks.
func (s *Server) IgnoredAcks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ignored)
}

// SetPingInterval sets how often the server sends a WebSocket ping on each
// socket (default 10s). It takes effect after each socket's current wait.
func (s *Server) SetPingInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pingInterval = d
	for _, so := range s.sockets {
		signal(so.poke)
	}
}

// SetRefreshEvery makes every socket refresh itself d after it opened, as Slack
// does every few hours: a disconnect message with reason "refresh_requested",
// then the close a second later. 0 (the default) never refreshes.
func (s *Server) SetRefreshEvery(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshEvery = d
	for _, so := range s.sockets {
		signal(so.poke)
	}
}

// Refresh sends {"type":"disconnect","reason":"refresh_requested",...} on every
// open socket and closes each about a second later, leaving time to open a new
// one. Envelopes left unacknowledged are redelivered after the ack timeout.
func (s *Server) Refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, so := range s.sockets {
		so.refresh = true
		signal(so.poke)
	}
}

// DropSockets closes every socket abruptly, with no disconnect message, as a
// network failure would.
func (s *Server) DropSockets() {
	s.mu.Lock()
	socks := slices.Clone(s.sockets)
	s.mu.Unlock()
	for _, so := range socks {
		_ = so.conn.CloseNow()
	}
}

// Sockets returns how many sockets are open now.
func (s *Server) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// Connections returns how many sockets were opened since the server started.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// appsConnectionsOpen issues a single-use ticket for /socket-mode.
func (s *Server) appsConnectionsOpen(params) result {
	ticket := newUUID()
	s.mu.Lock()
	s.tickets[ticket] = true
	s.mu.Unlock()
	u := "ws" + s.URL[len("http"):] + "/socket-mode?ticket=" + ticket + "&app_id=" + s.AppID
	return ok(map[string]any{"url": u})
}

// handleSocket serves a Socket Mode connection for its whole life: it says
// hello, then reads acks while a writer sends envelopes and a keeper sends
// pings and disconnect messages.
func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket: call apps.connections.open", http.StatusUnauthorized)
		return
	}
	// Slack accepts any Origin; slack-go's client sends "https://api.slack.com",
	// which coder/websocket would refuse as cross-origin by default.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(1 << 20)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	so := &socket{conn: conn, ctx: ctx, wake: make(chan struct{}, 1), poke: make(chan struct{}, 1)}
	so.gate, _ = r.Context().Value(gateKey{}).(*gateConn)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.CloseNow()
		return
	}
	// Registered before hello, so that Sockets counts it once the app has its
	// hello; envelopes queue up meanwhile, and the writer starts after hello.
	s.sockets = append(s.sockets, so)
	s.connections++
	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": len(s.sockets),
		"debug_info": map[string]any{
			"host":                        "fake",
			"build_number":                1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": s.AppID},
	})
	s.flushUnsentLocked()
	s.changedLocked()
	s.mu.Unlock()

	wctx, wcancel := context.WithTimeout(ctx, socketWriteTimeout)
	err = conn.Write(wctx, websocket.MessageText, hello)
	wcancel()
	var wg sync.WaitGroup
	if err == nil {
		wg.Add(2)
		go func() { defer wg.Done(); s.writeLoop(so) }()
		go func() { defer wg.Done(); s.keepLoop(so) }()
		s.readLoop(so)
	}

	cancel()
	_ = conn.CloseNow()
	wg.Wait()
	s.mu.Lock()
	s.sockets = slices.DeleteFunc(s.sockets, func(x *socket) bool { return x == so })
	s.unsent = append(so.queue, s.unsent...)
	so.queue = nil
	s.flushUnsentLocked()
	s.changedLocked()
	s.mu.Unlock()
}

// readLoop reads acks until the socket fails or closes.
func (s *Server) readLoop(so *socket) {
	for {
		typ, data, err := so.conn.Read(so.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var msg struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &msg) != nil || msg.EnvelopeID == "" {
			continue // not an ack; Slack ignores it too
		}
		s.ack(msg.EnvelopeID)
	}
}

// ack records an ack and, unless withheld, ends the envelope's wait.
func (s *Server) ack(envelopeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.envelopes[envelopeID]
	a := Ack{EnvelopeID: envelopeID, Time: time.Now()}
	if env != nil {
		a.EventID = env.ev.id
	}
	s.changedLocked()
	if s.withhold > 0 {
		s.withhold--
		s.ignored = append(s.ignored, a)
		return
	}
	s.acks = append(s.acks, a)
	if env != nil && !env.isAcked {
		env.isAcked = true
		close(env.acked)
	}
}

// writeLoop writes the socket's queued envelopes in order.
func (s *Server) writeLoop(so *socket) {
	for {
		s.mu.Lock()
		if len(so.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-so.wake:
				continue
			case <-so.ctx.Done():
				return
			}
		}
		env := so.queue[0]
		so.queue = so.queue[1:]
		lost := so.quiet == silent
		s.mu.Unlock()

		var err error
		if !lost { // a silent socket's envelopes go nowhere, unacked
			ctx, cancel := context.WithTimeout(so.ctx, socketWriteTimeout)
			err = so.conn.Write(ctx, websocket.MessageText, env.frame)
			cancel()
		}
		s.mu.Lock()
		if err != nil {
			// The socket is failing; the envelope waits for another one.
			s.unsent = append([]*envelope{env}, s.unsent...)
			s.mu.Unlock()
			_ = so.conn.CloseNow()
			return
		}
		if lost {
			s.lost = append(s.lost, env.ev.id)
			s.changedLocked()
		}
		if !env.isSent {
			env.isSent = true
			close(env.sent)
		}
		s.mu.Unlock()
	}
}

// keepLoop sends pings every ping interval and handles refreshes.
func (s *Server) keepLoop(so *socket) {
	opened := time.Now()
	lastPing := opened
	var closeAt time.Time // set once the disconnect message is sent
	refreshed := false
	for {
		s.mu.Lock()
		pingEvery, refreshEvery := s.pingInterval, s.refreshEvery
		asked := so.refresh
		so.refresh = false
		mute := so.quiet == silent
		s.mu.Unlock()
		if mute {
			<-so.ctx.Done() // neither pings nor refreshes any more
			return
		}

		now := time.Now()
		if !closeAt.IsZero() && !now.Before(closeAt) {
			_ = so.conn.CloseNow()
			return
		}
		if closeAt.IsZero() && (asked || !refreshed && refreshEvery > 0 && now.Sub(opened) >= refreshEvery) {
			refreshed = true
			msg, _ := json.Marshal(map[string]any{
				"type":       "disconnect",
				"reason":     "refresh_requested",
				"debug_info": map[string]any{"host": "fake"},
			})
			ctx, cancel := context.WithTimeout(so.ctx, socketWriteTimeout)
			_ = so.conn.Write(ctx, websocket.MessageText, msg)
			cancel()
			closeAt = now.Add(refreshGrace)
		}
		if pingEvery > 0 && now.Sub(lastPing) >= pingEvery {
			lastPing = now
			// Ping waits for the pong, which the read loop receives (none
			// from a deaf socket: not past the next ping).
			ctx, cancel := context.WithTimeout(so.ctx, min(socketWriteTimeout, pingEvery))
			_ = so.conn.Ping(ctx)
			cancel()
			now = time.Now()
		}

		wait := time.Hour
		if pingEvery > 0 {
			wait = min(wait, lastPing.Add(pingEvery).Sub(now))
		}
		if !closeAt.IsZero() {
			wait = min(wait, closeAt.Sub(now))
		} else if !refreshed && refreshEvery > 0 {
			wait = min(wait, opened.Add(refreshEvery).Sub(now))
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-t.C:
		case <-so.poke:
		case <-so.ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// deliverSocket queues the first envelope of ev and follows it in a goroutine:
// an envelope not acknowledged within the ack timeout is redelivered (new
// envelope_id, same event, retry_attempt+1, retry_reason "timeout"), at most
// three times; extra deliveries asked by Post.Deliveries follow the acks.
func (s *Server) deliverSocket(ev *event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.newEnvelopeLocked(ev, 0, "")
	s.goLocked(func() { s.followEnvelopes(env) })
}

func (s *Server) followEnvelopes(env *envelope) {
	ev := env.ev
	for {
		select {
		case <-env.sent:
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		timeout := s.ackTimeout
		s.mu.Unlock()
		t := time.NewTimer(timeout)
		acked := false
		select {
		case <-env.acked:
			acked = true
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
		if acked && env.attempt+1 >= ev.deliveries || env.attempt >= maxRetries {
			return
		}
		if !s.sleep(s.currentRetryDelay()) {
			return
		}
		s.mu.Lock()
		env = s.newEnvelopeLocked(ev, env.attempt+1, "timeout")
		s.mu.Unlock()
	}
}

// newEnvelopeLocked builds an envelope of ev and queues it on the next socket
// in round robin, or until one opens. s.mu must be held.
func (s *Server) newEnvelopeLocked(ev *event, attempt int, reason string) *envelope {
	env := &envelope{
		id:      newUUID(),
		ev:      ev,
		attempt: attempt,
		sent:    make(chan struct{}),
		acked:   make(chan struct{}),
	}
	env.frame, _ = json.Marshal(map[string]any{
		"envelope_id":              env.id,
		"payload":                  json.RawMessage(ev.body),
		"type":                     "events_api",
		"accepts_response_payload": false,
		"retry_attempt":            attempt,
		"retry_reason":             reason,
	})
	ev.last = max(ev.last, attempt)
	// Envelopes are kept so that late acks still name their event.
	s.envelopes[env.id] = env
	s.unsent = append(s.unsent, env)
	s.flushUnsentLocked()
	return env
}

// flushUnsentLocked hands the envelopes waiting for a socket to the open
// sockets, round robin over those still talking when there are any (a
// redelivery thus goes to another socket than a quiet one it was lost on).
// s.mu must be held.
func (s *Server) flushUnsentLocked() {
	if len(s.sockets) == 0 {
		return
	}
	to := slices.DeleteFunc(slices.Clone(s.sockets), func(so *socket) bool { return so.quiet != talking })
	if len(to) == 0 {
		to = s.sockets
	}
	for _, env := range s.unsent {
		so := to[s.rr%len(to)]
		s.rr++
		so.queue = append(so.queue, env)
		signal(so.wake)
	}
	s.unsent = nil
}
