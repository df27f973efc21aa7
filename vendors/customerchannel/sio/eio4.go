package sio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"
	engine "github.com/zishang520/socket.io/clients/engine/v3"
	sioclient "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/queue"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The EIO4 client wraps zishang520's Socket.IO client. Facts about that
// library (v3.0.1) that shape this file, all read from its source:
//
//   - Manager.Open dials the WebSocket synchronously, with a gorilla Dialer that
//     has no HandshakeTimeout: against a server that accepts TCP but never
//     answers, socket.Connect blocks for ever. Its own connect timeout is armed
//     only after the dial returns.
//   - A dial error is emitted before the Manager subscribes to the engine, so it
//     is lost: "connection refused" would surface as "timeout" after the connect
//     timeout.
//   - Every Manager starts a task-queue goroutine that nothing ever stops (one
//     goroutine leaked per connection).
//
// Containment: our own TransportCtor builds the library's websocket transport,
// gives its dialer a HandshakeTimeout, and listens to its "error" event so the
// dial error is known; teardown stops the Manager's task queue (closeLeakedQueue).
// Dial runs the library's blocking connect in a goroutine and enforces
// ConnectTimeout itself.

type eio4Client struct {
	*core
	mgr  *sioclient.Manager
	sock *sioclient.Socket

	emitMu  sync.Mutex
	closing atomic.Bool

	// connectReturned is closed once the library's Connect has returned.
	// Teardown waits for it: closing the Manager while Connect is still in
	// Manager.Open can stop the connect timer that Open has just started
	// before its goroutine parks, and that goroutine then never leaves.
	connectReturned <-chan struct{}

	teardownMu sync.Mutex
	noRepairs  bool // guarded by teardownMu; see skipRepairs
	pingOnce   sync.Once
	forceOnce  sync.Once
}

// maxPendingWrites bounds the packets waiting in the library's write buffer
// while the server does not read (EIO3's Emit writes synchronously instead).
const maxPendingWrites = 64

// forceCloseAfter bounds how long a closing engine may wait for its write
// buffer to drain before teardown closes the transport itself.
const forceCloseAfter = 500 * time.Millisecond

// dialState collects what happens while connecting; the library calls these
// listeners from its own goroutines.
type dialState struct {
	once      sync.Once
	result    chan error // nil = connected; buffered 1
	dialErr   atomic.Pointer[error]
	connected atomic.Bool
	// serverLeft is set when the engine delivers a namespace DISCONNECT. The
	// library queues that packet (Manager task queue) while it handles a closing
	// transport at once, so "io server disconnect" often arrives as "transport
	// close" when the server disconnects and closes in one go.
	serverLeft atomic.Bool
	// gate holds back the first received packet until socket.Connect has
	// returned. Manager.Open subscribes to the engine's "open" only after the
	// (synchronous) dial returns, while the server's open packet is read by
	// another goroutine as soon as the WebSocket is up: without the gate the
	// "open" is sometimes emitted before anyone listens, and the connect then
	// hangs until the timeout (seen about once in 250 dials on loopback).
	gate chan struct{}
	// admission bounds what the library holds between its reader and our
	// buffer; set before Connect.
	admission *admission
}

func (d *dialState) report(err error) {
	d.once.Do(func() { d.result <- err })
}

