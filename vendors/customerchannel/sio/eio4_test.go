package sio

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dial4 dials a test server with EIO 4.
func dial4(t testing.TB, url string) Client {
	t.Helper()
	return dial4With(t, Options{URL: url})
}

// dial4With is dial4 with options of the test's own (EIO and ConnectTimeout
// are set here).
func dial4With(t testing.TB, o Options) Client {
	t.Helper()
	o.EIO, o.ConnectTimeout = 4, 3*time.Second
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

// recvEvent waits for c's next event; the 10 s is a give-up deadline.
func recvEvent(t testing.TB, c Client) Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("Events closed: %v", c.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

// waitDone waits for c to end. The 10 s is a give-up deadline for an end
// that must come at all, not a claim about how soon.
func waitDone(t testing.TB, c Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed")
	}
}

// closeAtAll closes c, failing the test if Close does not return (10 s is a
// give-up deadline, not a speed claim) or fails.
func closeAtAll(t testing.TB, c Client) {
	t.Helper()
	got := make(chan error, 1)
	go func() { got <- c.Close() }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestEIO4EmitAndReceive(t *testing.T) {
	s := startEIO4Server(t, "")
	type msg struct {
		ConversationID string `json:"conversationId"`
		Text           string `json:"text"`
	}
	exchange4(t, Options{URL: s.url}, func(c Client) error {
		if err := c.Emit(context.Background(), "hello", msg{"c1", "hi there"}, 7); err != nil {
			return err
		}
		ev, err := nextEvent(c, 3*time.Second)
		if err != nil {
			return err
		}
		if ev.Name != "reply" || len(ev.Args) != 2 {
			t.Fatalf("got %+v", ev)
		}
		var m msg
		if err := json.Unmarshal(ev.Args[0], &m); err != nil || m != (msg{"c1", "hi there"}) {
			t.Fatalf("arg0 %s: %v", ev.Args[0], err)
		}
		if string(ev.Args[1]) != "7" {
			t.Fatalf("arg1 %s", ev.Args[1])
		}
		// Events keep their order.
		for i := range 20 {
			if err := c.Emit(context.Background(), "hello", i); err != nil {
				return err
			}
		}
		for i := range 20 {
			ev, err := nextEvent(c, 3*time.Second)
			if err != nil {
				return err
			}
			if want := strings.TrimSpace(string(mustJSON(i))); string(ev.Args[0]) != want {
				t.Fatalf("event %d: got %s", i, ev.Args[0])
			}
		}
		return nil
	})
}

// exchange4 runs exchange on a fresh connection and fails the test on an
// error.
func exchange4(t *testing.T, o Options, exchange func(Client) error) {
	t.Helper()
	c := dial4With(t, o)
	defer c.Close()
	if err := exchange(c); err != nil {
		t.Fatal(err)
	}
}

// nextEvent is the next event, or the connection's error once it has ended.
func nextEvent(c Client, d time.Duration) (Event, error) {
	select {
	case ev, ok := <-c.Events():
		if !ok {
			return Event{}, c.Err()
		}
		return ev, nil
	case <-time.After(d):
		return Event{}, fmt.Errorf("no event within %v", d)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestEIO4ServerDisconnect(t *testing.T) {
	s := startEIO4Server(t, "")
	c := dial4(t, s.url)
	defer c.Close()
	s.disconnectAll()
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrServerDisconnect) {
		t.Fatalf("Err = %v, want ErrServerDisconnect", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("Events not closed")
	}
	if err := c.Emit(context.Background(), "hello"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Emit after end = %v", err)
	}
}

func TestEIO4ServerGone(t *testing.T) {
	s := startEIO4Server(t, "")
	c := dial4(t, s.url)
	defer c.Close()
	s.ln.dropAll()
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrTransport) {
		t.Fatalf("Err = %v, want ErrTransport", err)
	}
}

func TestEIO4ReadLimit(t *testing.T) {
	s := startEIO4Server(t, "")
	exchange4(t, Options{URL: s.url, MaxMessage: 2048}, func(c Client) error {
		if err := c.Emit(context.Background(), "hello", strings.Repeat("a", 1000)); err != nil {
			return err
		}
		if _, err := nextEvent(c, 3*time.Second); err != nil {
			return err // under the limit: only the fake server's drop ends it
		}
		if err := c.Emit(context.Background(), "hello", strings.Repeat("a", 5000)); err != nil {
			t.Fatal(err)
		}
		waitDone(t, c)
		if err := c.Err(); !errors.Is(err, ErrTransport) {
			t.Fatalf("Err = %v", err)
		}
		return nil
	})
}

func TestEIO4Close(t *testing.T) {
	s := startEIO4Server(t, "")
	c := dial4(t, s.url)
	closeAtAll(t, c)
	closeAtAll(t, c)
	waitDone(t, c)
	if c.Err() != nil {
		t.Fatalf("Err after Close = %v", c.Err())
	}
	if err := c.Emit(context.Background(), "hello"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Emit after Close = %v", err)
	}
}

func TestEIO4NamespaceRefused(t *testing.T) {
	s := startEIO4Server(t, "not authorized")
	_, err := Dial(context.Background(), Options{URL: s.url, EIO: 4, ConnectTimeout: 3 * time.Second})
	if !errors.Is(err, ErrNamespaceRefused) || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO4ConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	// With an hour's connect timeout and a 10 s give-up, the refusal can
	// only be reported as the refusal, not by a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Options{URL: "http://" + addr, EIO: 4, ConnectTimeout: time.Hour})
	if !errors.Is(err, ErrDial) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO4HandshakeFailure(t *testing.T) {
	hs := httptest.NewServer(nil) // 404 for everything
	defer hs.Close()
	_, err := Dial(context.Background(), Options{URL: hs.URL, EIO: 4, ConnectTimeout: 3 * time.Second})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("err = %v", err)
	}
}

func TestEIO4ConnectTimeoutSilentServer(t *testing.T) {
	addr, stop := silentServer(t)
	defer stop()
	// Only the connect timeout can end it with ErrConnectTimeout: the
	// caller's context (a 10 s give-up) would end it with its own error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Options{URL: "http://" + addr, EIO: 4, ConnectTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("err = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ended by the caller's give-up, not the connect timeout: %v", err)
	}
}

// trackingListener remembers accepted connections so that a test can drop
// them, hijacked WebSockets included (httptest forgets those).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// closedPort returns an address where nothing listens.
func closedPort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts TCP connections and never says a word. stop closes
// the listener and every accepted connection.
func silentServer(t testing.TB) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String(), func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
}

// settledGoroutines waits until the goroutine count stops falling.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return m
		}
		n = m
	}
	return n
}

