package sio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Engine.IO 3 / Socket.IO 2 over one WebSocket (no polling, no upgrade).
//
// Engine.IO packets are text frames whose first byte is the type:
// 0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade, 6 noop.
// A message carries a Socket.IO packet whose first byte is the type:
// 0 connect, 1 disconnect, 2 event, 3 ack, 4 error, 5 binary event, 6 binary ack,
// then an optional "/nsp," and an optional ack id, then JSON.
// In Engine.IO 3 the CLIENT pings (every pingInterval) and the server answers
// with a pong; Engine.IO 4 reversed that.

const (
	eio3DefaultPingInterval = 25 * time.Second
	eio3DefaultPingTimeout  = 5 * time.Second
	eio3CloseWriteTimeout   = 250 * time.Millisecond
)

// eio3Open is the payload of the server's open packet.
type eio3Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"` // ms
	PingTimeout  int64    `json:"pingTimeout"`  // ms
}

type eio3Client struct {
	*core
	conn   *websocket.Conn
	ctx    context.Context // lives as long as the connection
	cancel context.CancelFunc

	pingInterval time.Duration
	pingTimeout  time.Duration
	pong         chan struct{}

	skipped atomic.Int64 // frames ignored: malformed, binary, acks, other namespaces
}

func dialEIO3(ctx context.Context, u *url.URL, o Options) (Client, error) {
	dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()

	wsURL := url.URL{Scheme: wsScheme(u), Host: u.Host, Path: socketIOPath(u), RawQuery: "EIO=3&transport=websocket"}
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
			return nil, fmt.Errorf("%w after %v: dial %s: %w", ErrConnectTimeout, o.ConnectTimeout, wsURL.Redacted(), err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w: dial %s: %w", ErrConnectTimeout, wsURL.Redacted(), ctx.Err())
		case resp != nil:
			return nil, fmt.Errorf("%w: %s answered HTTP %d: %w", ErrHandshake, wsURL.Redacted(), resp.StatusCode, err)
		default:
			return nil, fmt.Errorf("%w: %s: %w", ErrDial, wsURL.Redacted(), err)
		}
	}
	conn.SetReadLimit(o.MaxMessage)

	c := &eio3Client{core: newCore(), conn: conn, pong: make(chan struct{}, 1)}
	early, err := c.handshake(dctx)
	if err != nil {
		conn.CloseNow()
		if dctx.Err() != nil {
			return nil, fmt.Errorf("%w after %v: %s: %w", ErrConnectTimeout, o.ConnectTimeout, wsURL.Redacted(), err)
		}
		return nil, fmt.Errorf("%s: %w", wsURL.Redacted(), err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.onEnd = func() {
		c.cancel()
		c.conn.CloseNow()
	}
	for _, ev := range early {
		c.deliver(ev)
	}
	go c.readLoop()
	go c.pingLoop()
	return c, nil
}

// handshake reads the open packet and the default namespace's connect packet
// (Socket.IO 2 servers send it unasked). Events that arrive before the connect
// are returned to be delivered first.
func (c *eio3Client) handshake(ctx context.Context) ([]Event, error) {
	var early []Event
	opened := false
	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			if !opened {
				return nil, fmt.Errorf("%w: waiting for the open packet: %w", ErrHandshake, err)
			}
			return nil, fmt.Errorf("%w: waiting for the namespace connect: %w", ErrHandshake, err)
		}
		if typ != websocket.MessageText || len(data) == 0 {
			continue
		}
		s := string(data)
		switch s[0] {
		case '0':
			var op eio3Open
			if err := json.Unmarshal(data[1:], &op); err != nil {
				return nil, fmt.Errorf("%w: bad open packet %.80q: %v", ErrHandshake, s, err)
			}
			c.pingInterval = time.Duration(op.PingInterval) * time.Millisecond
			if c.pingInterval <= 0 {
				c.pingInterval = eio3DefaultPingInterval
			}
			c.pingTimeout = time.Duration(op.PingTimeout) * time.Millisecond
			if c.pingTimeout <= 0 {
				c.pingTimeout = eio3DefaultPingTimeout
			}
			opened = true
		case '1':
			return nil, fmt.Errorf("%w: server closed the session during the handshake", ErrHandshake)
		case '4':
			if !opened {
				return nil, fmt.Errorf("%w: message before the open packet: %.80q", ErrHandshake, s)
			}
			p, ok := parseSIOPacket(s[1:])
			if !ok || !p.defaultNSP() {
				c.skipped.Add(1)
				continue
			}
			switch p.typ {
			case '0':
				return early, nil
			case '1':
				return nil, fmt.Errorf("%w: server sent disconnect", ErrNamespaceRefused)
			case '4':
				return nil, fmt.Errorf("%w: %s", ErrNamespaceRefused, errorText(p.data))
			case '2':
				if ev, ok := decodeEvent(p.data); ok {
					early = append(early, ev)
				} else {
					c.skipped.Add(1)
				}
			default:
				c.skipped.Add(1)
			}
		default:
			// ping, pong, upgrade, noop: nothing to do yet.
		}
	}
}

