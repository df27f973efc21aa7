package whoson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// readLimit bounds one event frame. The connected event carries the site's
// surveys and messages and an image event a base64 picture: far above the
// library's 32 KiB default.
const readLimit = 4 << 20

// frameQueue is how many frames the reader hands on ahead of the session:
// with readLimit, at most (frameQueue+2)*readLimit bytes of a socket are in
// memory at once. Past it the reader waits, and so does the server.
const frameQueue = 4

// Bounds of the events a handshake (Connect, Hello) keeps while it waits
// for its answer, to dispatch them once the chat runs. A server sends a few;
// one that sends more is broken or hostile, and the socket is dropped.
const (
	maxBacklogEvents = 256
	maxBacklogBytes  = 1 << 20
)

// conn is one WebSocket to the Chat API with its reader goroutine; the
// vendor's keepalive pings it. Frames arrive on frames in order; frames is closed when the
// socket is gone, and err then says why.
type conn struct {
	ws     *websocket.Conn
	log    *zap.Logger
	frames chan []byte
	err    error // set before frames is closed

	writeMu sync.Mutex    // keeps written in step with the order of frames
	written atomic.Uint64 // frames written
	acked   atomic.Uint64 // frames the server has read: written before an answered ping

	keep      *keepalive // pings the socket while it is open
	closing   chan struct{}
	closeOnce sync.Once
	reader    chan struct{} // closed when the reader returned
}

// dial opens a socket within ctx, starts its reader in the vendor's group,
// so that Stop ends it, and hands it to the vendor's keepalive.
// It sends nothing: the caller speaks first.
func (v *Vendor) dial(ctx context.Context, log *zap.Logger) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ConnectTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, v.cfg.URL, &websocket.DialOptions{
		HTTPClient: v.client,
		HTTPHeader: http.Header{"User-Agent": {v.cfg.UserAgent}},
	})
	if err != nil {
		// The library's error quotes the url, which may carry credentials.
		return nil, connector.Redacted(fmt.Errorf("dial whoson: %w", err))
	}
	ws.SetReadLimit(readLimit)
	c := &conn{ws: ws, log: log, frames: make(chan []byte, frameQueue), closing: make(chan struct{}),
		reader: make(chan struct{}), keep: v.keep}
	if !v.group.Go(func(context.Context) { c.readLoop() }) {
		ws.CloseNow()
		return nil, errStopped
	}
	if !v.keep.add(c) {
		c.close()
		return nil, errStopped
	}
	return c, nil
}

// readLoop keeps a reader running (Ping needs one) and hands every data
// frame to frames.
func (c *conn) readLoop() {
	defer close(c.reader)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			close(c.frames)
			return
		}
		select {
		case c.frames <- b:
		case <-c.closing:
			c.err = net.ErrClosed
			close(c.frames)
			return
		}
	}
}

// send writes one command frame.
func (c *conn) send(ctx context.Context, cmd command) error {
	_, err := c.sendCounted(ctx, cmd)
	return err
}

// sendCounted writes one command frame and returns the socket's count of
// frames written, this one included.
func (c *conn) sendCounted(ctx context.Context, cmd command) (uint64, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", cmd.Command, err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return 0, fmt.Errorf("send %s: %w", cmd.Command, err)
	}
	return c.written.Add(1), nil
}

// close drops the socket at once and waits for its reader. It is
// idempotent and safe from any goroutine but the reader.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.keep.remove(c)
		close(c.closing)
		c.ws.CloseNow()
	})
	<-c.reader
}

// closeGracefully sends a close frame and waits for the server's, so that
// commands written just before reach it; when ctx ends first it drops the
// socket at once. The close handshake runs in g, so that Stop waits for it.
func (c *conn) closeGracefully(ctx context.Context, g *connector.Group) {
	done := make(chan struct{})
	if !g.Go(func(context.Context) {
		defer close(done)
		c.ws.Close(websocket.StatusNormalClosure, "")
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
func (c *conn) await(ctx context.Context, timeout time.Duration, names ...string) (event, []event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var backlog []event
	size := 0
	for {
		select {
		case <-ctx.Done():
			return event{}, backlog, ctx.Err()
		case <-timer.C:
			return event{}, backlog, fmt.Errorf("no %v from whoson within %s", names, timeout)
		case b, ok := <-c.frames:
			if !ok {
				return event{}, backlog, fmt.Errorf("whoson closed the socket: %w", c.err)
			}
			ev, err := decodeEvent(b)
			if err != nil {
				c.log.Warn("skipping malformed whoson frame", zap.Error(err))
				continue
			}
			for _, n := range names {
				if ev.Name == n {
					return ev, backlog, nil
				}
			}
			if ev.Name == evError {
				return ev, backlog, connector.Permanent(fmt.Errorf("whoson error: %s", clipText(ev.text(), maxErrorText)))
			}
			size += len(b)
			if len(backlog) == maxBacklogEvents || size > maxBacklogBytes {
				return event{}, nil, fmt.Errorf("%w: more than %d events or %d bytes while waiting for %v",
					errFlooded, maxBacklogEvents, maxBacklogBytes, names)
			}
			backlog = append(backlog, ev)
		}
	}
}

// errStopped is returned once Stop has begun.
var errStopped = errors.New("whoson vendor is stopped")

// errFlooded is a server that sent more events during a handshake than the
// backlog takes. The socket is dropped; the attempt may be retried.
var errFlooded = errors.New("whoson flooded the handshake")
