package whoson

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
)

// readLimit bounds one event frame. The connected event carries the site's
// surveys and messages and an image event a base64 picture: far above the
// library's 32 KiB default.
const readLimit = 4 << 20

// Bounds of the events a handshake (Connect, Hello) keeps while it waits
// for its answer, to dispatch them once the chat runs. A server sends a few;
// one that sends more is broken or hostile, and the socket is dropped.
const (
	maxBacklogEvents = 256
	maxBacklogBytes  = 1 << 20
)

// Sizes of a socket's buffers. A chat is idle nearly all its life, and every
// chat holds a socket, so what a socket keeps while idle decides how many
// chats a process holds: the read buffer is only big enough for a frame
// header or a control frame (a data frame of any size is read straight into
// a pooled frame buffer), and write buffers are borrowed from a pool for
// the time of one write. A command longer than writeBufferSize goes out as
// several frames of one message, which the protocol allows.
const (
	readBufferSize  = 256
	writeBufferSize = 16 << 10
)

// conn is one WebSocket to the Chat API. It has no goroutine of its own:
// whoever waits for its frames reads them (next), one at a time, the
// handshake in the caller's goroutine and then the chat's one goroutine, so
// that an idle chat costs one goroutine; the vendor's keepalive pings it
// (a pong is read by that same reader).
type conn struct {
	ws   *websocket.Conn
	log  *zap.Logger
	bufs *sync.Pool // the vendor's frame buffers (getBuf, putBuf)
	err  error      // why next failed; set and read by the reader only

	// reads is bumped as the reader enters and leaves Read: odd while it
	// waits in Read. A ping unanswered while the reader waited in Read the
	// whole time shows a dead socket; one unanswered while the frames were
	// being handled (the core's store slow) shows nothing.
	reads atomic.Uint64

	writeMu sync.Mutex    // keeps written in step with the order of frames
	written atomic.Uint64 // frames written
	acked   atomic.Uint64 // frames the server has read: written before an answered ping

	pings atomic.Uint64 // numbers the pings; a pong carries its ping's number back
	pongs chan uint64   // the newest pong's number, for ping; holds at most one

	keep      *keepalive.Keepalive // pings the socket while it is open
	closing   chan struct{}
	closeOnce sync.Once
	readEnded chan struct{} // closed when the reader met the end of the socket
	endOnce   sync.Once
}

// dial opens a socket within ctx and hands it to the vendor's keepalive.
// It sends nothing: the caller speaks first.
func (v *Vendor) dial(ctx context.Context, log *zap.Logger) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ConnectTimeout)
	defer cancel()
	ws, _, err := v.dialer.DialContext(ctx, v.target.url, v.target.header)
	if err != nil {
		// The library's error may quote the url, which may carry credentials.
		return nil, connector.Redacted(fmt.Errorf("dial whoson: %w", err))
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

// dialTarget is where and how every socket of a vendor is opened.
type dialTarget struct {
	url    string      // the configured url without its userinfo
	header http.Header // the handshake's headers
}

// newDialTarget takes a user and password in the url (ws://user:pass@host)
// out into an Authorization header, as an HTTP client would: the WebSocket
// library refuses a url that carries them.
func newDialTarget(cfg *settings) (dialTarget, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return dialTarget{}, fmt.Errorf("whoson url: %w", connector.Redacted(err))
	}
	h := http.Header{"User-Agent": {cfg.UserAgent}}
	if u.User != nil {
		pass, _ := u.User.Password()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
		u.User = nil
	}
	return dialTarget{url: u.String(), header: h}, nil
}

// newDialer is the vendor's one dialer for every socket.
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
// it (a connected event with the site's surveys, an image) is left to the
// garbage collector rather than kept for every later small frame.
const maxPooledBuf = 64 << 10

// getBuf returns an empty frame buffer; putBuf takes it back once its
// bytes are no longer needed. Frames are read into and commands written
// from them, so that an idle chat holds none and a busy one does not
// allocate one per frame.
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

// send writes one command frame.
func (c *conn) send(ctx context.Context, cmd command) error {
	_, err := c.sendCounted(ctx, cmd)
	return err
}

// sendCounted writes one command frame and returns the socket's count of
// frames written, this one included. ctx ending during the write drops the
// socket: a frame cut short leaves nothing on it worth keeping.
func (c *conn) sendCounted(ctx context.Context, cmd command) (uint64, error) {
	buf := c.getBuf()
	defer c.putBuf(buf) // the write has copied it out
	if err := json.NewEncoder(buf).Encode(cmd); err != nil {
		return 0, fmt.Errorf("encode %s: %w", cmd.Command, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n")) // Encode ends a value with one
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("send %s: %w", cmd.Command, err)
	}
	deadline, _ := ctx.Deadline() // none is zero: no deadline
	c.ws.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, c.close)
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	stop()
	if err != nil {
		return 0, fmt.Errorf("send %s: %w", cmd.Command, err)
	}
	return c.written.Add(1), nil
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
			return fmt.Errorf("ping: %w", c.endErr())
		case <-c.closing:
			return net.ErrClosed
		}
	}
}