// cycles connects, exchanges one event and closes, n times. A cycle whose
// connection the fake server drops before replying (it has races of its own,
// seen under -race) still counts: it is a connect/disconnect cycle.
func cycles(t *testing.T, url string, n int) []Client {
	var all []Client
	for i := range n {
		c := dial4(t, url)
		all = append(all, c)
		if err := c.Emit(context.Background(), "hello", i); err != nil && !errors.Is(err, ErrClosed) {
			t.Fatal(err)
		}
		select {
		case _, ok := <-c.Events():
			if !ok {
				t.Logf("cycle %d: connection ended before the reply: %v", i, c.Err())
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("cycle %d: no reply", i)
		}
		c.Close()
		waitDone(t, c)
	}
	return all
}

// startSubprocessServer runs the fake EIO4 server in a child process (this
// test binary, see TestMain), so that runtime.NumGoroutine counts the client
// only: the in-process server has leaks and races of its own.
func startSubprocessServer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fakeServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("fake server: %v", err)
	}
	return strings.TrimSpace(line)
}

const fakeServerEnv = "SIO_TEST_FAKE_EIO4_SERVER"

// runFakeServer is the child process's main (see TestMain).
func runFakeServer() {
	s, err := newEIO4Server("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.url)
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.stop()
	os.Exit(0)
}

// TestEIO4GoroutinesBounded: 200 connect/exchange/close cycles leave no
// goroutine behind (the server runs in a child process, so that
// runtime.NumGoroutine counts the client only). The zishang520 client this
// one replaced leaked one goroutine per cycle without its repairs.
func TestEIO4GoroutinesBounded(t *testing.T) {
	url := startSubprocessServer(t)
	cycles(t, url, 5) // warm up: lazily started runtime goroutines
	before := settledGoroutines()
	cycles(t, url, 200)
	after := settledGoroutines()
	t.Logf("%d -> %d goroutines over 200 cycles", before, after)
	if after > before+2 {
		t.Fatalf("goroutines grew from %d to %d over 200 cycles", before, after)
	}
}

// The server pings every fakePingInterval and drops a client whose pong is
// late (fakePingTimeout): the client answers the pings, and the connection
// stays up.
func TestEIO4PongsAnswered(t *testing.T) {
	s := startEIO4Server(t, "")
	c := dial4(t, s.url)
	defer c.Close()
	limit := fakePingInterval + fakePingTimeout + time.Second
	for deadline := time.Now().Add(limit); s.pongs.Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server got %d pongs in %v (pings every %v)", s.pongs.Load(), limit, fakePingInterval)
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("connection ended: %v", c.Err())
	default:
	}
}

