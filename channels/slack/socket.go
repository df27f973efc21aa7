package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// Socket Mode bounds. How long a silent socket lives is
// Config.SocketSilenceTimeout (liveness).
const (
	// maxFrame bounds one Socket Mode frame (an event with many files or
	// blocks is tens of KB; coder/websocket's default 32 KiB is too small).
	maxFrame = 4 << 20
	// ackBudget bounds committing one event; Slack redelivers after 3 s
	// without an ack, and a late commit is still de-duplicated.
	ackBudget = 10 * time.Second
	// maxQueued and maxQueuedBytes bound the events read but not yet
	// committed while the store is slow: past them the reader stops reading
	// (nothing more is acked), and Slack keeps and redelivers the rest.
	maxQueued      = 256
	maxQueuedBytes = 16 << 20
)

// runSocket keeps Socket Mode connected until ctx is done, under the
// core's reconnect policy; c.socket follows it for Health. A refused app
// token is retried under the same policy (its growing waits keep that from
// becoming a storm) while Health names the key.
func (c *Channel) runSocket(ctx context.Context) {
	err := connector.Supervise(ctx, c.cfg.Reconnect(), &c.socket, c.log.With(zap.String("intake", "socket mode")), c.serveSockets)
	if err != nil {
		c.log.Error("socket mode stopped until a restart", zap.Error(err))
	}
}

// socketSession is what the sockets of one supervised session share.
type socketSession struct {
	mu     sync.Mutex
	newest int           // the id of the newest socket
	hello  chan struct{} // closed and replaced at every hello
	done   chan struct{} // closed when the session ends
}

func newSocketSession() *socketSession {
	return &socketSession{hello: make(chan struct{}), done: make(chan struct{})}
}

// add registers the next socket and returns its id.
func (s *socketSession) add() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newest++
	return s.newest
}

func (s *socketSession) isNewest(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return id == s.newest
}

// nextHello is closed at the next hello of any socket of the session.
func (s *socketSession) nextHello() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hello
}

func (s *socketSession) helloed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.hello)
	s.hello = make(chan struct{})
}

