package cention

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// frameQueue is how many decoded frames the reader hands on ahead of the
// chat's goroutine: with readLimit, a socket holds at most about
// (frameQueue+2)*readLimit bytes. Past it the reader waits, and so does the
// server.
const frameQueue = 8

// Bounds of the frames a handshake (register, resume) keeps while it waits
// for its answer, to dispatch them once the chat runs. The server re-sends
// the chat's messages after a resume: one batch frame, or a few.
const (
	maxBacklogFrames = 256
	maxBacklogBytes  = 8 << 20
)

// conn is one WebSocket to external.ws with its reader and pinger
// goroutines. Frames arrive decoded on frames, in order; frames is closed
// when the socket is gone, and err then says why.
type conn struct {
	ws     *websocket.Conn
	log    *zap.Logger
	frames chan framed
	err    error // set before frames is closed
	// peek sees every frame on the reader goroutine before it is queued:
	// the umid confirmations are taken there, so that a Send waiting for
	// one does not wait for the events ahead of it to be stored.
	peek func(serverFrame)

	writeMu sync.Mutex
	nextID  int64 // the "id" of our frames on this socket

	closing   chan struct{}
	closeOnce sync.Once
	reader    chan struct{} // closed when the reader returned
	pinger    chan struct{} // closed when the pinger returned
}

// framed is a decoded frame and its size on the wire.
type framed struct {
	serverFrame
	size int
}

// dial opens the chat socket of token within connect_timeout, with the
// configured Origin, and starts its goroutines in the vendor's group. It
// sends nothing: the caller speaks first (register or resume).
func (v *Vendor) dial(ctx context.Context, token string, log *zap.Logger, peek func(serverFrame)) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ConnectTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, v.cfg.socketURL(token), &websocket.DialOptions{
		HTTPClient: v.client,
		HTTPHeader: http.Header{"Origin": {v.cfg.Origin}, "User-Agent": {userAgent}},
	})
	if err != nil {
		// The library's error quotes the url, whose query is the token.
		err = connector.Redacted(fmt.Errorf("dial cention %s: %w", v.cfg.host(), err))
		if resp != nil && resp.StatusCode == http.StatusForbidden {
			return nil, fmt.Errorf("%w (is origin %q registered with Cention?)", err, v.cfg.Origin)
		}
		return nil, err
	}
	ws.SetReadLimit(readLimit)
	if peek == nil {
		peek = func(serverFrame) {}
	}
	c := &conn{ws: ws, log: log, frames: make(chan framed, frameQueue), peek: peek,
		closing: make(chan struct{}), reader: make(chan struct{}), pinger: make(chan struct{})}
	if !v.group.Go(func(context.Context) { c.readLoop() }) {
		ws.CloseNow()
		return nil, errStopped
	}
	if !v.group.Go(func(context.Context) { c.pingLoop(v.cfg.PingInterval) }) {
		close(c.pinger)
		c.close()
		return nil, errStopped
	}
	return c, nil
}

// userAgent is sent on the WebSocket handshake and HTTP calls.
const userAgent = "connectord"

// readLoop keeps a reader running (Ping needs one), decodes every data
// frame, shows it to peek and hands it on.
func (c *conn) readLoop() {
	defer close(c.reader)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			close(c.frames)
			return
		}
		f, err := decodeFrame(b)
		if err != nil {
			c.log.Warn("skipping malformed cention frame", zap.Error(err), zap.Int("bytes", len(b)))
			continue
		}
		c.peek(f)
		select {
		case c.frames <- framed{serverFrame: f, size: len(b)}:
		case <-c.closing:
			c.err = net.ErrClosed
			close(c.frames)
			return
		}
	}
}

// pingLoop sends a WebSocket ping every interval; one not answered within
// the interval closes the socket, which ends the reader.
func (c *conn) pingLoop(interval time.Duration) {
	defer close(c.pinger)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-c.reader:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			select {
			case <-c.closing:
			default:
				c.log.Warn("cention ping not answered, dropping the socket", zap.Error(err))
			}
			c.ws.CloseNow()
			return
		}
	}
}

// send writes one frame of type typ.
func (c *conn) send(ctx context.Context, typ string, data any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.nextID++
	b, err := encodeFrame(clientFrame{Type: typ, Data: data, ID: c.nextID})
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", typ, err)
	}
	return nil
}

// close drops the socket at once and waits for its goroutines. It is
// idempotent and safe from any goroutine but the conn's own.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.ws.CloseNow()
	})
	<-c.reader
	<-c.pinger
}

// closeGracefully sends a close frame and waits for the server's, so that
// frames written just before reach it; when ctx ends first it drops the
// socket at once. (websocket's Close alone may wait about 10 s.)
func (c *conn) closeGracefully(ctx context.Context, group *connector.Group) {
	done := make(chan struct{})
	if !group.Go(func(context.Context) {
		defer close(done)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
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

// await reads frames until match takes one, within timeout (or ctx).
// Frames read meanwhile are returned in order as backlog, for the caller to
// dispatch; more than maxBacklogFrames of them, or maxBacklogBytes, is an
// error and the caller drops the socket.
func (c *conn) await(ctx context.Context, timeout time.Duration, what string, match func(serverFrame) bool) (serverFrame, []serverFrame, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var backlog []serverFrame
	size := 0
	for {
		select {
		case <-ctx.Done():
			return serverFrame{}, nil, ctx.Err()
		case <-timer.C:
			return serverFrame{}, nil, fmt.Errorf("no answer to %s from cention within %s", what, timeout)
		case f, ok := <-c.frames:
			if !ok {
				return serverFrame{}, nil, fmt.Errorf("cention closed the socket before answering %s: %w", what, c.err)
			}
			if match(f.serverFrame) {
				return f.serverFrame, backlog, nil
			}
			size += f.size
			if len(backlog) == maxBacklogFrames || size > maxBacklogBytes {
				return serverFrame{}, nil, fmt.Errorf("%w: more than %d frames or %d bytes before the answer to %s",
					errFlooded, maxBacklogFrames, maxBacklogBytes, what)
			}
			backlog = append(backlog, f.serverFrame)
		}
	}
}

// errStopped is returned once Stop has begun.
var errStopped = errors.New("cention vendor is stopped")

// errFlooded is a server that sent more during a handshake than the backlog
// takes. The socket is dropped; the attempt may be retried.
var errFlooded = errors.New("cention flooded the handshake")
