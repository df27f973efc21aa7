package sio

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket transport both clients share: the dial with its error
// classification and the read errors of an established connection.

// dialWebSocket opens ws(s)://host[/prefix]/socket.io/?EIO=<eio>&transport=websocket
// within dctx (ConnectTimeout; ctx is the caller's) and sets the read limit.
// It also returns the endpoint as errors may name it: without the query, so
// that URLs with a query or userinfo never reach an error text or a log line.
func dialWebSocket(ctx, dctx context.Context, u *url.URL, o Options, eio int) (*websocket.Conn, string, error) {
	wsURL := url.URL{Scheme: wsScheme(u), Host: u.Host, Path: socketIOPath(u),
		RawQuery: "EIO=" + strconv.Itoa(eio) + "&transport=websocket"}
	shown := (&url.URL{Scheme: wsURL.Scheme, Host: wsURL.Host, Path: wsURL.Path}).String()
	// Our own transport: TLS settings, and no keep-alive so that a refused
	// handshake leaves no idle connection (and goroutines) behind.
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		TLSClientConfig:   o.TLSConfig.Clone(),
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	conn, resp, err := websocket.Dial(dctx, wsURL.String(), &websocket.DialOptions{
		HTTPHeader: o.Header.Clone(),
		HTTPClient: &http.Client{Transport: tr},
	})
	if err != nil {
		switch {
		case dctx.Err() != nil && ctx.Err() == nil:
			return nil, shown, fmt.Errorf("%w after %v: dial %s: %w", ErrConnectTimeout, o.ConnectTimeout, shown, err)
		case ctx.Err() != nil:
			return nil, shown, fmt.Errorf("%w: dial %s: %w", ErrConnectTimeout, shown, ctx.Err())
		case resp != nil:
			return nil, shown, fmt.Errorf("%w: %s answered HTTP %d: %w", ErrHandshake, shown, resp.StatusCode, err)
		default:
			return nil, shown, fmt.Errorf("%w: %s: %w", ErrDial, shown, err)
		}
	}
	conn.SetReadLimit(o.MaxMessage)
	return conn, shown, nil
}

// readError names why reading an established connection failed.
func readError(err error) error {
	if st := websocket.CloseStatus(err); st != -1 {
		return fmt.Errorf("%w: websocket closed by server (status %d)", ErrTransport, st)
	}
	return fmt.Errorf("%w: %w", ErrTransport, err)
}

// earlyEvents collects the events a server sends before the namespace
// connect. Nobody reads them yet, so they cannot be pushed back on: more
// than the buffer's bounds fail the handshake with ErrOverflow.
type earlyEvents struct {
	maxEvents int
	maxBytes  int64
	events    []Event
	bytes     int64
}

func (e *earlyEvents) add(ev Event) error {
	e.bytes += eventSize(ev)
	if len(e.events) >= e.maxEvents || e.bytes > e.maxBytes {
		return fmt.Errorf("%w: %w: more than %d events or %d bytes before the namespace connect",
			ErrHandshake, ErrOverflow, e.maxEvents, e.maxBytes)
	}
	e.events = append(e.events, ev)
	return nil
}

// closeWriteTimeout bounds Close's goodbye (the namespace DISCONNECT).
const closeWriteTimeout = 250 * time.Millisecond

// session is what the EIO3 and EIO4 clients share once the WebSocket is up:
// the event buffer, the connection, the reader and the Socket.IO packets that
// mean the same in both protocols.
type session struct {
	*core
	conn   *websocket.Conn
	ctx    context.Context // lives as long as the connection; set by start
	cancel context.CancelFunc

	skipped atomic.Int64 // frames ignored: malformed, binary, acks, other namespaces
}

func newSession(o Options, conn *websocket.Conn) *session {
	return &session{core: newCore(o), conn: conn}
}

// handshakeFrame returns the next frame of a handshake, for both
// generations: it reads (an error names what was awaited: the open packet,
// or once opened the namespace connect), skips empty and binary frames
// (counted), and makes the engine's close, or a message before the open
// packet, an ErrHandshake.
func (s *session) handshakeFrame(ctx context.Context, opened bool) (frame, error) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			awaited := "the open packet"
			if opened {
				awaited = "the namespace connect"
			}
			return frame{}, fmt.Errorf("%w: waiting for %s: %w", ErrHandshake, awaited, err)
		}
		if typ != websocket.MessageText || len(data) == 0 {
			s.skipped.Add(1)
			continue
		}
		f := decodeFrame(string(data))
		switch {
		case f.engine == '1':
			return frame{}, fmt.Errorf("%w: server closed the session during the handshake", ErrHandshake)
		case f.engine == '4' && !opened:
			return frame{}, fmt.Errorf("%w: message before the open packet: %s", ErrHandshake, clip(string(data), 80))
		}
		return f, nil
	}
}

// handshakeFailed drops a session whose handshake failed with err and
// returns the error Dial reports: ErrConnectTimeout when dctx (ConnectTimeout
// or the caller's context) ran out, err otherwise, naming the endpoint.
func (s *session) handshakeFailed(dctx context.Context, o Options, shown string, err error) error {
	s.conn.CloseNow()
	s.end(err)
	s.discard()
	if dctx.Err() != nil {
		return fmt.Errorf("%w after %v: %s: %w", ErrConnectTimeout, o.ConnectTimeout, shown, err)
	}
	return fmt.Errorf("%s: %w", shown, err)
}

// start makes the session live after its handshake: from now on the end
// (whatever causes it) runs stop, cancels the session's context and drops
// the socket, which ends the reader and every write.
func (s *session) start(stop func()) {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.onEnd = func() {
		if stop != nil {
			stop()
		}
		s.cancel()
		s.conn.CloseNow()
	}
}

// readLoop reads text frames and hands each to handle until the connection
// fails or ends. It is the only reader; handle may block (back-pressure).
func (s *session) readLoop(handle func(string)) {
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			if !s.isEnded() {
				s.end(readError(err))
			}
			return
		}
		if typ != websocket.MessageText || len(data) == 0 {
			s.skipped.Add(1) // binary attachments are not supported
			continue
		}
		handle(string(data))
	}
}

// handleMessage acts on a Socket.IO packet of a live connection. Delivering
// an event waits while the buffer is at its bounds: the reader then stops
// reading (back-pressure).
func (s *session) handleMessage(f frame) {
	if !f.sioOK || !f.sio.defaultNSP() {
		s.skipped.Add(1)
		return
	}
	switch f.sio.typ {
	case '2':
		if !f.eventOK {
			s.skipped.Add(1)
			return
		}
		s.deliver(f.event) // an ack id, if any, is ignored: acks are not supported
	case '1':
		s.end(fmt.Errorf("%w: namespace disconnect packet", ErrServerDisconnect))
	case '4':
		s.end(fmt.Errorf("%w: %s", ErrServerError, errorText(f.sio.data)))
	case '0':
		// a repeated connect: nothing to do
	default:
		s.skipped.Add(1) // acks and binary packets
	}
}

func (s *session) write(ctx context.Context, msg string) error {
	return s.conn.Write(ctx, websocket.MessageText, []byte(msg))
}

// Close tells the server we leave (best effort, bounded by
// closeWriteTimeout), then drops the socket and what is still buffered.
func (s *session) Close() error {
	s.closing.Store(true)
	if !s.isEnded() {
		wctx, cancel := context.WithTimeout(s.ctx, closeWriteTimeout)
		_ = s.write(wctx, "41")
		cancel()
		s.end(nil)
	}
	s.discard()
	return nil
}
