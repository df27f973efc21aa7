package cention

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
)

// Bounds of the frames a handshake (register, resume) keeps while it waits
// for its answer, to dispatch them once the chat runs. The server re-sends
// the chat's messages after a resume: one batch frame, or a few.
const (
	maxBacklogFrames = 256
	maxBacklogBytes  = 8 << 20
)

// Sizes of a socket's buffers. A chat is idle nearly all its life and every
// chat holds a socket, so what an idle socket keeps decides how many chats a
// process holds: the read buffer is only big enough for a frame header or a
// control frame (a data frame of any size is read straight into a pooled
// frame buffer), and write buffers are borrowed from a pool for the time of
// one write. A frame longer than writeBufferSize goes out as several
// WebSocket frames of one message, which the protocol allows.
const (
	readBufferSize  = 256
	writeBufferSize = 16 << 10
)

// conn is one WebSocket to external.ws. It has no goroutine of its own:
// whoever waits for its frames reads them (next), one at a time: the
// handshake in the caller's goroutine, then the chat's goroutine, so that
// an idle chat costs one goroutine. The vendor's keepalive pings it; the
// pong is read by that same reader.
type conn struct {
	ws   *websocket.Conn
	log  *zap.Logger
	bufs *sync.Pool // the vendor's frame buffers (getBuf, putBuf)
	err  error      // why next failed; set and read by the reader only

	// reads is bumped as the reader enters and leaves Read: odd while it
	// waits in Read. A ping unanswered while the reader waited in Read the
	// whole time shows a dead socket; one unanswered while the reader was
	// held up (its queue of frames full, the store slow) shows nothing.
	reads atomic.Uint64
	// served is set while a chat's goroutine reads the socket: a graceful
	// close then leaves the server's close frame to it.
	served atomic.Bool

	writeMu sync.Mutex
	nextID  int64 // the "id" of our frames on this socket

	pings atomic.Uint64 // numbers the pings; a pong carries its ping's number back
	pongs chan uint64   // the newest pong's number, for ping; holds at most one

	keep      *keepalive.Keepalive // pings the socket while it is open
	closing   chan struct{}
	closeOnce sync.Once
	readEnded chan struct{} // closed when the reader met the end of the socket
	endOnce   sync.Once
}

// dial opens the chat socket of token within connect_timeout, with the
// configured Origin, and hands it to the vendor's keepalive. It sends
// nothing: the caller speaks first (register or resume).
func (v *Vendor) dial(ctx context.Context, token string, log *zap.Logger) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ConnectTimeout)
	defer cancel()
	ws, resp, err := v.dialer.DialContext(ctx, v.cfg.socketURL(token),
		http.Header{"Origin": {v.cfg.Origin}, "User-Agent": {userAgent}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		// The library's error may quote the url, whose query is the token.
		err = connector.Redacted(fmt.Errorf("dial cention %s: %w", v.cfg.host(), err))
		if resp != nil && resp.StatusCode == http.StatusForbidden {
			return nil, fmt.Errorf("%w (is origin %q registered with Cention?)", err, v.cfg.Origin)
		}
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	ws.SetReadLimit(readLimit)
	c := &conn{ws: ws, log: log, bufs: &v.bufs, pongs: make(chan uint64, 1),
		closing: make(chan struct{}), readEnded: make(chan struct{}), keep: v.keep}
	ws.SetPongHandler(c.pong)
	if !v.keep.Add(c) {
		c.close()
		return nil, errStopped
	}
	return c, nil
}

// userAgent is sent on the WebSocket handshake and HTTP calls.
const userAgent = "connectord"

// newDialer is the vendor's one dialer for every chat socket.
func newDialer(cfg *settings) *websocket.Dialer {
	return &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		TLSClientConfig:  cfg.tls,
		HandshakeTimeout: cfg.ConnectTimeout,
		ReadBufferSize:   readBufferSize,
		WriteBufferSize:  writeBufferSize,
		WriteBufferPool:  &sync.Pool{},
	}
}

// maxPooledBuf bounds the frame buffers kept for reuse: one that grew past
// it (a resume's history) is left to the garbage collector rather than kept
// for every later small frame.
const maxPooledBuf = 64 << 10