func dialEIO4(ctx context.Context, u *url.URL, o Options) (Client, error) {
	scheme := "http"
	if wsScheme(u) == "wss" {
		scheme = "https"
	}
	// The library takes the namespace from the URL path; the path prefix (if the
	// server sits behind one) goes into the Engine.IO path instead.
	base := scheme + "://" + u.Host
	target := base + strings.TrimSuffix(socketIOPath(u), "/")

	ds := &dialState{result: make(chan error, 1), gate: make(chan struct{})}

	opts := sioclient.DefaultOptions()
	opts.SetTransports(types.NewSet[engine.TransportCtor](&boundedWebSocket{timeout: o.ConnectTimeout, maxMessage: o.MaxMessage, ds: ds}))
	opts.SetUpgrade(false)
	opts.SetReconnection(false)
	opts.SetForceNew(true)
	opts.SetMultiplex(false)
	opts.SetAutoConnect(false) // subscribe before anything can happen, then Connect
	opts.SetTimeout(o.ConnectTimeout)
	opts.SetPath(strings.TrimSuffix(socketIOPath(u), "/"))
	if o.Header != nil {
		opts.SetExtraHeaders(o.Header.Clone())
	}
	if o.TLSConfig != nil {
		opts.SetTLSClientConfig(o.TLSConfig.Clone())
	}

	mgr := sioclient.NewManager(base, opts)
	sock := mgr.Socket("/", opts)
	connectReturned := make(chan struct{})
	c := &eio4Client{core: newCore(o), mgr: mgr, sock: sock, noRepairs: skipRepairs.Load(), connectReturned: connectReturned}
	ds.admission = &admission{core: c.core, queue: unexportedField[*queue.Queue](mgr, "taskQueue"),
		maxEvents: o.MaxBufferedEvents, maxBytes: o.MaxBufferedBytes}
	c.onEnd = func() {
		// end may run inside one of the library's listeners: tear down from a
		// fresh goroutine so the library is not re-entered.
		go c.teardown()
	}

	_ = sock.On("connect", func(...any) {
		ds.connected.Store(true)
		ds.report(nil)
	})
	_ = sock.On("connect_error", func(args ...any) {
		ds.report(connectError(args))
	})
	_ = sock.On("disconnect", func(args ...any) {
		reason, _ := argAt[string](args, 0)
		desc, _ := argAt[error](args, 1)
		if !ds.connected.Load() {
			if e := ds.dialErr.Load(); e != nil {
				ds.report(classifyDialError(*e))
			} else {
				ds.report(fmt.Errorf("%w: disconnected while connecting (%s)", ErrHandshake, reason))
			}
			return
		}
		if c.closing.Load() {
			c.end(nil)
			return
		}
		if ds.serverLeft.Load() && reason != "ping timeout" {
			reason = "io server disconnect"
		}
		c.end(disconnectError(reason, desc))
	})
	// The library loses a CONNECT_ERROR's message unless it carries "data" (Node
	// servers send only {"message"}): read it from the manager's packets, which
	// reach this listener before the socket's.
	_ = mgr.On("packet", func(args ...any) {
		p, ok := argAt[*parser.Packet](args, 0)
		if !ok || p == nil || p.Type != parser.CONNECT_ERROR || (p.Nsp != "/" && p.Nsp != "") {
			return
		}
		msg := "(no reason given)"
		switch d := p.Data.(type) {
		case string:
			msg = d
		case map[string]any:
			if m, ok := d["message"].(string); ok {
				msg = m
			}
		}
		ds.report(fmt.Errorf("%w: %s", ErrNamespaceRefused, clip(msg, maxErrorText)))
	})
	sock.OnAny(func(args ...any) {
		c.deliver(toEvent(args))
	})

	go func() {
		defer close(connectReturned)
		sock.Connect() // blocks while the WebSocket is dialled
		// Manager.Open has just started its connect timer, which the open
		// packet we release next stops: let its goroutine park first.
		awaitTimersParked(timerParkLimit)
		close(ds.gate)
		if e := ds.dialErr.Load(); e != nil {
			ds.report(classifyDialError(*e))
		}
	}()

	timer := time.NewTimer(o.ConnectTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-ds.result:
	case <-timer.C:
		err = fmt.Errorf("%w after %v", ErrConnectTimeout, o.ConnectTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrConnectTimeout, ctx.Err())
	}
	if err == nil {
		return c, nil
	}
	c.closing.Store(true)
	c.teardownMu.Lock()
	c.noRepairs = false // a failed dial is not returned, so nobody could repair it later
	c.teardownMu.Unlock()
	// end starts a teardown, which waits for a dial still running to return,
	// so that a connection it opens after we gave up is closed too.
	c.end(err)
	c.discard()
	return nil, fmt.Errorf("%s: %w", target, err)
}

