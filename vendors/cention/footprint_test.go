package cention

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock/wsocktest"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

// An idle live chat costs the process one goroutine, its socket's reader:
// no pinger per socket (one keepalive per vendor pings them all), and the
// frames' decoding and dispatch run on goroutines that end once the frames
// are handed over.
func TestIdleChatGoroutines(t *testing.T) {
	const chats = 20
	h := newHarness(t, centiontest.Config{Agent: &centiontest.Agent{Name: "Alice", Greeting: "Hello"}}, nil)
	before := adapterGoroutines()
	for range chats {
		c := h.conv()
		h.open(c)
		h.sink.waitText(t, c.ID, "Hello")
	}
	// The keepalive's one goroutine comes with the first socket.
	want := before + chats + 1
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := adapterGoroutines()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the adapter for %d idle chats (%d before), want at most one a chat and the keepalive",
				n, chats, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// adapterGoroutines counts the goroutines running this package's code
// (the fake's are in centiontest, and not counted), but the vendor's
// canchat probe and the tests' own.
func adapterGoroutines() int {
	return wsocktest.Goroutines(func(g string) bool {
		return strings.Contains(g, "/vendors/cention.") && !strings.Contains(g, "probeLoop") && !strings.Contains(g, "testing.")
	})
}

// An idle socket holds little heap: no read or write buffer of the
// library's for its life (a small read buffer only; write buffers and frame
// buffers come from pools for the time of one frame).
func TestIdleSocketHeap(t *testing.T) {
	const sockets, maxPerSocket = 300, 2560
	addr := wsocktest.BareServer(t)
	keys := baseKeys("http://" + addr + "/s/demo")
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Sink: newSink()}) // not started: no canchat
	if err != nil {
		t.Fatal(err)
	}
	defer stopVendor(t, v)
	conns := make([]*conn, 0, sockets)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dctx := ctxFor(t)
	before := wsocktest.HeapInUse()
	for range sockets {
		c, err := v.dial(dctx, "connectord-heap", v.log)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	per := float64(wsocktest.HeapInUse()-before) / sockets
	t.Logf("%.0f bytes of heap per idle socket", per)
	if per > maxPerSocket {
		t.Errorf("an idle socket holds %.0f bytes of heap, want at most %d", per, maxPerSocket)
	}
	runtime.KeepAlive(conns)
}

// A store slower than the ping interval does not cost the chat its socket:
// while the sink keeps an event, the chat's reader goes on reading, so the
// keepalive's pings are answered all along, and a line sent meanwhile is
// confirmed. The chat goes on, on the same socket, once the store answers.
func TestSlowSinkKeepsSocket(t *testing.T) {
	h := newHarness(t, centiontest.Config{Agent: &centiontest.Agent{Name: "Alice", Greeting: "Hello"}},
		func(keys map[string]string) { keys["ping_interval"] = `"50ms"` })
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.sink.mu.Lock()
	h.sink.onEvent = func(e connector.Event) {
		if e.Type == connector.EventText && e.Text == "Hello" {
			once.Do(func() { close(blocked) })
			<-release
		}
	}
	h.sink.mu.Unlock()
	c := h.conv()
	opened := make(chan error, 1)
	go func() {
		_, err := h.v.Open(ctxFor(t), c)
		opened <- err
	}()
	<-blocked
	if err := <-opened; err != nil {
		close(release)
		t.Fatal(err)
	}
	s := h.v.session(c.ID)
	sock, err := s.waitReady(ctxFor(t))
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	pinged := sock.Pings()
	deadline := time.Now().Add(10 * time.Second)
	for sock.Pings() < pinged+3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sendErr := h.send(c, 1, "while the store waits") // confirmed by the reader's side
	close(release)
	if sendErr != nil {
		t.Fatalf("send while the store waited: %v", sendErr)
	}
	if got := sock.Pings(); got < pinged+3 {
		t.Fatalf("%d pings while the sink waited, want 3", got-pinged)
	}
	if n := h.v.keep.Unread(); n > 0 {
		t.Errorf("%d pings unanswered while the sink waited: the reader stopped reading", n)
	}
	h.sink.waitType(t, c.ID, connector.EventText)
	if now, _ := s.waitReady(ctxFor(t)); now != sock {
		t.Error("the chat is on another socket: the first was dropped")
	}
}

// A server that floods a chat while the store is slow is read only as far
// as the bound of frames waiting for their dispatch (frameQueue): the
// reader then waits, so the flood waits in the socket's buffers, not in
// memory; every line arrives, in order, once the store answers.
func TestFloodWaitsForSlowSink(t *testing.T) {
	const flood = 4 * frameQueue
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	s := h.v.session(c.ID)
	sock, err := s.waitReady(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	base := settled(sock)
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.sink.mu.Lock()
	h.sink.onEvent = func(e connector.Event) {
		if e.Type == connector.EventText {
			once.Do(func() { close(blocked) })
			<-release
		}
	}
	h.sink.mu.Unlock()
	tok := h.token(c)
	var want []string
	for i := range flood {
		line := "line " + string(rune('A'+i))
		want = append(want, line)
		if err := h.srv.Say(tok, line); err != nil {
			t.Fatal(err)
		}
	}
	<-blocked
	reads := settled(sock)
	close(release)
	// One frame in the dispatch, one in the decoder, the queue full.
	if frames := (reads - base) / 2; frames > frameQueue+2 {
		t.Errorf("%d frames read while the store waited, want at most %d", frames, frameQueue+2)
	}
	for _, line := range want {
		h.sink.waitText(t, c.ID, line)
	}
	if got := h.sink.texts(c.ID); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("texts %q, want %q", got, want)
	}
}

// settled returns the socket's count of reads once it stops moving (the
// reader idle in Read, or held up by a full queue).
func settled(c *conn) uint64 {
	reads := c.Reads()
	for {
		time.Sleep(50 * time.Millisecond)
		now := c.Reads()
		if now == reads {
			return now
		}
		reads = now
	}
}

// A socket whose reader waits in Read and whose pings go unanswered for a
// ping interval (the network died without a reset) is dropped by the
// vendor's keepalive, which ends the read.
func TestKeepaliveDropsDeadSocket(t *testing.T) {
	keys := baseKeys("http://" + wsocktest.BareServer(t) + "/s/demo")
	keys["ping_interval"] = `"50ms"`
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	defer stopVendor(t, v)
	c, err := v.dial(ctxFor(t), "connectord-dead", v.log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		read <- err
	}()
	select {
	case err := <-read:
		if c.Pings() == 0 {
			t.Errorf("the read ended (%v) without a ping", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the socket is still open")
	}
}

// Stop drops every socket from the keepalive, which may come before the
// chats' contexts end: no chat takes that for a drop and dials again.
func TestStopDoesNotReconnect(t *testing.T) {
	const chats = 30
	h := newHarness(t, centiontest.Config{}, func(keys map[string]string) {
		keys["reconnect_initial"] = `"1ms"`
		keys["reconnect_max"] = `"2ms"`
	})
	for range chats {
		h.open(h.conv())
	}
	stopVendor(t, h.v)
	for _, ch := range h.srv.Chats() {
		if ch.Sockets != 1 {
			t.Errorf("chat %s had %d sockets, want 1: it reconnected during Stop", ch.Token, ch.Sockets)
		}
	}
}
