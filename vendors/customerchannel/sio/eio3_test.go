package sio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// eio3Server is a minimal Engine.IO 3 / Socket.IO 2 server over one WebSocket:
// open packet, "40" (unless refuse or noConnect), pong to every ping, echo of
// "hello" as "reply", and hooks to misbehave.
type eio3Server struct {
	hs  *httptest.Server
	url string

	pingInterval, pingTimeout int // ms, announced in the open packet
	refuse                    string
	noConnect                 bool
	noPong                    atomic.Bool
	anyEIO                    bool // serve EIO 4 dials too, as a Socket.IO 2 server does

	mu     sync.Mutex
	conn   *websocket.Conn // the latest connection
	frames []string        // text frames received, pings excluded
	pings  int
	conns  chan *websocket.Conn
	wg     sync.WaitGroup
}

func newEIO3Server(t testing.TB, setup func(*eio3Server)) *eio3Server {
	t.Helper()
	s := &eio3Server{pingInterval: 25000, pingTimeout: 5000, conns: make(chan *websocket.Conn, 16)}
	if setup != nil {
		setup(s)
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	s.url = s.hs.URL
	t.Cleanup(func() {
		s.hs.Close()
		s.mu.Lock()
		if s.conn != nil {
			s.conn.CloseNow()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *eio3Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "3" && !s.anyEIO || r.URL.Query().Get("transport") != "websocket" {
		http.Error(w, `{"code":0,"message":"Transport unknown"}`, http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	c.SetReadLimit(1 << 22)
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	ctx := r.Context()
	_ = c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `0{"sid":"abc","upgrades":[],"pingInterval":%d,"pingTimeout":%d}`, s.pingInterval, s.pingTimeout))
	switch {
	case s.refuse != "":
		_ = c.Write(ctx, websocket.MessageText, []byte(`44`+string(mustJSON(s.refuse))))
	case !s.noConnect:
		_ = c.Write(ctx, websocket.MessageText, []byte("40"))
	}
	s.conns <- c // after the handshake's packets: what a test writes comes next
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			return
		}
		msg := string(data)
		if strings.HasPrefix(msg, "2") {
			s.mu.Lock()
			s.pings++
			s.mu.Unlock()
			if !s.noPong.Load() {
				_ = c.Write(ctx, websocket.MessageText, []byte("3"+msg[1:]))
			}
			continue
		}
		s.mu.Lock()
		s.frames = append(s.frames, msg)
		s.mu.Unlock()
		if strings.HasPrefix(msg, `42["hello"`) {
			var arr []json.RawMessage
			_ = json.Unmarshal(data[2:], &arr)
			arr[0] = json.RawMessage(`"reply"`)
			_ = c.Write(ctx, websocket.MessageText, append([]byte("42"), mustJSON(arr)...))
		}
	}
}

// send writes raw frames to the latest connection.
func (s *eio3Server) send(t testing.TB, typ websocket.MessageType, frames ...string) {
	t.Helper()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	for _, f := range frames {
		if err := c.Write(context.Background(), typ, []byte(f)); err != nil {
			t.Fatalf("server write %q: %v", f, err)
		}
	}
}

func (s *eio3Server) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frames...)
}

