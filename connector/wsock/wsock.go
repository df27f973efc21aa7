// Package wsock is the WebSocket client connection of the adapters that
// hold one socket per chat (WhosOn, Cention). A chat is idle nearly all its
// life and every chat holds a socket, so what an idle socket keeps decides
// how many chats a process holds. A Conn has no goroutine of its own:
// whoever waits for its frames reads them (Next), one at a time, and a ping
// (Ping, from the vendor's keepalive) waits for the pong that reader takes.
package wsock

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector/keepalive"
	"github.com/connectord/connectord/connector/portspread"
)

// Sizes of a socket's buffers. The read buffer is only big enough for a
// frame header or a control frame (a data frame of any size is read straight
// into a pooled frame buffer), and write buffers are borrowed from a pool
// for the time of one write, so that an idle socket holds neither. A message
// longer than writeBufferSize goes out as several frames, which the protocol
// allows. (coder/websocket, which the other WebSocket code here uses, keeps
// a 4 KiB read and a 4 KiB write buffer per socket for its whole life.)
const (
	readBufferSize  = 256
	writeBufferSize = 16 << 10
)

// NewDialer returns the dialer for every socket of one vendor: the proxy
// from the environment, tlsConfig for wss://, the handshake within timeout.
// Its TCP connections go through portspread, which picks their local ports
// itself once the vendor holds thousands: a vendor's sockets all go to one
// server, and past about 14,000 of them the kernel's own choice costs ten
// times as much per connect.
func NewDialer(tlsConfig *tls.Config, timeout time.Duration) *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   portspread.New(net.Dialer{}).DialContext,
		Proxy:            http.ProxyFromEnvironment,
		TLSClientConfig:  tlsConfig,
		HandshakeTimeout: timeout,
		ReadBufferSize:   readBufferSize,
		WriteBufferSize:  writeBufferSize,
		WriteBufferPool:  &sync.Pool{},
	}
}

// maxPooledBuf bounds the frame buffers kept for reuse: one that grew past
// it (a large event) is left to the garbage collector rather than kept for
// every later small frame.
const maxPooledBuf = 64 << 10

// Buffers are the frame buffers of every socket of one vendor: frames are
// read into and written from them, so that an idle chat holds none and a
// busy one does not allocate one per frame. The zero value is ready.
type Buffers struct{ pool sync.Pool }

// Get returns an empty buffer; Put takes it back once its bytes are no
// longer needed.
func (p *Buffers) Get() *bytes.Buffer {
	if b, ok := p.pool.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// Put takes b back for reuse, unless it grew past maxPooledBuf.
func (p *Buffers) Put(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuf {
		return
	}
	b.Reset()
	p.pool.Put(b)
}

// Conn is one WebSocket. It implements keepalive.Socket; an adapter that
// embeds it may add to Ping.
type Conn struct {
	ws   *websocket.Conn
	log  *zap.Logger
	bufs *Buffers
	err  error // why Next failed; written by the reader before readEnded closes

	// reads is bumped as the reader enters and leaves the library's read:
	// odd while it waits there (keepalive.Socket.Reads).
	reads atomic.Uint64

	writeMu sync.Mutex

	pings atomic.Uint64 // numbers the pings; a pong carries its ping's number back
	pongs chan uint64   // the newest pong's number, for Ping; holds at most one

	keep      *keepalive.Keepalive // pings the socket while it is open; nil until Watch
	self      keepalive.Socket     // what keep knows the socket as
	closing   chan struct{}
	closeOnce sync.Once
	readEnded chan struct{} // closed when the reader met the end of the socket
	endOnce   sync.Once
}

var _ keepalive.Socket = (*Conn)(nil)

// New wraps a dialled socket: frames at most readLimit bytes, buffers from
// bufs, log naming the chat.
func New(ws *websocket.Conn, log *zap.Logger, bufs *Buffers, readLimit int64) *Conn {
	ws.SetReadLimit(readLimit)
	c := &Conn{ws: ws, log: log, bufs: bufs, pongs: make(chan uint64, 1),
		closing: make(chan struct{}), readEnded: make(chan struct{})}
	ws.SetPongHandler(c.pong)
	return c
}

// Watch hands the socket to keep, as self (the adapter's type that embeds
// c, or c), which Close takes out again. It reports false, closing the
// socket, when the keepalive is stopping.
func (c *Conn) Watch(keep *keepalive.Keepalive, self keepalive.Socket) bool {
	c.keep, c.self = keep, self
	if !keep.Add(self) {
		c.Close()
		return false
	}
	return true
}

// GetBuf returns an empty frame buffer; PutBuf gives it back.
func (c *Conn) GetBuf() *bytes.Buffer { return c.bufs.Get() }

// PutBuf gives back a buffer from GetBuf or Next.
func (c *Conn) PutBuf(b *bytes.Buffer) { c.bufs.Put(b) }

// Next reads the next data frame, answering pings and taking pongs on the
// way; the caller gives the buffer back with PutBuf. ctx ending drops the
// socket (the library cannot abandon a read otherwise). Only one goroutine
// at a time may call it.
func (c *Conn) Next(ctx context.Context) (*bytes.Buffer, error) {
	if ctx.Done() != nil {
		defer context.AfterFunc(ctx, c.Close)()
	}
	c.reads.Add(1)
	b, err := c.read()
	c.reads.Add(1)
	if err != nil {
		select {
		case <-c.closing:
			err = net.ErrClosed
		default:
		}
		c.err = err
		c.endOnce.Do(func() { close(c.readEnded) })
		return nil, err
	}
	return b, nil
}

func (c *Conn) read() (*bytes.Buffer, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.GetBuf()
	if _, err := b.ReadFrom(r); err != nil {
		c.PutBuf(b)
		return nil, err
	}
	return b, nil
}

// Err is why Next failed; only once ReadEnded is closed, or from the reader.
func (c *Conn) Err() error { return c.err }

// ReadEnded is closed once the reader met the end of the socket.
func (c *Conn) ReadEnded() <-chan struct{} { return c.readEnded }

// Done is closed once Close was called.
func (c *Conn) Done() <-chan struct{} { return c.closing }

// Write writes b as one text message, within ctx's deadline. Writes are
// serialised; ctx ending during one drops the socket: a message cut short
// leaves nothing on it worth keeping.
func (c *Conn) Write(ctx context.Context, b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline, _ := ctx.Deadline() // none is zero: no deadline
	c.ws.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, c.Close)
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	stop()
	return err
}

