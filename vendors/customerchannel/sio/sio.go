// Package sio is a small Socket.IO client for the default namespace, with two
// implementations behind one interface:
//
//   - EIO 3 (Socket.IO 2.x servers): our own client over github.com/coder/websocket.
//   - EIO 4 (Socket.IO 3/4 servers): a wrapper around github.com/zishang520/socket.io
//     (clients/socket/v3) that contains the library's known faults.
//
// Both use the websocket transport only (no long-polling) and never reconnect by
// themselves: when a Client ends, its owner dials a new one.
//
// See README.md for the library traps and how they are contained.
package sio

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options says where and how to connect.
type Options struct {
	URL            string        // the server's base URL, "http://127.0.0.1:8080" or https; the path /socket.io/ is added
	EIO            int           // 3 (Socket.IO 2.x servers) or 4 (Socket.IO 3/4)
	ConnectTimeout time.Duration // default 5s: dial + handshake + namespace connect
	Header         http.Header   // extra handshake headers
	TLSConfig      *tls.Config   // for https/wss; nil = system roots
	MaxMessage     int64         // largest frame accepted; default 1 MiB
}

// Event is one event the server emitted.
type Event struct {
	Name string
	Args []json.RawMessage
}

// Client is one Socket.IO connection to the default namespace. It is safe for concurrent use.
type Client interface {
	// Emit sends an event with its arguments (each marshalled to JSON). It returns
	// once written (no server ack). After the connection has ended it returns an
	// error wrapping ErrClosed.
	Emit(ctx context.Context, event string, args ...any) error
	// Events delivers the server's events in order. It is closed when the
	// connection ends (events already buffered can still be read after that).
	//
	// The consumer must keep reading: a client buffers at most EventBuffer (1024)
	// events; when a new event finds the buffer full, the client ends the
	// connection with an error wrapping ErrOverflow rather than block its reader
	// (a blocked reader would also stop keepalives).
	Events() <-chan Event
	// Done is closed when the connection has ended (server disconnect, transport
	// error, ping timeout, Close); Err then says why (nil after Close).
	Done() <-chan struct{}
	// Err is nil while the connection is up and after Close; otherwise it says why
	// the connection ended.
	Err() error
	// Close ends the connection without blocking long; it is safe to call twice.
	Close() error
}

// EventBuffer is how many received events a Client buffers for a slow consumer.
const EventBuffer = 1024

// Defaults applied to zero Options fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultMaxMessage     = 1 << 20
)

// Errors that Dial and Err wrap; test them with errors.Is.
var (
	// ErrDial: the TCP/TLS/WebSocket connection could not be made.
	ErrDial = errors.New("sio: dial failed")
	// ErrHandshake: the server did not speak the expected Engine.IO handshake.
	ErrHandshake = errors.New("sio: handshake failed")
	// ErrNamespaceRefused: the server refused the namespace connect (an error packet).
	ErrNamespaceRefused = errors.New("sio: namespace connect refused")
	// ErrConnectTimeout: ConnectTimeout (or the Dial context) ran out before the namespace connect.
	ErrConnectTimeout = errors.New("sio: connect timeout")
	// ErrPingTimeout: the server stopped answering (EIO3) or sending (EIO4) heartbeats.
	ErrPingTimeout = errors.New("sio: ping timeout")
	// ErrServerDisconnect: the server disconnected the namespace or closed the session.
	ErrServerDisconnect = errors.New("sio: server disconnect")
	// ErrTransport: the underlying connection failed or was closed by the peer.
	ErrTransport = errors.New("sio: transport error")
	// ErrServerError: the server sent an error packet on an established connection.
	ErrServerError = errors.New("sio: server error packet")
	// ErrOverflow: the consumer did not read Events and the buffer filled up.
	ErrOverflow = errors.New("sio: event buffer overflow")
	// ErrClosed: the connection has ended; Emit is not possible.
	ErrClosed = errors.New("sio: connection closed")
)

// Dial connects (websocket transport only, no polling) and returns once the
// namespace connect is confirmed, or an error naming what failed: it wraps
// ErrDial, ErrHandshake, ErrNamespaceRefused or ErrConnectTimeout.
func Dial(ctx context.Context, o Options) (Client, error) {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("sio: bad URL %q: %w", o.URL, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return nil, fmt.Errorf("sio: bad URL %q: scheme must be http or https", o.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("sio: bad URL %q: no host", o.URL)
	}
	switch o.EIO {
	case 3:
		return dialEIO3(ctx, u, o)
	case 4:
		return dialEIO4(ctx, u, o)
	default:
		return nil, fmt.Errorf("sio: unsupported EIO %d (want 3 or 4)", o.EIO)
	}
}

// socketIOPath is the base URL's path with "/socket.io/" appended.
func socketIOPath(u *url.URL) string {
	return strings.TrimRight(u.Path, "/") + "/socket.io/"
}

// wsScheme maps http(s) to ws(s).
func wsScheme(u *url.URL) string {
	switch u.Scheme {
	case "https", "wss":
		return "wss"
	}
	return "ws"
}

// core holds what both implementations share: the event buffer and the end state.
type core struct {
	events chan Event
	done   chan struct{}

	mu    sync.Mutex
	ended bool
	err   error

	onEnd func() // called once, outside mu, after the end state is set
}

func newCore() *core {
	return &core{events: make(chan Event, EventBuffer), done: make(chan struct{})}
}

func (c *core) Events() <-chan Event  { return c.events }
func (c *core) Done() <-chan struct{} { return c.done }

func (c *core) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// end records why the connection ended (the first call wins), closes Events
// and Done, and runs onEnd. It reports whether this call ended the connection.
func (c *core) end(err error) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.ended = true
	c.err = err
	close(c.events)
	close(c.done)
	f := c.onEnd
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

func (c *core) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// deliver queues an event without blocking. If the buffer is full it ends the
// connection with ErrOverflow.
func (c *core) deliver(ev Event) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	select {
	case c.events <- ev:
		c.mu.Unlock()
		return
	default:
	}
	c.mu.Unlock()
	c.end(fmt.Errorf("%w: %d events unread", ErrOverflow, EventBuffer))
}

// closedErr is what Emit returns once the connection has ended.
func (c *core) closedErr() error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return ErrClosed
}

// encodeEvent marshals ["event", args...].
func encodeEvent(event string, args []any) ([]byte, error) {
	if event == "" {
		return nil, errors.New("sio: empty event name")
	}
	arr := make([]any, 0, 1+len(args))
	arr = append(arr, event)
	arr = append(arr, args...)
	b, err := json.Marshal(arr)
	if err != nil {
		return nil, fmt.Errorf("sio: marshal %q args: %w", event, err)
	}
	return b, nil
}
