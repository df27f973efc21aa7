package whoson

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock"
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

// conn is one WebSocket to the Chat API (wsock.Conn: no goroutine of its
// own, small buffers, pinged by the vendor's keepalive), read by the
// handshake in the caller's goroutine and then by the chat's one goroutine.
// It counts the commands written and those a pong proved read.
type conn struct {
	*wsock.Conn

	writeMu sync.Mutex    // keeps written in step with the order of frames
	written atomic.Uint64 // frames written
	acked   atomic.Uint64 // frames the server has read: written before an answered ping
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
	c := &conn{Conn: wsock.New(ws, log, &v.bufs, readLimit)}
	if !c.Watch(v.keep, c) {
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

// send writes one command frame.
func (c *conn) send(ctx context.Context, cmd command) error {
	_, err := c.sendCounted(ctx, cmd)
	return err
}

// sendCounted writes one command frame and returns the socket's count of
// frames written, this one included.
func (c *conn) sendCounted(ctx context.Context, cmd command) (uint64, error) {
	buf := c.GetBuf()
	defer c.PutBuf(buf) // the write has copied it out
	if err := json.NewEncoder(buf).Encode(cmd); err != nil {
		return 0, fmt.Errorf("encode %s: %w", cmd.Command, err)
	}
	b := buf.Bytes()
	b = b[:len(b)-1] // Encode ends a value with a newline
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.Write(ctx, b); err != nil {
		return 0, fmt.Errorf("send %s: %w", cmd.Command, err)
	}
	return c.written.Add(1), nil
}

// Ping implements keepalive.Socket. An answered ping also proves that the
// server read every frame written before it (acked).
func (c *conn) Ping(ctx context.Context) error {
	written := c.written.Load()
	if err := c.Conn.Ping(ctx); err != nil {
		return err
	}
	c.acked.Store(written)
	return nil
}

// closeWait bounds how long a graceful close waits for the server's close
// frame once ours is written.
const closeWait = 5 * time.Second

// closeGracefully sends a close frame and waits for the server's, which
// the chat's reader takes (see wsock.Conn.CloseGracefully). The handshake
// runs in g, so that Stop waits for it.
func (c *conn) closeGracefully(ctx context.Context, g *connector.Group) {
	c.CloseGracefully(ctx, g, closeWait, nil)
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
		c.Close()
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
		buf, err := c.Next(ctx)
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
		c.PutBuf(buf)
		if err != nil {
			c.Logger().Warn("skipping malformed whoson frame", zap.Error(err))
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