// A server that stops pinging is gone: the client ends the connection with
// ErrPingTimeout after pingInterval + pingTimeout.
func TestEIO4PingTimeout(t *testing.T) {
	s := newRawEIO4ServerWith(t, `"pingInterval":100,"pingTimeout":100`, true, nil, nil)
	start := time.Now()
	c := dial4(t, s.url)
	defer c.Close()
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrPingTimeout) {
		t.Fatalf("Err = %v, want ErrPingTimeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("ping timeout after %v, before pingInterval + pingTimeout (200ms)", d)
	}
}

// Binary events and acks are not supported: they, and the attachment
// frames that follow a binary event, are skipped, and the events around
// them arrive.
func TestEIO4BinaryAndAcksSkipped(t *testing.T) {
	s := newRawEIO4Server(t, nil, func(ctx context.Context, c *websocket.Conn) {
		_ = c.Write(ctx, websocket.MessageText, []byte(`42["first"]`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`451-["bin",{"_placeholder":true,"num":0}]`))
		_ = c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
		_ = c.Write(ctx, websocket.MessageText, []byte(`4312["ack"]`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`461-12[{"_placeholder":true,"num":0}]`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`42/other,["elsewhere"]`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`42["second",1]`))
	})
	c := dial4(t, s.url)
	defer c.Close()
	for _, want := range []string{"first", "second"} {
		if ev := recvEvent(t, c); ev.Name != want {
			t.Fatalf("got %q, want %q", ev.Name, want)
		}
	}
	if n := skippedFrames(c); n != 5 {
		t.Fatalf("skipped %d frames, want 5", n)
	}
}

// An event larger than the server's maxPayload would make the server drop
// the connection: Emit refuses it, and the connection stays usable.
func TestEIO4EmitOverMaxPayload(t *testing.T) {
	s := startEIO4Server(t, "")
	c := dial4(t, s.url)
	defer c.Close()
	err := c.Emit(context.Background(), "hello", strings.Repeat("a", 1_000_000))
	if err == nil || !strings.Contains(err.Error(), "maxPayload") {
		t.Fatalf("Emit of 1 MB = %v, want a maxPayload error", err)
	}
	if err := c.Emit(context.Background(), "hello", "small"); err != nil {
		t.Fatal(err)
	}
	if ev := recvEvent(t, c); ev.Name != "reply" {
		t.Fatalf("got %+v", ev)
	}
}

// Packets a server sends on an established connection that end it.
func TestEIO4ServerEnds(t *testing.T) {
	for _, tc := range []struct {
		frame string
		want  error
	}{
		{"1", ErrServerDisconnect},
		{"41", ErrServerDisconnect},
		{`44{"message":"session expired"}`, ErrServerError},
	} {
		t.Run(tc.frame, func(t *testing.T) {
			s := newRawEIO4Server(t, nil, func(ctx context.Context, c *websocket.Conn) {
				_ = c.Write(ctx, websocket.MessageText, []byte(tc.frame))
			})
			c := dial4(t, s.url)
			defer c.Close()
			waitDone(t, c)
			if err := c.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("Err = %v, want %v", err, tc.want)
			}
		})
	}
}

// A Socket.IO 2 server answers the CONNECT without a sid: the dial fails
// with a hint to use EIO 3.
func TestEIO4AgainstSocketIO2(t *testing.T) {
	s := newEIO3Server(t, func(s *eio3Server) { s.anyEIO = true })
	_, err := Dial(context.Background(), Options{URL: s.url, EIO: 4, ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "EIO 3") {
		t.Fatalf("err = %v, want ErrHandshake with a hint", err)
	}
}
