package sio

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Engine.IO 4 / Socket.IO 5 (socket.io 3 and 4 servers) over one WebSocket,
// no polling, no upgrade. The packets are those of EIO3 (see eio3.go); what
// differs:
//
//   - the SERVER pings ("2") every pingInterval and expects the pong ("3")
//     within pingTimeout; a client that hears no ping for pingInterval +
//     pingTimeout knows the server is gone;
//   - the open packet also carries maxPayload, the largest message the
//     server takes (it drops the connection on a larger one);
//   - the client asks for the namespace ("40", optionally with auth JSON),
//     and the server answers `40{"sid":...}` or CONNECT_ERROR `44{...}`.

const (
	eio4DefaultPingInterval = 25 * time.Second
	eio4DefaultPingTimeout  = 20 * time.Second
)

// Emit queues packets for one writer goroutine, so that a server that stops
// reading cannot block the caller: past these bounds Emit returns ErrBacklog.
const (
	maxPendingWrites = 64
	maxPendingBytes  = 4 << 20
)

type eio4Client struct {
	*session
	pingInterval time.Duration
	pingTimeout  time.Duration
	maxPayload   int64                      // the server's; 0 = not announced
	watchdog     atomic.Pointer[time.Timer] // ends the connection when no ping came; reset by each ping

	pong    chan struct{} // buffered 1: a pong is due (one answers any number of pings)
	sendq   chan []byte   // capacity maxPendingWrites
	sendMu  sync.Mutex    // makes Emit's bound check and queueing one step
	pending atomic.Int64  // bytes queued or being written
}

func dialEIO4(ctx context.Context, u *url.URL, o Options) (Client, error) {
	dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()

	conn, shown, err := dialWebSocket(ctx, dctx, u, o, 4)
	if err != nil {
		return nil, err
	}
	c := &eio4Client{session: newSession(o, conn), pong: make(chan struct{}, 1),
		sendq: make(chan []byte, maxPendingWrites)}
	early, err := c.handshake(dctx, o)
	if err != nil {
		return nil, c.handshakeFailed(dctx, o, shown, err)
	}
	c.start(func() {
		if w := c.watchdog.Load(); w != nil { // nil only if it fired before being stored
			w.Stop()
		}
	})
	c.watchdog.Store(time.AfterFunc(c.silenceLimit(), c.pingOverdue))
	for _, ev := range early {
		c.deliver(ev)
	}
	go c.readLoop(c.handleFrame)
	go c.writeLoop()
	return c, nil
}

// handshake reads the open packet, asks for the default namespace and reads
// the answer. Events that arrive before it are returned to be delivered
// first, within the buffer's bounds (earlyEvents).
func (c *eio4Client) handshake(ctx context.Context, o Options) ([]Event, error) {
	early := earlyEvents{maxEvents: o.MaxBufferedEvents, maxBytes: o.MaxBufferedBytes}
	opened := false
	for {
		f, err := c.handshakeFrame(ctx, opened)
		if err != nil {
			return nil, err
		}
		switch f.engine {
		case '0':
			if opened {
				continue
			}
			if err := c.opened(ctx, f.payload); err != nil {
				return nil, err
			}
			opened = true
		case '2':
			if err := c.write(ctx, "3"); err != nil {
				return nil, fmt.Errorf("%w: answering a ping: %w", ErrHandshake, err)
			}
		case '4':
			done, err := c.connectAnswer(f, &early)
			if done || err != nil {
				return early.events, err
			}
		default:
			// pong, upgrade, noop, malformed: nothing to do yet.
		}
	}
}