func (c *eio3Client) readLoop() {
	for {
		typ, data, err := c.conn.Read(c.ctx)
		if err != nil {
			if c.isEnded() {
				return
			}
			if st := websocket.CloseStatus(err); st != -1 {
				c.end(fmt.Errorf("%w: websocket closed by server (status %d)", ErrTransport, st))
			} else {
				c.end(fmt.Errorf("%w: %w", ErrTransport, err))
			}
			return
		}
		if typ != websocket.MessageText || len(data) == 0 {
			c.skipped.Add(1) // binary attachments are not supported
			continue
		}
		c.handleFrame(string(data))
	}
}

func (c *eio3Client) handleFrame(s string) {
	switch s[0] {
	case '1':
		c.end(fmt.Errorf("%w: engine.io close packet", ErrServerDisconnect))
	case '2': // a server ping (not part of EIO3, but harmless): answer it
		_ = c.write(c.ctx, "3"+s[1:])
	case '3':
		select {
		case c.pong <- struct{}{}:
		default:
		}
	case '4':
		p, ok := parseSIOPacket(s[1:])
		if !ok || !p.defaultNSP() {
			c.skipped.Add(1)
			return
		}
		switch p.typ {
		case '2':
			ev, ok := decodeEvent(p.data)
			if !ok {
				c.skipped.Add(1)
				return
			}
			c.deliver(ev) // an ack id, if any, is ignored: acks are not supported
		case '1':
			c.end(fmt.Errorf("%w: namespace disconnect packet", ErrServerDisconnect))
		case '4':
			c.end(fmt.Errorf("%w: %s", ErrServerError, errorText(p.data)))
		case '0':
			// a repeated connect: nothing to do
		default:
			c.skipped.Add(1) // acks and binary packets
		}
	case '0', '5', '6':
		// open again, upgrade, noop: nothing to do
	default:
		c.skipped.Add(1)
	}
}

func (c *eio3Client) pingLoop() {
	t := time.NewTimer(c.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		select { // forget a stray pong
		case <-c.pong:
		default:
		}
		wctx, cancel := context.WithTimeout(c.ctx, c.pingTimeout)
		err := c.write(wctx, "2")
		cancel()
		if err != nil {
			if !c.isEnded() {
				c.end(fmt.Errorf("%w: writing ping: %w", ErrTransport, err))
			}
			return
		}
		t.Reset(c.pingTimeout)
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.end(fmt.Errorf("%w: no pong within %v", ErrPingTimeout, c.pingTimeout))
			return
		case <-c.pong:
			if !t.Stop() {
				<-t.C
			}
			t.Reset(c.pingInterval)
		}
	}
}

func (c *eio3Client) write(ctx context.Context, s string) error {
	return c.conn.Write(ctx, websocket.MessageText, []byte(s))
}

func (c *eio3Client) Emit(ctx context.Context, event string, args ...any) error {
	if c.isEnded() {
		return c.closedErr()
	}
	b, err := encodeEvent(event, args)
	if err != nil {
		return err
	}
	if err := c.conn.Write(ctx, websocket.MessageText, append([]byte("42"), b...)); err != nil {
		if c.isEnded() {
			return c.closedErr()
		}
		return fmt.Errorf("sio: emit %q: %w", event, err)
	}
	return nil
}

func (c *eio3Client) Close() error {
	if c.isEnded() {
		return nil
	}
	// Tell the server we leave (best effort, bounded), then drop the socket.
	wctx, cancel := context.WithTimeout(c.ctx, eio3CloseWriteTimeout)
	_ = c.write(wctx, "41")
	cancel()
	c.end(nil)
	return nil
}

// sioPacket is a parsed Socket.IO packet (the part after the Engine.IO type).
type sioPacket struct {
	typ  byte
	nsp  string
	id   string
	data string
}

func (p sioPacket) defaultNSP() bool { return p.nsp == "" || p.nsp == "/" }

func parseSIOPacket(s string) (sioPacket, bool) {
	var p sioPacket
	if s == "" || s[0] < '0' || s[0] > '6' {
		return p, false
	}
	p.typ, s = s[0], s[1:]
	if p.typ == '5' || p.typ == '6' { // "<n>-" attachment count
		i := strings.IndexByte(s, '-')
		if i < 0 {
			return p, false
		}
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "/") {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			p.nsp, s = s, ""
		} else {
			p.nsp, s = s[:i], s[i+1:]
		}
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	p.id, p.data = s[:i], s[i:]
	return p, true
}

// decodeEvent parses `["name", arg...]`.
func decodeEvent(data string) (Event, bool) {
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(data), &arr); err != nil || len(arr) == 0 {
		return Event{}, false
	}
	var name string
	if err := json.Unmarshal(arr[0], &name); err != nil {
		return Event{}, false
	}
	return Event{Name: name, Args: arr[1:]}, true
}

// errorText renders an error packet's payload: a JSON string, an object with
// "message", or the raw text.
func errorText(data string) string {
	var s string
	if json.Unmarshal([]byte(data), &s) == nil {
		return s
	}
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(data), &m) == nil && m.Message != "" {
		return m.Message
	}
	if data == "" {
		return "(no reason given)"
	}
	if len(data) > 200 {
		data = data[:200] + "..."
	}
	return data
}