// teardown releases everything the library holds for this connection. It is
// idempotent and may run more than once.
func (c *eio4Client) teardown() {
	<-c.connectReturned
	c.teardownMu.Lock()
	defer c.teardownMu.Unlock()
	c.sock.Disconnect() // sends the namespace disconnect if connected; closes the manager
	if e := c.mgr.Engine(); e != nil {
		e.Close()
		if t := e.Transport(); t != nil && !c.noRepairs {
			closeTransportQueue(t)
		}
		if e.ReadyState() != engine.SocketStateClosed {
			// The engine closes only after its write buffer drains (our
			// namespace DISCONNECT). Do not wait for ever: force the transport
			// shut a little later if it is still open.
			c.forceOnce.Do(func() {
				time.AfterFunc(forceCloseAfter, func() {
					if e.ReadyState() != engine.SocketStateClosed {
						if t := e.Transport(); t != nil {
							t.Close()
						}
					}
					c.teardownMu.Lock()
					defer c.teardownMu.Unlock()
					c.releaseEngine(e)
				})
			})
		} else {
			c.releaseEngine(e)
		}
	}
	if !c.noRepairs {
		closeLeakedQueue(c.mgr)
	}
}

// releaseEngine frees what the library leaves of a closed (or forced shut)
// engine, once. The caller holds teardownMu.
func (c *eio4Client) releaseEngine(e engine.Socket) {
	if c.noRepairs {
		return
	}
	c.pingOnce.Do(func() {
		releasePingTimer(e)
		releaseEngineQueues(e)
	})
}

func (c *eio4Client) Emit(ctx context.Context, event string, args ...any) error {
	if c.isEnded() || !c.sock.Connected() {
		return c.closedErr()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if event == "" {
		return errors.New("sio: empty event name")
	}
	// Marshal each argument with encoding/json (struct tags, json.Marshaler),
	// then hand the library plain JSON values: it would send []byte (and so a
	// json.RawMessage) as a binary attachment.
	vals := make([]any, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("sio: marshal %q arg %d: %w", event, i, err)
		}
		if err := json.Unmarshal(b, &vals[i]); err != nil {
			return fmt.Errorf("sio: marshal %q arg %d: %w", event, i, err)
		}
	}
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	// The library queues what cannot be written yet without bound (the
	// engine's write buffer): a server that stops reading would have every
	// later Emit reported as sent and held in memory.
	if e := c.mgr.Engine(); e != nil {
		if n := e.WriteBuffer().Len(); n >= maxPendingWrites {
			return fmt.Errorf("sio: emit %q: %w: %d packets wait to be written", event, ErrBacklog, n)
		}
	}
	if err := c.sock.Emit(event, vals...); err != nil {
		return fmt.Errorf("sio: emit %q: %w", event, err)
	}
	return nil
}

func (c *eio4Client) Close() error {
	if c.isEnded() {
		c.discard()
		return nil
	}
	c.closing.Store(true)
	c.end(nil)
	c.discard()
	c.teardown() // synchronous here; the one started by end finds nothing left
	return nil
}

// timerParkLimit bounds the wait for the connect timer's goroutine to park
// (awaitTimersParked); it normally takes well under a millisecond.
const timerParkLimit = time.Second

// boundedWebSocket is a TransportCtor for the library's own websocket
// transport, with repairs: its dialer gets a HandshakeTimeout (otherwise
// unbounded); its connection gets MaxMessage as read limit (otherwise none); its first "error" is recorded so that Dial can name a failed
// dial (the library drops it); and a server's namespace DISCONNECT is noticed
// before the library's queue reorders it after the transport close.
type boundedWebSocket struct {
	timeout    time.Duration
	maxMessage int64
	ds         *dialState
}

func (b *boundedWebSocket) Name() string { return "websocket" }

