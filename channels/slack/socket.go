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

// Socket Mode timings.
const (
	// pingEvery is how often we ping Slack; a socket that does not answer
	// within pingTimeout is taken for dead and replaced.
	pingEvery   = 30 * time.Second
	pingTimeout = 10 * time.Second
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
// core's reconnect policy; c.socket follows it for Health. It returns early
// only when Slack refuses the app token: no later attempt can work, and
// Health keeps saying why.
func (c *Channel) runSocket(ctx context.Context) {
	err := connector.Supervise(ctx, c.cfg.Reconnect(), &c.socket, c.log.With(zap.String("intake", "socket mode")), c.serveSockets)
	if err != nil {
		c.log.Error("socket mode stopped until a restart; fix app_token", zap.Error(err))
	}
}

// serveSockets is one supervised Socket Mode session: a socket, and each
// socket that replaces it when Slack announces a refresh. The next socket is
// opened at once while the old one delivers what it still has until Slack
// closes it, so a refresh is neither a failure nor a wait, and the session
// stays up through it. up runs at the session's first hello.
//
// The session ends when its newest socket does, or when the socket that
// should replace it cannot be opened; it returns why once every socket of
// the session has closed (an older one still draining keeps delivering and
// acking until then).
func (c *Channel) serveSockets(ctx context.Context, up func()) error {
	var readers sync.WaitGroup
	defer readers.Wait()
	var once sync.Once
	hello := func() {
		once.Do(up)
		c.log.Info("socket mode connected")
		c.goCatchUp(ctx) // after every hello: what arrived while no socket was open
	}
	for {
		conn, err := c.dialSocket(ctx)
		if err != nil {
			return err
		}
		refresh := make(chan struct{}, 1)
		ended := make(chan error, 1) // buffered: a replaced socket's end is not awaited
		readers.Go(func() { ended <- c.readSocket(ctx, conn, refresh, hello) })
		select {
		case <-refresh:
			c.log.Info("socket mode refresh: opening the next connection")
		case err := <-ended:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dialSocket asks apps.connections.open for a URL and connects to it. A
// refused app token is Permanent; a 429 carries its Retry-After.
func (c *Channel) dialSocket(ctx context.Context) (*websocket.Conn, error) {
	octx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	_, url, err := c.api.StartSocketModeContext(octx)
	c.noteAPI(err)
	if err != nil {
		return nil, connector.Redacted(openError(err))
	}
	conn, _, err := websocket.Dial(octx, url, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		// The URL carries a one-time ticket: never in an error text.
		return nil, connector.Redacted(fmt.Errorf("dial socket: %w", err))
	}
	conn.SetReadLimit(maxFrame)
	return conn, nil
}

// openError says why apps.connections.open failed, in the terms Supervise
// acts on.
func openError(err error) error {
	var rl *slack.RateLimitedError
	switch {
	case authError(err):
		return connector.Permanent(fmt.Errorf("apps.connections.open refused app_token, not retrying: %w", err))
	case errors.As(err, &rl):
		return connector.RetryAfter(fmt.Errorf("apps.connections.open: %w", err), rl.RetryAfter)
	}
	return fmt.Errorf("apps.connections.open: %w", err)
}

// readSocket reads one connection until it closes and returns why. Events
// are committed on their conversation's lane and acked on this connection
// only after the commit; an ack lost with the connection makes Slack
// redeliver, and the repeat is de-duplicated. hello runs at the socket's
// hello; refresh is signalled when Slack announces the socket's end.
func (c *Channel) readSocket(ctx context.Context, conn *websocket.Conn, refresh chan<- struct{}, hello func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var pinger sync.WaitGroup
	defer pinger.Wait()
	defer cancel(nil)
	defer conn.CloseNow()
	pinger.Go(func() { c.pingSocket(ctx, conn, cancel) })
	helloed := false
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return cause // stopping, or a ping unanswered
			}
			return connector.Redacted(fmt.Errorf("socket mode connection closed: %w", err))
		}
		if c.onFrame(ctx, conn, data, refresh, hello, &helloed) != nil {
			return context.Cause(ctx)
		}
	}
}

// onFrame handles one Socket Mode frame. An events_api envelope waits for
// room in the lanes first: while they are full nothing more is read, so
// nothing more is acked, and Slack keeps the rest. A panic is recovered and
// logged with its stack; the envelope stays unacked and Slack redelivers it.
// The error is ctx's, when it ended while waiting.
func (c *Channel) onFrame(ctx context.Context, conn *websocket.Conn, data []byte,
	refresh chan<- struct{}, hello func(), helloed *bool) error {
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
		case refresh <- struct{}{}:
		default:
		}
	case "events_api":
		if c.lanes.Full() {
			c.log.Warn("socket mode: too many events waiting for the store; not reading until they drain")
		}
		if err := c.lanes.WaitRoom(ctx); err != nil {
			return err
		}
		c.onEnvelope(ctx, conn, &env, len(data))
	default:
		// Interactivity, slash commands: not used, acknowledged so that
		// Slack does not show the user an error.
		c.ack(ctx, conn, env.EnvelopeID)
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

// pingSocket pings every pingEvery; a socket that does not answer is closed
// (a half-open TCP connection would otherwise look connected for hours), with
// the reason as ctx's cause.
func (c *Channel) pingSocket(ctx context.Context, conn *websocket.Conn, cancel context.CancelCauseFunc) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.lanes.Full() {
				continue // not reading on purpose: no pong would come back
			}
			pctx, pcancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("socket mode ping unanswered in %s: %w", pingTimeout, err))
				return
			}
		}
	}
}
