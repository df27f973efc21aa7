// Package sio is a small Socket.IO client for the default namespace, for both
// protocol generations behind one interface, over github.com/coder/websocket:
//
//   - EIO 3 (Socket.IO 2.x servers): the client pings (eio3.go).
//   - EIO 4 (Socket.IO 3/4 servers): the server pings, the client asks for the
//     namespace (eio4.go).
//
// Both use the websocket transport only (no long-polling) and never reconnect by
// themselves: when a Client ends, its owner dials a new one. See README.md for
// the bounds.
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
	"time"

	"github.com/connectord/connectord/connector"
)

// Options says where and how to connect.
type Options struct {
	URL            string        // the server's base URL, "http://127.0.0.1:8080" or https; the path /socket.io/ is added
	EIO            int           // 3 (Socket.IO 2.x servers) or 4 (Socket.IO 3/4)
	ConnectTimeout time.Duration // default 5s: dial + handshake + namespace connect
	Header         http.Header   // extra handshake headers
	TLSConfig      *tls.Config   // for https/wss; nil = system roots
	MaxMessage     int64         // largest frame accepted; default 1 MiB

	// MaxBufferedEvents and MaxBufferedBytes bound the events received and not
	// yet read from Events (defaults DefaultMaxBufferedEvents and
	// DefaultMaxBufferedBytes). At either bound the client stops reading from
	// the server until the consumer catches up: nothing is dropped, and the
	// server's further frames wait in the network. One event larger than
	// MaxBufferedBytes is still taken when the buffer is empty.
	MaxBufferedEvents int
	MaxBufferedBytes  int64
}

// Event is one event the server emitted.
type Event struct {
	Name string
	Args []json.RawMessage
}

// Client is one Socket.IO connection to the default namespace. It is safe for concurrent use.
type Client interface {
	// Emit sends an event with its arguments (each marshalled to JSON); there is
	// no server ack. EIO3 returns once written. EIO4 returns once the event is
	// queued for its writer, and an error wrapping ErrBacklog when too much
	// waits already (a failed write later ends the connection). After the
	// connection has ended it returns an error wrapping ErrClosed.
	Emit(ctx context.Context, event string, args ...any) error
	// Events delivers the server's events in order. It is closed once the
	// connection has ended and the events buffered by then have been read.
	//
	// The consumer should keep reading: when MaxBufferedEvents or
	// MaxBufferedBytes are reached the client stops reading from the server
	// (back-pressure). A stall longer than the server's heartbeat allows ends
	// the connection (ErrPingTimeout or ErrTransport), and the owner
	// reconnects. After Done, read Events until it is closed, or call Close,
	// which discards what is still buffered.
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

// Defaults applied to zero Options fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultMaxMessage     = 1 << 20
	// DefaultMaxBufferedEvents: a Customer Channel server sends one event per
	// chat line or activity, and the consumer commits each in milliseconds;
	// 256 unread events is a stall, not a burst.
	DefaultMaxBufferedEvents = 256
	// DefaultMaxBufferedBytes is four largest frames: a full-size history
	// replay (conversationInfo) and ordinary traffic fit; a flood waits in the
	// network instead of in memory.
	DefaultMaxBufferedBytes = 4 << 20
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
	// ErrOverflow: the server sent more than a bound allows where the client
	// cannot apply back-pressure (events before the namespace connect).
	ErrOverflow = errors.New("sio: over a buffer bound")
	// ErrBacklog: Emit found too much waiting to be written (the server is
	// not reading); try again later.
	ErrBacklog = errors.New("sio: send backlog full")
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
	if o.MaxBufferedEvents <= 0 {
		o.MaxBufferedEvents = DefaultMaxBufferedEvents
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("sio: bad URL %q: %w", connector.RedactURL(o.URL), connector.Redacted(err))
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return nil, fmt.Errorf("sio: bad URL %q: scheme must be http or https", connector.RedactURL(o.URL))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("sio: bad URL %q: no host", connector.RedactURL(o.URL))
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