func (b *boundedWebSocket) New(s engine.Socket, o engine.SocketOptionsInterface) engine.Transport {
	t := engine.NewWebSocket(s, o)
	if d := libraryDialer(t); d != nil {
		d.HandshakeTimeout = b.timeout
	}
	_ = s.On("data", func(args ...any) {
		// A default-namespace DISCONNECT is the message "1" (or "1/,").
		if sb, ok := argAt[*types.StringBuffer](args, 0); ok && sb != nil && sb.Len() <= 3 {
			if m := sb.String(); m == "1" || m == "1/," {
				b.ds.serverLeft.Store(true)
			}
		}
	})
	var limitOnce sync.Once
	_ = t.On("packet", func(args ...any) {
		// Registered before the engine's own listener, so this runs first,
		// on the transport's reader goroutine: the one place where setting
		// the gorilla read limit does not race with a read.
		limitOnce.Do(func() {
			if wc := libraryConn(t); wc != nil && wc.Conn != nil {
				wc.SetReadLimit(b.maxMessage)
			}
		})
		if p, ok := argAt[*packet.Packet](args, 0); ok && p != nil && p.Type == packet.MESSAGE {
			if err := b.ds.admission.admit(p, b.ds.connected.Load()); err != nil {
				b.ds.report(err)
				b.ds.admission.core.end(err)
			}
		}
		select {
		case <-b.ds.gate:
			return
		default:
		}
		tm := time.NewTimer(b.timeout)
		defer tm.Stop()
		select {
		case <-b.ds.gate:
		case <-tm.C:
		}
	})
	_ = t.On("error", func(args ...any) {
		if err, ok := argAt[error](args, 0); ok && err != nil {
			b.ds.dialErr.CompareAndSwap(nil, &err)
		}
	})
	return t
}

// classifyDialError maps the gorilla dial error to our sentinels.
func classifyDialError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, ws.ErrBadHandshake):
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrConnectTimeout, err)
	default:
		return fmt.Errorf("%w: %w", ErrDial, err)
	}
}

// connectError maps a "connect_error" event to our sentinels.
func connectError(args []any) error {
	err, _ := argAt[error](args, 0)
	if err == nil {
		return fmt.Errorf("%w: connect_error without a reason", ErrHandshake)
	}
	var ee *types.ExtendedError
	switch {
	case errors.As(err, &ee):
		return fmt.Errorf("%w: %w", ErrNamespaceRefused, err)
	case err.Error() == "timeout":
		return fmt.Errorf("%w: %w", ErrConnectTimeout, err)
	case strings.Contains(err.Error(), "v2.x"):
		return fmt.Errorf("%w (is it a Socket.IO 2 server? use EIO 3): %w", ErrHandshake, err)
	default:
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
}

// disconnectError maps the library's disconnect reason to our sentinels.
func disconnectError(reason string, desc error) error {
	var base error
	switch reason {
	case "io server disconnect":
		base = ErrServerDisconnect
	case "ping timeout":
		base = ErrPingTimeout
	default: // "transport close", "transport error", "parse error", "forced close"
		base = ErrTransport
	}
	if desc != nil {
		return fmt.Errorf("%w: %s: %w", base, reason, desc)
	}
	return fmt.Errorf("%w: %s", base, reason)
}

// toEvent turns the library's decoded arguments (name first) into an Event.
func toEvent(args []any) Event {
	var ev Event
	if len(args) == 0 {
		return ev
	}
	ev.Name, _ = args[0].(string)
	for _, a := range args[1:] {
		if _, isAck := a.(func([]any, error)); isAck {
			continue // acks are not supported
		}
		b, err := json.Marshal(a)
		if err != nil {
			b = []byte("null")
		}
		ev.Args = append(ev.Args, json.RawMessage(b))
	}
	return ev
}

func argAt[T any](args []any, i int) (T, bool) {
	var zero T
	if i >= len(args) {
		return zero, false
	}
	v, ok := args[i].(T)
	return v, ok
}