// getBuf returns an empty frame buffer; putBuf takes it back once its
// bytes are no longer needed. Frames are read into and written from them,
// so that an idle chat holds none and a busy one does not allocate one per
// frame.
func (c *conn) getBuf() *bytes.Buffer {
	if b, ok := c.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (c *conn) putBuf(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuf {
		return
	}
	b.Reset()
	c.bufs.Put(b)
}

// next reads the next data frame, answering pings and taking pongs on the
// way; the caller gives the buffer back with putBuf. ctx ending drops the
// socket (the library cannot abandon a read otherwise). Only one goroutine
// at a time may call it.
func (c *conn) next(ctx context.Context) (*bytes.Buffer, error) {
	if ctx.Done() != nil {
		defer context.AfterFunc(ctx, c.close)()
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

func (c *conn) read() (*bytes.Buffer, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.getBuf()
	if _, err := b.ReadFrom(r); err != nil {
		c.putBuf(b)
		return nil, err
	}
	return b, nil
}

// nextFrame reads and decodes the next frame; a malformed one is logged and
// skipped. It returns the frame's size on the wire.
func (c *conn) nextFrame(ctx context.Context) (serverFrame, int, error) {
	for {
		b, err := c.next(ctx)
		if err != nil {
			return serverFrame{}, 0, err
		}
		f, err := decodeFrame(b.Bytes()) // copies what it keeps
		n := b.Len()
		c.putBuf(b)
		if err != nil {
			c.log.Warn("skipping malformed cention frame", zap.Error(err), zap.Int("bytes", n))
			continue
		}
		return f, n, nil
	}
}

// send writes one frame of type typ. ctx ending during the write drops the
// socket: a frame cut short leaves nothing on it worth keeping.
func (c *conn) send(ctx context.Context, typ string, data any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send %s: %w", typ, err)
	}
	c.nextID++
	b, err := encodeFrame(clientFrame{Type: typ, Data: data, ID: c.nextID})
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline() // none is zero: no deadline
	c.ws.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, c.close)
	err = c.ws.WriteMessage(websocket.TextMessage, b)
	stop()
	if err != nil {
		return fmt.Errorf("send %s: %w", typ, err)
	}
	return nil
}

// ping sends a ping and waits, within ctx, for its pong, which the reader
// takes (see pong): without a reader no pong is seen.
func (c *conn) ping(ctx context.Context) error {
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

// pong is the library's pong handler, called by the reader: it passes the
// pong's number to ping, replacing one ping never took.
func (c *conn) pong(appData string) error {
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

var _ keepalive.Socket = (*conn)(nil)

// Ping implements keepalive.Socket.
func (c *conn) Ping(ctx context.Context) error { return c.ping(ctx) }

// Reads implements keepalive.Socket.
func (c *conn) Reads() uint64 { return c.reads.Load() }

// Drop implements keepalive.Socket: the TCP connection only, the reader
// then ends and the chat closes the socket.
func (c *conn) Drop() { c.ws.Close() }

// Close implements keepalive.Socket.
func (c *conn) Close() { c.close() }

// Closing implements keepalive.Socket.
func (c *conn) Closing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Logger implements keepalive.Socket.
func (c *conn) Logger() *zap.Logger { return c.log }

// close drops the socket at once; a read under way returns. It is
// idempotent and safe from any goroutine.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.keep.Remove(c)
		close(c.closing)
		c.ws.Close() // the TCP connection only: no close frame
	})
}

// closeWait bounds how long a graceful close waits for the server's close
// frame once ours is written.
const closeWait = 5 * time.Second

// closeGracefully sends a close frame and waits for the server's, so that
// frames written just before reach it; when ctx ends first it drops the
// socket at once. The server's close frame is read by the chat's goroutine
// when one serves the socket, else here; without one, the wait ends after
// closeWait. The close handshake runs in g, so that Stop waits for it.
func (c *conn) closeGracefully(ctx context.Context, g *connector.Group) {
	done := make(chan struct{})
	if !g.Go(func(gctx context.Context) {
		defer close(done)
		frame := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := c.ws.WriteControl(websocket.CloseMessage, frame, time.Now().Add(closeWait)); err != nil {
			return
		}
		if !c.served.Load() {
			c.ws.SetReadDeadline(time.Now().Add(closeWait))
			for {
				if _, _, err := c.nextFrame(gctx); err != nil {
					return
				}
			}
		}
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-c.readEnded:
		case <-c.closing:
		case <-gctx.Done():
		case <-t.C:
		}
	}) {
		c.close()
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	c.close()
	<-done
}

// await reads frames until match takes one, within timeout (or ctx), each
// shown to peek first. Frames read meanwhile are returned in order as
// backlog, for the caller to dispatch; more than maxBacklogFrames of them,
// or maxBacklogBytes, is an error and the caller drops the socket. A read
// cannot be abandoned without dropping the socket: when timeout passes or
// ctx ends, the socket is dropped.
func (c *conn) await(ctx context.Context, timeout time.Duration, what string, peek func(serverFrame), match func(serverFrame) bool) (serverFrame, []serverFrame, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var backlog []serverFrame
	size := 0
	for {
		f, n, err := c.nextFrame(ctx)
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return serverFrame{}, nil, fmt.Errorf("no answer to %s from cention within %s", what, timeout)
			}
			if ctx.Err() != nil {
				return serverFrame{}, nil, ctx.Err()
			}
			return serverFrame{}, nil, fmt.Errorf("cention closed the socket before answering %s: %w", what, err)
		}
		if peek != nil {
			peek(f)
		}
		if match(f) {
			return f, backlog, nil
		}
		size += n
		if len(backlog) == maxBacklogFrames || size > maxBacklogBytes {
			return serverFrame{}, nil, fmt.Errorf("%w: more than %d frames or %d bytes before the answer to %s",
				errFlooded, maxBacklogFrames, maxBacklogBytes, what)
		}
		backlog = append(backlog, f)
	}
}

// errStopped is returned once Stop has begun.
var errStopped = errors.New("cention vendor is stopped")

// errFlooded is a server that sent more during a handshake than the backlog
// takes. The socket is dropped; the attempt may be retried.
var errFlooded = errors.New("cention flooded the handshake")
