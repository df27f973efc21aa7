package sio

import (
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	ws "github.com/gorilla/websocket"
	engine "github.com/zishang520/socket.io/clients/engine/v3"
	sioclient "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/queue"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

// Repairs to zishang520/socket.io v3.0.1 that need its unexported fields. Each
// checks the field's type and does nothing if the library changed shape (the
// tests TestEIO4GoroutinesBounded and TestEIO4ConnectTimeoutSilentServer then
// fail, which is the signal to revisit this file).

// skipRepairs is set only by the test that measures the leaks without the
// repairs; a client dialled while it is set skips them (eio4Client.noRepairs),
// unless its dial fails. Its zero value keeps them on.
var skipRepairs atomic.Bool

// closeLeakedQueue stops the Manager's task-queue goroutine. Manager.taskQueue
// (a *queue.Queue started by MakeManager) is never closed by the library: one
// goroutine, parked in sync.Cond.Wait, leaks per Manager. Its finalizer cannot
// help, because the running loop itself keeps the queue reachable. TryClose is
// the library's own non-blocking shutdown; it is idempotent.
func closeLeakedQueue(m *sioclient.Manager) {
	if q := unexportedField[*queue.Queue](m, "taskQueue"); q != nil {
		q.TryClose()
	}
}

// closeTransportQueue stops the websocket transport's write-queue goroutine.
// The library stops it only in DoClose, which runs when WE close the
// transport; when the peer or the network drops the connection the transport
// goes straight to OnClose and the goroutine leaks (one per dropped
// connection).
//
// Only a closed transport's queue is stopped: a closing engine still needs
// the queue to write its last packets (stopping it then would leave the
// engine waiting for a "drain" that never comes, and the connection open).
func closeTransportQueue(t engine.Transport) {
	if t.ReadyState() != engine.TransportStateClosed {
		return
	}
	if q := unexportedField[*queue.Queue](t, "writeQueue"); q != nil {
		q.TryClose()
	}
}

// libraryDialer returns the gorilla Dialer inside the library's websocket
// transport (field "dialer"), or nil.
func libraryDialer(t engine.Transport) *ws.Dialer {
	return unexportedField[*ws.Dialer](t, "dialer")
}

// libraryConn returns the gorilla connection inside the library's websocket
// transport (field "socket"), or nil before it is dialled.
func libraryConn(t engine.Transport) *types.WebSocketConn {
	return unexportedField[*types.WebSocketConn](t, "socket")
}

// releasePingTimer frees the goroutine of the engine's ping-timeout timer
// after the connection has closed. The library's utils.Timer.Stop signals its
// goroutine with a non-blocking send on an unbuffered channel: if the timer is
// stopped before that goroutine has reached its select (a connection closed
// within microseconds of its handshake or of a ping), the goroutine stays
// parked for ever. A blocking send, given up after 100 ms, releases it if it
// is parked (or about to park) and does nothing if it has gone.
func releasePingTimer(e engine.Socket) {
	core := engineCore(e)
	if core == nil {
		return
	}
	p := unexportedField[*atomic.Pointer[utils.Timer]](core, "_pingTimeoutTimer")
	if p == nil {
		return
	}
	t := p.Load()
	if t == nil {
		return
	}
	utils.ClearTimeout(t)
	ch := unexportedField[chan struct{}](t, "stopCh")
	if ch == nil {
		return
	}
	go func() {
		tm := time.NewTimer(100 * time.Millisecond)
		defer tm.Stop()
		select {
		case ch <- struct{}{}:
		case <-tm.C:
		}
	}()
}

// releaseEngineQueues stops the task queues left of a connection we are done
// with: the engine socket's (closed by the library only when the engine
// reaches its close, which a connection torn down mid-handshake never does)
// and its transport's write queue (see closeTransportQueue). It runs when the
// engine has closed or has been forced shut, so nothing needs them any more;
// tasks already queued still run, later ones are dropped.
func releaseEngineQueues(e engine.Socket) {
	if q := unexportedField[*queue.Queue](engineCore(e), "taskQueue"); q != nil {
		q.TryClose()
	}
	if t := e.Transport(); t != nil {
		if q := unexportedField[*queue.Queue](t, "writeQueue"); q != nil {
			q.TryClose()
		}
	}
}

// engineCore digs the *SocketWithoutUpgrade out of the engine socket
// (Socket -> SocketWithUpgrade -> SocketWithoutUpgrade), or returns nil.
func engineCore(e engine.Socket) any {
	v := reflect.ValueOf(e)
	for _, name := range []string{"SocketWithUpgrade", "SocketWithoutUpgrade"} {
		if v.Kind() == reflect.Interface {
			v = v.Elem()
		}
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return nil
		}
		v = v.Elem().FieldByName(name)
		if !v.IsValid() {
			return nil
		}
	}
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	return v.Interface()
}

// unexportedField reads field name of the struct that p (a pointer to a
// struct, possibly inside an interface) points to. T is the field's type, or
// a pointer to it (then the field's address is returned).
func unexportedField[T any](p any, name string) T {
	var zero T
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return zero
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() || !f.CanAddr() {
		return zero
	}
	want := reflect.TypeFor[T]()
	switch {
	case f.Type() == want:
		return *(*T)(unsafe.Pointer(f.UnsafeAddr()))
	case want.Kind() == reflect.Pointer && f.Type() == want.Elem():
		return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Interface().(T)
	}
	return zero
}

// awaitTimersParked waits, for up to limit, until every utils.SetTimeout
// goroutine that the calling goroutine started sits in its select. The
// library's Timer.Stop releases that goroutine with a non-blocking send, so a
// timer stopped before its goroutine got there leaves it parked for good (with
// everything its callback holds). Manager.Open starts its connect timer on the
// goroutine that calls Connect, and the open packet that stops it is held at
// the gate until this returns. No fixed delay is enough: a CPU-starved
// process can leave a new goroutine unscheduled for tens of milliseconds. The
// goroutine dump costs a brief stop of the world, once per connect.
func awaitTimersParked(limit time.Duration) bool {
	self := currentGoroutineID()
	if self == "" {
		return false
	}
	createdHere := "created by github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout in goroutine " + self + "\n"
	deadline := time.Now().Add(limit)
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		unparked := false
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, createdHere) && !strings.Contains(firstLine(g), "[select") {
				unparked = true
				break
			}
		}
		if !unparked {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// currentGoroutineID reads the calling goroutine's id from its stack header,
// "goroutine 42 [running]:".
func currentGoroutineID() string {
	var b [64]byte
	h := string(b[:runtime.Stack(b[:], false)])
	id, _, _ := strings.Cut(strings.TrimPrefix(h, "goroutine "), " ")
	return id
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