// serveSockets is one supervised Socket Mode session: a socket, and each
// socket that replaces it, when Slack announces a refresh or when the
// newest socket is found dead (liveness). The next socket is opened at once
// while the old one delivers what it still has until Slack closes it (a
// refresh) or until the next hello (a dead socket), so a refresh is neither
// a failure nor a wait, and the session stays up through it. up runs at the
// session's first hello.
//
// The session ends when its newest socket does, or when the socket that
// should replace it cannot be opened; it returns why once every socket of
// the session has closed (an older one still draining keeps delivering and
// acking until then; a dead one is closed at once).
func (c *Channel) serveSockets(ctx context.Context, up func()) error {
	var readers sync.WaitGroup
	defer readers.Wait()
	sess := newSocketSession()
	defer close(sess.done)
	var once sync.Once
	hello := func() {
		once.Do(up)
		c.stale.Store(nil)
		sess.helloed()
		c.log.Info("socket mode connected")
		c.goCatchUp(ctx) // after every hello: what arrived while no socket was open
	}
	for {
		sock, err := c.dialSocket(ctx)
		if err != nil {
			return err
		}
		sock.sess, sock.id = sess, sess.add()
		next := make(chan struct{}, 1)
		ended := make(chan error, 1) // buffered: a replaced socket's end is not awaited
		readers.Go(func() { ended <- c.readSocket(ctx, sock, next, hello) })
		select {
		case <-next:
			c.log.Info("socket mode: opening the next connection")
		case err := <-ended:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// socketConn is one Socket Mode connection and the rule that watches it.
type socketConn struct {
	conn *websocket.Conn
	live *liveness
	sess *socketSession
	id   int
}

// dialSocket opens a Socket Mode connection: the URL Start already got
// from apps.connections.open for the first one, else a new one. A refused
// app token names the key; a 429 carries its Retry-After.
func (c *Channel) dialSocket(ctx context.Context) (*socketConn, error) {
	octx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	url := c.firstURL.Swap(nil)
	if url == nil {
		u, err := c.openSocket(octx)
		if err != nil {
			return nil, err
		}
		url = &u
	}
	live := newLiveness(c.cfg.SocketSilenceTimeout, time.Now())
	conn, _, err := websocket.Dial(octx, *url, &websocket.DialOptions{
		HTTPClient:     c.http,
		OnPingReceived: func(context.Context, []byte) bool { live.heardAt(time.Now()); return true },
		OnPongReceived: func(context.Context, []byte) { live.pongAt(time.Now()) },
	})
	if err != nil {
		// The URL carries a one-time ticket: never in an error text.
		return nil, connector.Redacted(fmt.Errorf("dial socket: %w", err))
	}
	conn.SetReadLimit(maxFrame)
	return &socketConn{conn: conn, live: live}, nil
}

// openSocket asks apps.connections.open for a WebSocket URL.
func (c *Channel) openSocket(ctx context.Context) (string, error) {
	_, url, err := c.api.StartSocketModeContext(ctx)
	c.noteAPI(err)
	if err != nil {
		return "", connector.Redacted(c.openError(err))
	}
	return url, nil
}

// openError says why apps.connections.open failed, in the terms Supervise
// acts on. A refused app token is not Permanent (the daemon stays up, and
// Slack refusing a token it took before may pass), but each retry waits
// reconnect_max, so a revoked token costs one call a minute by default.
func (c *Channel) openError(err error) error {
	var rl *slack.RateLimitedError
	switch {
	case authError(err):
		// Waiting reconnect_max at once: only an operator can fix a token.
		return connector.RetryAfter(&appTokenError{key: c.key + ".app_token", err: err}, c.cfg.ReconnectMax)
	case errors.As(err, &rl):
		return connector.RetryAfter(fmt.Errorf("apps.connections.open: %w", err), rl.RetryAfter)
	}
	return fmt.Errorf("apps.connections.open: %w", err)
}

// appTokenError is Slack refusing the app token at apps.connections.open;
// its text starts with the key path, as a configuration error's does.
type appTokenError struct {
	key string // "channels.slack.support.app_token"
	err error
}

func (e *appTokenError) Error() string {
	return fmt.Sprintf("%s: Slack refused it at apps.connections.open (%v)%s", e.key, e.err, tokenHint(slackCode(e.err)))
}

func (e *appTokenError) Unwrap() error { return e.err }

// tokenHint says what a refusal code usually means for an app token.
func tokenHint(code string) string {
	switch code {
	case "not_allowed_token_type":
		return ": not an app-level token; give the app's xapp-... token with the connections:write scope"
	case "not_authed":
		return ": no token reached Slack"
	case "invalid_auth":
		return ": no such token; give the app's current app-level token (xapp-...)"
	case "token_revoked", "token_expired", "account_inactive":
		return ": the token no longer works; create a new app-level token"
	case "missing_scope":
		return ": the app-level token needs the connections:write scope"
	}
	return ""
}

// readSocket reads one connection until it closes and returns why. Events
// are committed on their conversation's lane and acked on this connection
// only after the commit; an ack lost with the connection makes Slack
// redeliver, and the repeat is de-duplicated. hello runs at the socket's
// hello; next is signalled when the session should open the next socket:
// Slack announced this one's end, or it is dead.
func (c *Channel) readSocket(ctx context.Context, sock *socketConn, next chan<- struct{}, hello func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel(nil)
	defer sock.conn.CloseNow()
	watcher.Go(func() { c.watchSocket(ctx, sock, next, cancel) })
	helloed := false
	for {
		_, data, err := sock.conn.Read(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return cause // stopping, or the socket found dead
			}
			return connector.Redacted(fmt.Errorf("socket mode connection closed: %w", err))
		}
		sock.live.heardAt(time.Now())
		if c.onFrame(ctx, sock, data, next, hello, &helloed) != nil {
			return context.Cause(ctx)
		}
	}
}

// watchSocket applies the liveness rule to sock until ctx ends: it sends
// the pings the rule asks for, and replaces a dead socket. A dead newest
// socket makes the channel not ready, has the session open the next one at
// once, and is closed at the next hello (or after another silence timeout,
// or when the session ends): what it might still bring is not thrown away
// before another socket can take over. A dead older socket (draining after
// a refresh) is closed at once. Closing sets ctx's cause.
func (c *Channel) watchSocket(ctx context.Context, sock *socketConn, next chan<- struct{}, cancel context.CancelCauseFunc) {
	var pings sync.WaitGroup
	defer pings.Wait()
	for {
		v, why, at := sock.live.check(time.Now())
		switch v {
		case ping:
			pings.Go(func() {
				pctx, pcancel := context.WithTimeout(ctx, c.cfg.SocketSilenceTimeout/2)
				defer pcancel()
				_ = sock.conn.Ping(pctx) // the pong is noted by OnPongReceived; a missing one, by the rule
			})
		case dead:
			err := fmt.Errorf("socket mode connection dead: %s", why)
			if !sock.sess.isNewest(sock.id) {
				cancel(err)
				return
			}
			c.log.Warn("socket mode connection dead; opening the next one", zap.String("why", why))
			detail := err.Error() + "; waiting for the next socket's hello"
			c.stale.Store(&detail)
			hello := sock.sess.nextHello()
			select {
			case next <- struct{}{}:
			default:
			}
			t := time.NewTimer(c.cfg.SocketSilenceTimeout)
			select {
			case <-hello:
			case <-t.C:
			case <-sock.sess.done:
			case <-ctx.Done():
			}
			t.Stop()
			cancel(err)
			return
		}
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// onFrame handles one Socket Mode frame. An events_api envelope waits for
// room in the lanes first: while they are full nothing more is read, so
// nothing more is acked, and Slack keeps the rest. A panic is recovered and
// logged with its stack; the envelope stays unacked and Slack redelivers it.
// The error is ctx's, when it ended while waiting.
func (c *Channel) onFrame(ctx context.Context, sock *socketConn, data []byte,
	next chan<- struct{}, hello func(), helloed *bool) error {
	defer c.recoverPanic("socket mode frame")
	env, err := decodeFrame(data)
	if err != nil {
		c.log.Warn("malformed socket mode frame skipped", zap.Error(err))
		return nil
	}
	switch env.Type {
	case "hello":
		if !*helloed {
			*helloed = true
			hello()
		}
	case "disconnect":
		c.log.Info("socket mode disconnect announced", zap.String("reason", env.Reason))
		select {
		case next <- struct{}{}:
		default:
		}
	case "events_api":
		if err := c.waitRoom(ctx, sock.live); err != nil {
			return err
		}
		c.onEnvelope(ctx, sock.conn, &env, len(data))
	default:
		// Interactivity, slash commands: not used, acknowledged so that
		// Slack does not show the user an error.
		c.ack(ctx, sock.conn, env.EnvelopeID)
	}
	return nil
}

// decodeFrame reads a Socket Mode frame.
func decodeFrame(data []byte) (envelope, error) {
	var env envelope
	err := json.Unmarshal(data, &env)
	return env, err
}

// laneKey is the lane an event is committed on: its conversation, else
// (not a message) its own event id.
func laneKey(cb *callback) string {
	if m, err := parseEvent(cb); err == nil && m != nil {
		return m.address().String()
	}
	return cb.EventID
}

// onEnvelope commits an events_api envelope's message on its lane, then acks.
// size is the frame's, for the lanes' bound.
func (c *Channel) onEnvelope(ctx context.Context, conn *websocket.Conn, env *envelope, size int) {
	cb, err := decodeCallback(env.Payload)
	if err != nil {
		c.log.Warn("malformed envelope skipped", zap.String("envelope_id", env.EnvelopeID), zap.Error(err))
		c.ack(ctx, conn, env.EnvelopeID)
		return
	}
	c.lanes.Go(laneKey(&cb), int64(size), func() {
		cctx, cancel := context.WithTimeout(ctx, ackBudget)
		defer cancel()
		if err := c.handleEvent(cctx, &cb); err != nil {
			log := c.log.Error
			if ctx.Err() != nil {
				log = c.log.Debug // the connection closed under it (a refresh, Stop)
			}
			log("event not committed; not acked, Slack will redeliver",
				zap.String("event_id", cb.EventID), zap.Error(err))
			return
		}
		c.ack(ctx, conn, env.EnvelopeID)
	})
}

func (c *Channel) ack(ctx context.Context, conn *websocket.Conn, id string) {
	if id == "" {
		return
	}
	b, _ := json.Marshal(ack{EnvelopeID: id})
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Info("ack not written; Slack will redeliver", zap.String("envelope_id", id), zap.Error(err))
	}
}

// waitRoom waits for room in the lanes. While they are full the socket is
// not read on purpose: no frame, ping or pong can come through, so live
// is paused meanwhile.
func (c *Channel) waitRoom(ctx context.Context, live *liveness) error {
	if !c.lanes.Full() {
		return nil
	}
	c.log.Warn("socket mode: too many events waiting for the store; not reading until they drain")
	live.pause()
	defer func() { live.resume(time.Now()) }()
	return c.lanes.WaitRoom(ctx)
}
