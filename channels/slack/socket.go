package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
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

// socketState is what Health reports about Socket Mode.
type socketState struct {
	mu      sync.Mutex
	open    int // sockets that said hello and are still open
	lastErr string
}

func (s *socketState) opened() {
	s.mu.Lock()
	s.open++
	s.lastErr = ""
	s.mu.Unlock()
}

// closed and failed keep the error's text for Health, with no URL query or
// userinfo: a Socket Mode URL carries its ticket in the query.
func (s *socketState) closed(err error) {
	s.mu.Lock()
	s.open--
	if err != nil {
		s.lastErr = connector.RedactError(err)
	}
	s.mu.Unlock()
}

func (s *socketState) failed(err error) {
	s.mu.Lock()
	s.lastErr = connector.RedactError(err)
	s.mu.Unlock()
}

func (s *socketState) health() connector.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open > 0 {
		return connector.Health{Ready: true, Detail: "socket mode connected"}
	}
	d := "socket mode: not connected"
	if s.lastErr != "" {
		d += ": " + s.lastErr
	}
	return connector.Health{Detail: d}
}

// runSocket keeps a Socket Mode connection open until ctx is done. When
// Slack announces a refresh it opens the next connection at once and lets
// the old one deliver what it still has until Slack closes it, so nothing
// waits for a reconnect.
func (c *Channel) runSocket(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for attempt := 0; ctx.Err() == nil; {
		conn, err := c.dialSocket(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.socket.failed(err)
			d := backoff(attempt)
			c.log.Warn("socket mode connect failed, will retry", zap.Duration("in", d), zap.Error(err))
			attempt++
			sleep(ctx, d)
			continue
		}
		attempt = 0
		refresh := make(chan struct{}, 1)
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			c.readSocket(ctx, conn, refresh)
		}()
		select {
		case <-refresh:
			c.log.Info("socket mode refresh: opening the next connection")
		case <-done:
		case <-ctx.Done():
		}
	}
}

// dialSocket asks apps.connections.open for a URL and connects to it.
func (c *Channel) dialSocket(ctx context.Context) (*websocket.Conn, error) {
	octx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	_, url, err := c.api.StartSocketModeContext(octx)
	c.noteAPI(err)
	if err != nil {
		return nil, connector.Redacted(fmt.Errorf("apps.connections.open: %w", err))
	}
	conn, _, err := websocket.Dial(octx, url, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		return nil, connector.Redacted(fmt.Errorf("dial socket: %w", err))
	}
	conn.SetReadLimit(maxFrame)
	return conn, nil
}

// readSocket reads one connection until it closes. Events are committed on
// their conversation's lane and acked on this connection only after the
// commit; an ack lost with the connection makes Slack redeliver, and the
// repeat is de-duplicated.
func (c *Channel) readSocket(ctx context.Context, conn *websocket.Conn, refresh chan<- struct{}) {
	runCtx := ctx // catch-up outlives this connection (a refresh must not cut it short)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer conn.CloseNow()
	go c.pingSocket(ctx, conn, cancel)
	helloed := false
	var err error
	defer func() {
		if helloed {
			c.socket.closed(err)
		}
	}()
	for {
		var data []byte
		if _, data, err = conn.Read(ctx); err != nil {
			if ctx.Err() == nil {
				c.log.Info("socket mode connection closed", zap.Error(connector.Redacted(err)))
			}
			return
		}
		if c.onFrame(ctx, runCtx, conn, data, refresh, &helloed) != nil {
			return
		}
	}
}

// onFrame handles one Socket Mode frame. An events_api envelope waits for
// room in the lanes first: while they are full nothing more is read, so
// nothing more is acked, and Slack keeps the rest. A panic is recovered and
// logged with its stack; the envelope stays unacked and Slack redelivers it.
// The error is ctx's, when it ended while waiting.
func (c *Channel) onFrame(ctx, runCtx context.Context, conn *websocket.Conn, data []byte,
	refresh chan<- struct{}, helloed *bool) error {
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
			c.socket.opened()
			c.log.Info("socket mode connected")
			c.goCatchUp(runCtx)
		}
	case "disconnect":
		c.log.Info("socket mode disconnect announced", zap.String("reason", env.Reason))
		select {
		case refresh <- struct{}{}:
		default:
		}
	case "events_api":
		if c.lanes.full() {
			c.log.Warn("socket mode: too many events waiting for the store; not reading until they drain")
		}
		if err := c.lanes.waitRoom(ctx); err != nil {
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
	c.lanes.run(laneKey(&cb), int64(size), func() {
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
// (a half-open TCP connection would otherwise look connected for hours).
func (c *Channel) pingSocket(ctx context.Context, conn *websocket.Conn, cancel context.CancelFunc) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.lanes.full() {
				continue // not reading on purpose: no pong would come back
			}
			pctx, pcancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				c.log.Warn("socket mode ping unanswered; reconnecting", zap.Error(err))
				cancel()
				return
			}
		}
	}
}
