package cention

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock"
)

// Bounds of the frames a handshake (register, resume) keeps while it waits
// for its answer, to dispatch them once the chat runs. The server re-sends
// the chat's messages after a resume: one batch frame, or a few.
const (
	maxBacklogFrames = 256
	maxBacklogBytes  = 8 << 20
)

// conn is one WebSocket to external.ws (wsock.Conn: no goroutine of its
// own, small buffers, pinged by the vendor's keepalive), read by the
// handshake in the caller's goroutine and then by the chat's goroutine.
type conn struct {
	*wsock.Conn

	// served is set while a chat's goroutine reads the socket: a graceful
	// close then leaves the server's close frame to it.
	served atomic.Bool

	writeMu sync.Mutex
	nextID  int64 // the "id" of our frames on this socket
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
	c := &conn{Conn: wsock.New(ws, log, &v.bufs, readLimit)}
	if !c.Watch(v.keep, c) {
		return nil, errStopped
	}
	return c, nil
}

// userAgent is sent on the WebSocket handshake and HTTP calls.
const userAgent = "connectord"

// nextFrame reads and decodes the next frame; a malformed one is logged and
// skipped. It returns the frame's size on the wire.
func (c *conn) nextFrame(ctx context.Context) (serverFrame, int, error) {
	for {
		b, err := c.Next(ctx)
		if err != nil {
			return serverFrame{}, 0, err
		}
		f, err := decodeFrame(b.Bytes()) // copies what it keeps
		n := b.Len()
		c.PutBuf(b)
		if err != nil {
			c.Logger().Warn("skipping malformed cention frame", zap.Error(err), zap.Int("bytes", n))
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
	if err := c.Write(ctx, b); err != nil {
		return fmt.Errorf("send %s: %w", typ, err)
	}
	return nil
}

// closeWait bounds how long a graceful close waits for the server's close
// frame once ours is written.
const closeWait = 5 * time.Second

// closeGracefully sends a close frame and waits for the server's (see
// wsock.Conn.CloseGracefully): the chat's goroutine takes it when one
// serves the socket, else it is read here. The handshake runs in g, so that
// Stop waits for it.
func (c *conn) closeGracefully(ctx context.Context, g *connector.Group) {
	var drain func(context.Context)
	if !c.served.Load() {
		drain = func(ctx context.Context) {
			for {
				if _, _, err := c.nextFrame(ctx); err != nil {
					return
				}
			}
		}
	}
	c.CloseGracefully(ctx, g, closeWait, drain)
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
