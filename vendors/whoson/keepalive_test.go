package whoson

import (
	"context"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// A store slower than the ping interval does not cost the chat its
// socket: the chat's one goroutine, waiting for the sink, cannot read the
// pong, and that says nothing about the socket. The chat goes on, on the
// same socket, once the store answers.
func TestSlowSinkKeepsSocket(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "Hello", Reply: echo}, nil) // pings every 250ms
	release := make(chan struct{})
	h.sink.mu.Lock()
	h.sink.onEvent = func(e connector.Event) {
		if e.Type == connector.EventText && e.Text == "Hello" {
			<-release
		}
	}
	h.sink.mu.Unlock()
	c := conversation(connector.Profile{})
	h.open(c)
	waitFor(t, "a ping unanswered while the sink waits", func() bool {
		return h.v.keep.unread.Load() > 0 || h.logs.FilterMessageSnippet("whoson ping failed").Len() > 0
	})
	close(release)

	h.send(c, 1, "hi")
	h.sink.waitText(t, "echo: hi")
	for _, msg := range []string{"whoson ping failed", "connection lost", "resumed on a new socket"} {
		if n := h.logs.FilterMessageSnippet(msg).Len(); n > 0 {
			t.Errorf("%d log lines %q: the socket was dropped", n, msg)
		}
	}
	if chats := h.srv.Chats(); len(chats) != 1 {
		t.Errorf("chats %+v, want the one", chats)
	}
}

// The keepalive drops every socket however it ends, also when the vendor
// stops just as pings are due (the group then refuses their goroutines):
// the chats' readers wait for that, and Stop for them.
func TestKeepaliveStoppingDropsSockets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	g := connector.NewGroup()
	k := newKeepalive(10*time.Millisecond, g)
	c, err := h.v.dial(ctx(t), h.v.log)
	if err != nil {
		t.Fatal(err)
	}
	h.v.keep.remove(c)
	c.keep = k
	k.conns[c] = &pingState{} // due at once
	if err := g.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	k.run(context.Background()) // its context not done: the refused ping ends it
	select {
	case <-c.closing:
	default:
		t.Error("the socket is still open")
	}
	if n := len(k.slots); n != 0 {
		t.Errorf("%d ping slots still taken", n)
	}
	if k.add(c) {
		t.Error("a socket was taken after the keepalive ended")
	}
}
