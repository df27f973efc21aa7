package whoson

import (
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// A store slower than the ping interval does not cost the chat its
// socket: while the sink keeps an event, the chat's reader goes on reading
// the socket, so the keepalive's pings are answered all along. The chat
// goes on, on the same socket, once the store answers.
func TestSlowSinkKeepsSocket(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "Hello", Reply: echo}, nil) // pings every 250ms
	blocked, release := make(chan struct{}), make(chan struct{})
	h.sink.mu.Lock()
	h.sink.onEvent = func(e connector.Event) {
		if e.Type == connector.EventText && e.Text == "Hello" {
			close(blocked)
			<-release
		}
	}
	h.sink.mu.Unlock()
	c := conversation(connector.Profile{})
	h.open(c)
	<-blocked
	h.v.mu.Lock()
	s := h.v.sessions[c.ID]
	h.v.mu.Unlock()
	sock, _ := s.current()
	pinged := sock.Pings()
	waitFor(t, "three pings while the sink waits", func() bool { return sock.Pings() >= pinged+3 })
	close(release)
	if n := h.v.keep.Unread(); n > 0 {
		t.Errorf("%d pings unanswered while the sink waited: the reader stopped reading", n)
	}

	h.send(c, 1, "hi")
	h.sink.waitText(t, "echo: hi")
	for _, msg := range []string{"ping failed", "connection lost", "resumed on a new socket"} {
		if n := h.logs.FilterMessageSnippet(msg).Len(); n > 0 {
			t.Errorf("%d log lines %q: the socket was dropped", n, msg)
		}
	}
	if chats := h.srv.Chats(); len(chats) != 1 {
		t.Errorf("chats %+v, want the one", chats)
	}
}