// Ping sends a ping and waits, within ctx, for its pong, which the reader
// takes (see pong): without a reader no pong is seen.
func (c *Conn) Ping(ctx context.Context) error {
	n := c.pings.Add(1)
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], n)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	if err := c.ws.WriteControl(websocket.PingMessage, payload[:], deadline); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	for {
		select {
		case got := <-c.pongs:
			if got == n {
				return nil
			}
			// A late pong of an earlier ping: this one's is still to come.
		case <-ctx.Done():
			return ctx.Err()
		case <-c.readEnded:
			return fmt.Errorf("ping: %w", c.err)
		case <-c.closing:
			return net.ErrClosed
		}
	}
}

// Pings is how many pings were sent.
func (c *Conn) Pings() uint64 { return c.pings.Load() }

// pong is the library's pong handler, called by the reader: it passes the
// pong's number to Ping, replacing one no ping took.
func (c *Conn) pong(appData string) error {
	if len(appData) != 8 {
		return nil // not ours: this side sends 8-byte pings only
	}
	n := binary.BigEndian.Uint64([]byte(appData))
	for {
		select {
		case c.pongs <- n:
			return nil
		default:
		}
		select {
		case <-c.pongs: // a stale number no ping waits for
		default:
		}
	}
}

// Reads implements keepalive.Socket.
func (c *Conn) Reads() uint64 { return c.reads.Load() }

// Drop implements keepalive.Socket: the TCP connection only; the reader
// then ends and the chat closes the socket.
func (c *Conn) Drop() { c.ws.Close() }

// Closing implements keepalive.Socket.
func (c *Conn) Closing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Logger implements keepalive.Socket.
func (c *Conn) Logger() *zap.Logger { return c.log }

// Close drops the socket at once (no close frame); a read under way
// returns. It is idempotent and safe from any goroutine.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		if c.keep != nil {
			c.keep.Remove(c.self)
		}
		close(c.closing)
		c.ws.Close()
	})
}

// WriteClose writes a normal close frame, by deadline: the start of a
// graceful close, whose answer the reader takes.
func (c *Conn) WriteClose(deadline time.Time) error {
	frame := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	return c.ws.WriteControl(websocket.CloseMessage, frame, deadline)
}

// Spawner runs a function on a goroutine it waits for when it stops, and
// reports false, running nothing, once stopped (connector.Group).
type Spawner interface {
	Go(fn func(ctx context.Context)) bool
}

// CloseGracefully sends a close frame and waits up to wait for the server's,
// so that the frames written just before reach it; when ctx ends first it
// drops the socket at once. The server's close frame is taken by the
// socket's reader, or by drain when one is given (a socket that no reader
// serves: drain reads until the read fails). The handshake runs in g, so
// that stopping g waits for it; a g that is stopped drops the socket.
func (c *Conn) CloseGracefully(ctx context.Context, g Spawner, wait time.Duration, drain func(ctx context.Context)) {
	done := make(chan struct{})
	if !g.Go(func(gctx context.Context) {
		defer close(done)
		if err := c.WriteClose(time.Now().Add(wait)); err != nil {
			return
		}
		if drain != nil {
			c.SetReadDeadline(time.Now().Add(wait))
			drain(gctx)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-c.ReadEnded():
		case <-c.Done():
		case <-gctx.Done():
		case <-t.C:
		}
	}) {
		c.Close()
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	c.Close()
	<-done
}

// SetReadDeadline bounds the reads from now on (a graceful close's wait for
// the server's close frame when no reader runs).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }
