package whoson

import (
	"bytes"
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

// Bounds of the events a handshake (Connect, Hello) keeps while it waits
// for its answer, to dispatch them once the chat runs. A server sends a few;
// one that sends more is broken or hostile, and the socket is dropped.
const (
	maxBacklogEvents = 256
	maxBacklogBytes  = 1 << 20
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

	keep      *keepalive // pings the socket while it is open
	closing   chan struct{}
	closeOnce sync.Once
}

// dial opens a socket within ctx and hands it to the vendor's keepalive.
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
	c := &conn{ws: ws, log: log, bufs: &v.bufs, closing: make(chan struct{}), keep: v.keep}
	if !v.keep.add(c) {
		c.close()
		return nil, errStopped
	}
	return c, nil
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
	c.reads.Add(1)
	b, err := c.read(ctx)
	c.reads.Add(1)
	if err != nil {
		select {
		case <-c.closing:
			err = net.ErrClosed
		default:
		}
		c.err = err
		return nil, err
	}
	return b, nil
}

func (c *conn) read(ctx context.Context) (*bytes.Buffer, error) {
	_, r, err := c.ws.Reader(ctx)
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
// frames written, this one included.
func (c *conn) sendCounted(ctx context.Context, cmd command) (uint64, error) {
	buf := c.getBuf()
	defer c.putBuf(buf) // Write has copied it out
	if err := json.NewEncoder(buf).Encode(cmd); err != nil {
		return 0, fmt.Errorf("encode %s: %w", cmd.Command, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n")) // Encode ends a value with one
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return 0, fmt.Errorf("send %s: %w", cmd.Command, err)
	}
	return c.written.Add(1), nil
}

// close drops the socket at once; a read under way returns. It is
// idempotent and safe from any goroutine.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.keep.remove(c)
		close(c.closing)
		c.ws.CloseNow()
	})
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
