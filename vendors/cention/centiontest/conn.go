package centiontest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// writeTimeout bounds one frame write.
const writeTimeout = 10 * time.Second

// conn is one client WebSocket. Fields after token are guarded by Server.mu.
type conn struct {
	s     *Server
	ws    *websocket.Conn
	token string

	chat    *chat                 // the chat this socket carries, if any
	out     [][]byte              // encoded frames not yet written
	closing *websocket.CloseError // set: write out, then close with it; enqueue nothing more
	dead    bool                  // dropped by the server; enqueue nothing more
	wake    chan struct{}         // signalled when out, closing or dead change

	lastSeen atomic.Int64 // unix nanoseconds of the last frame or ping received
}

func (c *conn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) seen() { c.lastSeen.Store(time.Now().UnixNano()) }

// sendLocked queues a server frame for the writer.
func (c *conn) sendLocked(event string, args ...any) {
	if c.dead || c.closing != nil {
		return
	}
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(serverFrame{Event: event, Args: args})
	if err != nil {
		panic("centiontest: unencodable frame: " + err.Error()) // our own types only
	}
	c.out = append(c.out, b)
	c.notify()
}

// closeLocked writes what is queued, then closes with code.
func (c *conn) closeLocked(code websocket.StatusCode, reason string) {
	if c.closing == nil {
		c.closing = &websocket.CloseError{Code: code, Reason: reason}
		c.notify()
	}
}

// serve runs the socket until it ends: this goroutine reads, others write
// and keep it alive.
func (c *conn) serve() {
	c.seen()
	ctx, cancel := context.WithCancel(c.s.ctx)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		c.writeLoop(ctx)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		c.keepAlive(ctx)
	}()
	c.readLoop(ctx)

	c.s.mu.Lock()
	if !c.dead {
		c.s.dropConnLocked(c)
	}
	c.s.mu.Unlock()
	cancel()
	<-done
	<-done
	c.ws.CloseNow()
}

// readLoop handles frames until the socket fails. Reading also answers pings.
func (c *conn) readLoop(ctx context.Context) {
	for {
		typ, p, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		c.seen()
		var f clientFrame
		if typ == websocket.MessageText {
			f, err = decodeFrame(p)
		}
		c.s.mu.Lock()
		if typ != websocket.MessageText || err != nil {
			c.s.malformed++
			c.s.changedLocked()
			c.closeLocked(websocket.StatusInvalidFramePayloadData, "malformed frame")
		} else {
			c.s.handleLocked(c, f)
		}
		c.s.mu.Unlock()
	}
}

// writeLoop writes queued frames in order until the socket fails, is
// dropped, or has written everything before a close.
func (c *conn) writeLoop(ctx context.Context) {
	for {
		c.s.mu.Lock()
		out, closing, dead := c.out, c.closing, c.dead
		c.out = nil
		c.s.mu.Unlock()
		for _, b := range out {
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.ws.CloseNow()
				return
			}
		}
		if closing != nil {
			c.ws.Close(closing.Code, closing.Reason)
			return
		}
		if dead {
			c.ws.CloseNow()
			return
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
	}
}

// keepAlive sends pings (Config.PingInterval) and drops an idle socket
// (Config.IdleTimeout). It returns at once when neither is set.
func (c *conn) keepAlive(ctx context.Context) {
	cfg := c.s.cfg
	if cfg.PingInterval <= 0 && cfg.IdleTimeout <= 0 {
		return
	}
	tick := nonZero(cfg.PingInterval)
	if cfg.IdleTimeout > 0 {
		tick = min(tick, cfg.IdleTimeout/4+time.Millisecond)
	}
	lastPing := time.Now() // before the ticker, so the first tick is a full interval after it
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if cfg.IdleTimeout > 0 && now.Sub(time.Unix(0, c.lastSeen.Load())) > cfg.IdleTimeout {
				c.ws.CloseNow()
				return
			}
			if cfg.PingInterval > 0 && now.Sub(lastPing) >= cfg.PingInterval {
				lastPing = now
				pctx, cancel := context.WithTimeout(ctx, cfg.PingInterval)
				err := c.ws.Ping(pctx) // the read loop is running, so the pong is read
				cancel()
				if err != nil {
					c.ws.CloseNow()
					return
				}
			}
		}
	}
}

// nonZero maps 0 to a duration larger than any interval, for min.
func nonZero(d time.Duration) time.Duration {
	if d <= 0 {
		return 1<<63 - 1
	}
	return d
}
