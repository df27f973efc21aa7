package sio

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Engine.IO 3 / Socket.IO 2 over one WebSocket (no polling, no upgrade).
//
// Engine.IO packets are text frames whose first byte is the type:
// 0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade, 6 noop.
// A message carries a Socket.IO packet whose first byte is the type:
// 0 connect, 1 disconnect, 2 event, 3 ack, 4 error, 5 binary event, 6 binary ack,
// then an optional "/nsp," and an optional ack id, then JSON.
// In Engine.IO 3 the CLIENT pings (every pingInterval) and the server answers
// with a pong; Engine.IO 4 reversed that.

const (
	eio3DefaultPingInterval = 25 * time.Second
	eio3DefaultPingTimeout  = 5 * time.Second
)

type eio3Client struct {
	*session
	pingInterval time.Duration
	pingTimeout  time.Duration
	pong         chan struct{}
}

func dialEIO3(ctx context.Context, u *url.URL, o Options) (Client, error) {
	dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()

	conn, shown, err := dialWebSocket(ctx, dctx, u, o, 3)
	if err != nil {
		return nil, err
	}

	c := &eio3Client{session: newSession(o, conn), pong: make(chan struct{}, 1)}
	early, err := c.handshake(dctx, o)
	if err != nil {
		return nil, c.handshakeFailed(dctx, o, shown, err)
	}
	c.start(nil)
	for _, ev := range early {
		c.deliver(ev)
	}
	go c.readLoop(c.handleFrame)
	go c.pingLoop()
	return c, nil
}

// handshake reads the open packet and the default namespace's connect packet
// (Socket.IO 2 servers send it unasked). Events that arrive before the connect
// are returned to be delivered first; nobody reads them yet, so more than the
// buffer's bounds fail the handshake with ErrOverflow.
func (c *eio3Client) handshake(ctx context.Context, o Options) ([]Event, error) {
	early := earlyEvents{maxEvents: o.MaxBufferedEvents, maxBytes: o.MaxBufferedBytes}
	opened := false
	for {
		f, err := c.handshakeFrame(ctx, opened)
		if err != nil {
			return nil, err
		}
		switch f.engine {
		case '0':
			op, err := parseOpen(f.payload)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
			}
			c.pingInterval, c.pingTimeout = op.interval(eio3DefaultPingInterval), op.timeout(eio3DefaultPingTimeout)
			opened = true
		case '4':
			if !f.sioOK || !f.sio.defaultNSP() {
				c.skipped.Add(1)
				continue
			}
			switch f.sio.typ {
			case '0':
				return early.events, nil
			case '1':
				return nil, fmt.Errorf("%w: server sent disconnect", ErrNamespaceRefused)
			case '4':
				return nil, fmt.Errorf("%w: %s", ErrNamespaceRefused, errorText(f.sio.data))
			case '2':
				if !f.eventOK {
					c.skipped.Add(1)
					continue
				}
				if err := early.add(f.event); err != nil {
					return nil, err
				}
			default:
				c.skipped.Add(1)
			}
		default:
			// ping, pong, upgrade, noop, malformed: nothing to do yet.
		}
	}
}

func (c *eio3Client) handleFrame(s string) {
	f := decodeFrame(s)
	switch f.engine {
	case '1':
		c.end(fmt.Errorf("%w: engine.io close packet", ErrServerDisconnect))
	case '2': // a server ping (not part of EIO3, but harmless): answer it
		_ = c.write(c.ctx, "3"+f.payload)
	case '3':
		select {
		case c.pong <- struct{}{}:
		default:
		}
	case '4':
		c.handleMessage(f)
	case '0', '5', '6':
		// open again, upgrade, noop: nothing to do
	default:
		c.skipped.Add(1)
	}
}

func (c *eio3Client) pingLoop() {
	t := time.NewTimer(c.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		select { // forget a stray pong
		case <-c.pong:
		default:
		}
		wctx, cancel := context.WithTimeout(c.ctx, c.pingTimeout)
		err := c.write(wctx, "2")
		cancel()
		if err != nil {
			if !c.isEnded() {
				c.end(fmt.Errorf("%w: writing ping: %w", ErrTransport, err))
			}
			return
		}
		t.Reset(c.pingTimeout)
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.end(fmt.Errorf("%w: no pong within %v", ErrPingTimeout, c.pingTimeout))
			return
		case <-c.pong:
			if !t.Stop() {
				<-t.C
			}
			t.Reset(c.pingInterval)
		}
	}
}

func (c *eio3Client) Emit(ctx context.Context, event string, args ...any) error {
	if c.isEnded() {
		return c.closedErr()
	}
	b, err := encodeEvent(event, args)
	if err != nil {
		return err
	}
	if err := c.write(ctx, "42"+string(b)); err != nil {
		if c.isEnded() {
			return c.closedErr()
		}
		return fmt.Errorf("sio: emit %q: %w", event, err)
	}
	return nil
}