func dial3(t testing.TB, url string, mod func(*Options)) Client {
	t.Helper()
	o := Options{URL: url, EIO: 3, ConnectTimeout: 2 * time.Second}
	if mod != nil {
		mod(&o)
	}
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

func TestEIO3EventsBothWays(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, nil)
	defer c.Close()

	obj := map[string]any{"id": "sms", "name": "ExpertFlow SMS Connector", "channel": "sms"}
	if err := c.Emit(context.Background(), "hello", obj); err != nil {
		t.Fatal(err)
	}
	ev := recvEvent(t, c)
	if ev.Name != "reply" || len(ev.Args) != 1 {
		t.Fatalf("got %+v", ev)
	}
	var back map[string]any
	if err := json.Unmarshal(ev.Args[0], &back); err != nil || back["channel"] != "sms" {
		t.Fatalf("arg %s: %v", ev.Args[0], err)
	}

	// Client to server, in order.
	for i := range 50 {
		if err := c.Emit(context.Background(), "sendMessage", map[string]int{"n": i}, "x"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		var got []string
		for _, f := range s.received() {
			if strings.HasPrefix(f, `42["sendMessage"`) {
				got = append(got, f)
			}
		}
		if len(got) == 50 {
			for i, f := range got {
				if want := fmt.Sprintf(`42["sendMessage",{"n":%d},"x"]`, i); f != want {
					t.Fatalf("frame %d = %s, want %s", i, f, want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server got %d sendMessage frames", len(got))
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Server to client, in order, ack ids ignored.
	for i := range 50 {
		s.send(t, websocket.MessageText, fmt.Sprintf(`42["messageArrived",{"n":%d}]`, i))
	}
	s.send(t, websocket.MessageText, `421["conversationInfo","with ack id"]`)
	for i := range 50 {
		ev := recvEvent(t, c)
		if ev.Name != "messageArrived" || string(ev.Args[0]) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if ev := recvEvent(t, c); ev.Name != "conversationInfo" || string(ev.Args[0]) != `"with ack id"` {
		t.Fatalf("got %+v", ev)
	}
}

func TestEIO3PingsAnswered(t *testing.T) {
	s := newEIO3Server(t, func(s *eio3Server) { s.pingInterval, s.pingTimeout = 20, 200 })
	c := dial3(t, s.url, nil)
	defer c.Close()
	// 15 pings at a 20 ms interval outlast the 200 ms pong timeout: a client
	// that did not answer would be dropped before the 15th. The deadline is
	// only a bound for a machine under load, not the measure.
	pings := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pings
	}
	for deadline := time.Now().Add(10 * time.Second); pings() < 15; time.Sleep(5 * time.Millisecond) {
		select {
		case <-c.Done():
			t.Fatalf("ended after %d pings: %v", pings(), c.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server saw %d pings in 10s at a 20ms interval", pings())
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("ended: %v", c.Err())
	default:
	}
}

func TestEIO3PingTimeout(t *testing.T) {
	s := newEIO3Server(t, func(s *eio3Server) { s.pingInterval, s.pingTimeout = 30, 100 })
	s.noPong.Store(true)
	c := dial3(t, s.url, nil)
	defer c.Close()
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrPingTimeout) || !strings.Contains(err.Error(), "ping timeout") {
		t.Fatalf("Err = %v", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("Events not closed")
	}
}

func TestEIO3MalformedFramesSkipped(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, nil)
	defer c.Close()
	s.send(t, websocket.MessageText,
		"4", "42", "42notjson", "42[1,2]", "42[]", `42{"a":1}`, "9xyz", "4x", `43[1]`,
		`451-["bin",{"_placeholder":true,"num":0}]`, `42/admin,["other namespace"]`, "6", "5", "3")
	s.send(t, websocket.MessageBinary, "\x04binary attachment")
	s.send(t, websocket.MessageText, `42["ok",1]`)
	ev := recvEvent(t, c)
	if ev.Name != "ok" || string(ev.Args[0]) != "1" {
		t.Fatalf("got %+v", ev)
	}
	if n := skippedFrames(c); n < 11 {
		t.Fatalf("skipped %d frames, want >= 11", n)
	}
	select {
	case <-c.Done():
		t.Fatalf("ended: %v", c.Err())
	default:
	}
}

func TestEIO3ServerDisconnect(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, nil)
	defer c.Close()
	s.send(t, websocket.MessageText, "41")
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrServerDisconnect) {
		t.Fatalf("Err = %v", err)
	}
	if err := c.Emit(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Emit after end = %v", err)
	}
}

func TestEIO3ServerErrorPacket(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, nil)
	defer c.Close()
	s.send(t, websocket.MessageText, `44"boom"`)
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrServerError) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Err = %v", err)
	}
}

func TestEIO3ServerDropsSocket(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, nil)
	defer c.Close()
	s.mu.Lock()
	s.conn.CloseNow()
	s.mu.Unlock()
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrTransport) {
		t.Fatalf("Err = %v", err)
	}
}