// opened takes the open packet's settings and sends the namespace CONNECT.
func (c *eio4Client) opened(ctx context.Context, payload string) error {
	op, err := parseOpen(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	c.pingInterval = op.interval(eio4DefaultPingInterval)
	c.pingTimeout = op.timeout(eio4DefaultPingTimeout)
	c.maxPayload = max(op.MaxPayload, 0)
	if err := c.write(ctx, "40"); err != nil {
		return fmt.Errorf("%w: sending the namespace connect: %w", ErrHandshake, err)
	}
	return nil
}

// connectAnswer acts on a message received while waiting for the namespace
// connect; done says the connect is confirmed.
func (c *eio4Client) connectAnswer(f frame, early *earlyEvents) (done bool, err error) {
	if !f.sioOK || !f.sio.defaultNSP() {
		c.skipped.Add(1)
		return false, nil
	}
	switch f.sio.typ {
	case '0':
		if _, err := parseConnectAnswer(f.sio.data); err != nil {
			return false, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return true, nil
	case '1':
		return false, fmt.Errorf("%w: server sent disconnect", ErrNamespaceRefused)
	case '4':
		return false, fmt.Errorf("%w: %s", ErrNamespaceRefused, errorText(f.sio.data))
	case '2':
		if !f.eventOK {
			c.skipped.Add(1)
			return false, nil
		}
		return false, early.add(f.event)
	default:
		c.skipped.Add(1)
		return false, nil
	}
}

// silenceLimit is how long the connection may go without a server ping.
func (c *eio4Client) silenceLimit() time.Duration { return c.pingInterval + c.pingTimeout }

func (c *eio4Client) pingOverdue() {
	c.end(fmt.Errorf("%w: no ping from the server within %v", ErrPingTimeout, c.silenceLimit()))
}

func (c *eio4Client) handleFrame(s string) {
	f := decodeFrame(s)
	switch f.engine {
	case '1':
		c.end(fmt.Errorf("%w: engine.io close packet", ErrServerDisconnect))
	case '2':
		c.watchdog.Load().Reset(c.silenceLimit())
		select { // the writer sends it ahead of queued events
		case c.pong <- struct{}{}:
		default: // one is due already
		}
	case '4':
		c.handleMessage(f)
	case '0', '3', '5', '6':
		// open again, pong, upgrade, noop: nothing to do
	default:
		c.skipped.Add(1)
	}
}

// writeLoop writes pongs and queued events in order, pongs first. A write
// that takes longer than the server waits for a pong ends the connection:
// the server has stopped reading, and our pong cannot reach it in time.
func (c *eio4Client) writeLoop() {
	for {
		var msg []byte
		select {
		case <-c.ctx.Done():
			return
		case <-c.pong:
			msg = []byte("3")
		default:
			select {
			case <-c.ctx.Done():
				return
			case <-c.pong:
				msg = []byte("3")
			case msg = <-c.sendq:
			}
		}
		wctx, cancel := context.WithTimeout(c.ctx, c.silenceLimit())
		err := c.conn.Write(wctx, websocket.MessageText, msg)
		cancel()
		if msg[0] != '3' {
			c.pending.Add(-int64(len(msg)))
		}
		if err != nil {
			if !c.isEnded() {
				c.end(fmt.Errorf("%w: write: %w", ErrTransport, err))
			}
			return
		}
	}
}

// Emit queues the event for the writer and returns: a write that fails
// later ends the connection (Done). It returns ErrBacklog when
// maxPendingWrites packets or maxPendingBytes wait already (the server is
// not reading), and refuses an event larger than the server's maxPayload,
// which the server would answer by dropping the connection.
func (c *eio4Client) Emit(ctx context.Context, event string, args ...any) error {
	if c.isEnded() {
		return c.closedErr()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := encodeEvent(event, args)
	if err != nil {
		return err
	}
	msg := append([]byte("42"), b...)
	if c.maxPayload > 0 && int64(len(msg)) > c.maxPayload {
		return fmt.Errorf("sio: emit %q: %d bytes, over the server's maxPayload of %d", event, len(msg), c.maxPayload)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	n, queued := len(c.sendq), c.pending.Load()
	if n >= maxPendingWrites || queued > 0 && queued+int64(len(msg)) > maxPendingBytes {
		return fmt.Errorf("sio: emit %q: %w: %d packets (%d bytes) wait to be written", event, ErrBacklog, n, queued)
	}
	c.pending.Add(int64(len(msg)))
	c.sendq <- msg // never blocks: only Emit sends, under sendMu, and there is room
	return nil
}