// endErr is why the reader ended; only after readEnded is closed.
func (c *conn) endErr() error { return c.err }

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

// Ping implements keepalive.Socket. An answered ping also proves that the
// server read every frame written before it (acked).
func (c *conn) Ping(ctx context.Context) error {
	written := c.written.Load()
	if err := c.ping(ctx); err != nil {
		return err
	}
	c.acked.Store(written)
	return nil
}

// Reads implements keepalive.Socket.
func (c *conn) Reads() uint64 { return c.reads.Load() }

// Drop implements keepalive.Socket: the TCP connection only, the reader
// then ends and the chat's session closes the socket.
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
// commands written just before reach it; when ctx ends first it drops the
// socket at once. The chat's reader takes the server's close frame (the
// library answers it); without one, the wait ends after closeWait. The
// close handshake runs in g, so that Stop waits for it.
func (c *conn) closeGracefully(ctx context.Context, g *connector.Group) {
	done := make(chan struct{})
	if !g.Go(func(gctx context.Context) {
		defer close(done)
		frame := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := c.ws.WriteControl(websocket.CloseMessage, frame, time.Now().Add(closeWait)); err != nil {
			return
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

// await reads frames until one named in names arrives, within timeout (or
// ctx). Other events read meanwhile are returned in order as backlog so the
// caller can dispatch them; more than maxBacklogEvents of them, or more than
// maxBacklogBytes, is an error (errFlooded) and the caller drops the socket.
// An error event is a refusal: the server hangs up after it and repeating
// the attempt risks the IP blacklist, so it is a connector.Permanent error.
// Malformed frames are logged and skipped.
//
// A read cannot be abandoned without dropping the socket, so when timeout
// passes, onTimeout (if not nil) still has the socket, to say goodbye on
// it, and the socket is then dropped: the error wraps errNoAnswer. ctx
// ending drops the socket too.
func (c *conn) await(ctx context.Context, timeout time.Duration, onTimeout func(), names ...string) (event, []event, error) {
	var timedOut atomic.Bool
	fired := make(chan struct{})
	timer := time.AfterFunc(timeout, func() {
		defer close(fired)
		timedOut.Store(true)
		if onTimeout != nil {
			onTimeout()
		}
		c.close()
	})
	// stop ends the timer, waiting for it if it fired, and reports whether
	// it did.
	stop := func() bool {
		if !timer.Stop() {
			<-fired
		}
		return timedOut.Load()
	}
	noAnswer := func() error { return fmt.Errorf("%w: no %v within %s", errNoAnswer, names, timeout) }
	var backlog []event
	size := 0
	for {
		buf, err := c.next(ctx)
		if err != nil {
			switch {
			case stop():
				return event{}, backlog, noAnswer()
			case ctx.Err() != nil:
				return event{}, backlog, ctx.Err()
			}
			return event{}, backlog, fmt.Errorf("whoson closed the socket: %w", err)
		}
		ev, err := decodeEvent(buf.Bytes()) // copies what it keeps
		n := buf.Len()
		c.putBuf(buf)
		if err != nil {
			c.log.Warn("skipping malformed whoson frame", zap.Error(err))
			continue
		}
		for _, name := range names {
			if ev.Name == name {
				if stop() {
					return event{}, backlog, noAnswer()
				}
				return ev, backlog, nil
			}
		}
		if ev.Name == evError {
			stop()
			return ev, backlog, connector.Permanent(fmt.Errorf("whoson error: %s", clipText(ev.text(), maxErrorText)))
		}
		size += n
		if len(backlog) == maxBacklogEvents || size > maxBacklogBytes {
			stop()
			return event{}, nil, fmt.Errorf("%w: more than %d events or %d bytes while waiting for %v",
				errFlooded, maxBacklogEvents, maxBacklogBytes, names)
		}
		backlog = append(backlog, ev)
	}
}

// errStopped is returned once Stop has begun.
var errStopped = errors.New("whoson vendor is stopped")

// errFlooded is a server that sent more events during a handshake than the
// backlog takes. The socket is dropped; the attempt may be retried.
var errFlooded = errors.New("whoson flooded the handshake")

// errNoAnswer is a handshake step the server did not answer in time; the
// socket is dropped and the attempt may be retried.
var errNoAnswer = errors.New("whoson did not answer")