func TestEIO3Close(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, nil)
	closeAtAll(t, c)
	closeAtAll(t, c)
	waitDone(t, c)
	if c.Err() != nil {
		t.Fatalf("Err after Close = %v", c.Err())
	}
	if err := c.Emit(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Emit after Close = %v", err)
	}
	deadline := time.Now().Add(time.Second)
	for !containsFrame(s.received(), "41") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not get 41: %q", s.received())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func containsFrame(frames []string, f string) bool {
	for _, x := range frames {
		if x == f {
			return true
		}
	}
	return false
}

func TestEIO3ReadLimit(t *testing.T) {
	s := newEIO3Server(t, nil)
	c := dial3(t, s.url, func(o *Options) { o.MaxMessage = 1024 })
	defer c.Close()
	s.send(t, websocket.MessageText, `42["small","`+strings.Repeat("a", 500)+`"]`)
	if ev := recvEvent(t, c); ev.Name != "small" {
		t.Fatalf("got %+v", ev)
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	_ = conn.Write(context.Background(), websocket.MessageText, []byte(`42["big","`+strings.Repeat("a", 2000)+`"]`))
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrTransport) {
		t.Fatalf("Err = %v", err)
	}
}

func TestEIO3EarlyEventBeforeConnect(t *testing.T) {
	// A server that sends an event before "40" (not usual): it is delivered first.
	s := newEIO3Server(t, func(s *eio3Server) { s.noConnect = true })
	go func() {
		c := <-s.conns // the open packet is out
		_ = c.Write(context.Background(), websocket.MessageText, []byte(`42["early"]`))
		_ = c.Write(context.Background(), websocket.MessageText, []byte(`40`))
	}()
	c := dial3(t, s.url, nil)
	defer c.Close()
	if ev := recvEvent(t, c); ev.Name != "early" || len(ev.Args) != 0 {
		t.Fatalf("got %+v", ev)
	}
}

func TestEIO3NamespaceRefused(t *testing.T) {
	s := newEIO3Server(t, func(s *eio3Server) { s.refuse = "not authorized" })
	_, err := Dial(context.Background(), Options{URL: s.url, EIO: 3, ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, ErrNamespaceRefused) || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO3NoNamespaceConnect(t *testing.T) {
	s := newEIO3Server(t, func(s *eio3Server) { s.noConnect = true })
	_, err := Dial(context.Background(), Options{URL: s.url, EIO: 3, ConnectTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrConnectTimeout) || !strings.Contains(err.Error(), "namespace connect") {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO3HandshakeFailure(t *testing.T) {
	hs := httptest.NewServer(nil) // 404
	defer hs.Close()
	_, err := Dial(context.Background(), Options{URL: hs.URL, EIO: 3})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v", err)
	}

	// A WebSocket that does not speak Engine.IO.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`0not json`))
		_, _, _ = c.Read(r.Context())
	}))
	defer bad.Close()
	_, err = Dial(context.Background(), Options{URL: bad.URL, EIO: 3})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "open packet") {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO3ConnectionRefused(t *testing.T) {
	_, err := Dial(context.Background(), Options{URL: "http://" + closedPort(t), EIO: 3})
	if !errors.Is(err, ErrDial) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO3ConnectTimeoutSilentServer(t *testing.T) {
	addr, stop := silentServer(t)
	defer stop()
	// Only the connect timeout can end it with ErrConnectTimeout: the
	// caller's context (a 10 s give-up) would end it with its own error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Options{URL: "http://" + addr, EIO: 3, ConnectTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("err = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ended by the caller's give-up, not the connect timeout: %v", err)
	}
}

func TestDialBadOptions(t *testing.T) {
	for _, o := range []Options{
		{URL: "http://127.0.0.1:1", EIO: 5},
		{URL: "ftp://127.0.0.1:1", EIO: 3},
		{URL: "http://", EIO: 4},
		{URL: "::bad", EIO: 4},
	} {
		if _, err := Dial(context.Background(), o); err == nil {
			t.Errorf("Dial(%+v) succeeded", o)
		}
	}
	// A bad URL is named without its userinfo or query.
	_, err := Dial(context.Background(), Options{URL: "ftp://user:pw@host/?token=s3cret", EIO: 3})
	if err == nil || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("err = %v", err)
	}
}
