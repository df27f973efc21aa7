package customerchannel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

// TestLostLineSentAgainOnNextConnection: the server takes the sendMessage
// frame and dies (its connection destroyed) without storing or echoing it.
// Send must not report success; the core's next Send re-emits the line on
// the next connection, and the server (the agent) gets it exactly once.
// Before the fix Send returned nil once the frame was written and the
// retried Send was never emitted: the agent never got the line.
func TestLostLineSentAgainOnNextConnection(t *testing.T) { bothGenerations(t, testLostLine) }

func testLostLine(t *testing.T, eio int) {
	sim := customerchanneltest.StartTest(t, eio)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true}); err != nil {
		t.Fatal(err)
	}
	h := newHarnessAt(t, sim.URL, eio)
	waitFor(t, "connected", func() bool { return h.v.Health().Ready })
	conv := conversation()
	raw, err := h.v.Open(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	conv.Session = raw
	waitFor(t, "the agent", func() bool { ev, _ := h.rec.all(); return len(ev) >= 1 })
	if err := sim.Lose(ctx, 1); err != nil {
		t.Fatal(err)
	}
	m := &connector.Message{ID: 5, Text: "lost once"}
	if err := h.v.Send(ctx, conv, m); err == nil {
		t.Errorf("Send of a line the server lost returned nil")
	} else if connector.IsPermanent(err) {
		t.Errorf("Send of a lost line: %v; want a retryable error", err)
	}
	if err := sendWhenUp(ctx, h.v, conv, m); err != nil { // the core's retries
		t.Fatal(err)
	}
	if err := h.v.Send(ctx, conv, m); err != nil { // once more: already confirmed
		t.Fatal(err)
	}
	err = sim.WaitFor(ctx, func(st customerchanneltest.State) bool { return timesStored(st, "lost once") >= 1 })
	if err != nil {
		t.Fatalf("the server never got the line: %v", err)
	}
	waitFor(t, "the agent's answer", func() bool { return hasText(h.rec, "echo: lost once") })
	// Every copy goes out inside a Send, and a Send that returns nil has
	// seen its copy stored (the echo follows the store): once the last
	// Send returned, a duplicate would be in the state already.
	st, err := sim.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := timesStored(st, "lost once"); n != 1 {
		t.Errorf("the server holds the line %d times, want 1", n)
	}
}

// waiters is how many Send or Resume calls wait on chat.
func waiters(v *Vendor, chat string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l, ok := v.live[chat]; ok {
		return l.waiters
	}
	return 0
}

func timesStored(st customerchanneltest.State, text string) int {
	n := 0
	for _, c := range st.Conversations {
		for _, m := range c.Messages {
			if m.Text == text {
				n++
			}
		}
	}
	return n
}

// sendEvents counts the sendMessage events c was given.
func sendEvents(c *fakeClient) int {
	n := 0
	for _, name := range c.names() {
		if name == evSend {
			n++
		}
	}
	return n
}

// TestUnconfirmedLineNotRepeatedOnSameConnection: a line out on a live
// connection is awaited, not emitted again, however often the core asks;
// once its echo comes, Send succeeds without emitting.
func TestUnconfirmedLineNotRepeatedOnSameConnection(t *testing.T) {
	h := newHarnessWith(t, "", 0, map[string]any{"send_confirm_timeout": "100ms"})
	conv, c := h.open()
	c.mu.Lock()
	c.silent = true
	c.mu.Unlock()
	m := &connector.Message{ID: 3, Text: "slow"}
	for range 2 {
		if err := h.v.Send(context.Background(), conv, m); err == nil || !strings.Contains(err.Error(), "not confirmed") {
			t.Fatalf("Send without an echo: %v; want a timeout", err)
		}
	}
	c.server(evArrived, `{"type":"ChatMessage","conversationId":"conv-1","id":"connectord-3","from":{"id":"cust-1","name":"Ann"},"text":"slow"}`)
	waitFor(t, "confirmed", func() bool { return h.v.Send(context.Background(), conv, m) == nil })
	if n := sendEvents(c); n != 1 {
		t.Errorf("sendMessage emitted %d times, want 1", n)
	}
}

// TestRejoinHistoryDecidesResend: a line out on a connection that died is
// emitted again only when the next connection's history does not have it.
func TestRejoinHistoryDecidesResend(t *testing.T) {
	for name, tc := range map[string]struct {
		history string
		resent  int
	}{
		"kept":  {`{"type":"ChatMessage","id":"connectord-3","from":{"id":"cust-1"},"text":"line"}`, 0},
		"lost":  {`{"type":"ChatMessage","id":"m9","from":{"id":"cust-1"},"text":"line"}`, 1},
		"agent": {`{"type":"ChatMessage","id":"m1","from":{"id":"a1","name":"Dee"},"text":"hi"}`, 1},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarnessWith(t, "", 0, map[string]any{"send_confirm_timeout": "500ms"})
			conv, c := h.open()
			c.mu.Lock()
			c.silent = true
			c.mu.Unlock()
			m := &connector.Message{ID: 3, Text: "line"}
			if err := h.v.Send(context.Background(), conv, m); err == nil {
				t.Fatal("Send without an echo returned nil")
			}
			c.Close() // the server died holding it
			c2 := h.client()
			waitFor(t, "rejoined", func() bool { return len(c2.names()) == 2 })
			done := make(chan error, 1)
			go func() { done <- h.v.Send(context.Background(), conv, m) }()
			waitFor(t, "Send waiting for the history", func() bool { return waiters(h.v, "conv-1") == 1 })
			if n := sendEvents(c2); n != 0 {
				t.Errorf("emitted again before the history came: %d", n)
			}
			c2.server(evConversation, `{"conversation":{"id":"conv-1"},"messages":[`+tc.history+`]}`)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Send did not return")
			}
			if n := sendEvents(c2); n != tc.resent {
				t.Errorf("emitted %d times on the new connection, want %d", n, tc.resent)
			}
		})
	}
}

// TestSendReturnsWhenConnectionDrops: the connection drops while Send waits
// for the echo: Send returns a retryable error at once.
func TestSendReturnsWhenConnectionDrops(t *testing.T) {
	h := newHarnessWith(t, "", 0, map[string]any{"send_confirm_timeout": "1m"})
	conv, c := h.open()
	c.mu.Lock()
	c.silent = true
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- h.v.Send(context.Background(), conv, &connector.Message{ID: 3, Text: "x"}) }()
	waitFor(t, "emitted", func() bool { return sendEvents(c) == 1 })
	c.Close()
	select {
	case err := <-done:
		if err == nil || connector.IsPermanent(err) {
			t.Errorf("Send after the drop: %v; want a retryable error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still waits after the connection dropped")
	}
}

// TestConfirmedRecordBounded: a conversation remembers the newest
// maxConfirmed confirmed ids, not every one.
func TestConfirmedRecordBounded(t *testing.T) {
	var ls lines
	for id := int64(1); id <= 3*maxConfirmed; id++ {
		ls.emitted(id, 1, "t")
		ls.confirm(id)
		ls.confirm(id)
	}
	if len(ls.confirmed) != maxConfirmed {
		t.Errorf("%d ids remembered, want %d", len(ls.confirmed), maxConfirmed)
	}
	if got := ls.next(3*maxConfirmed, 1); got != stepDone {
		t.Errorf("the newest line: step %d, want done", got)
	}
	if diff := cmp.Diff(int64(0), ls.pending); diff != "" {
		t.Errorf("pending after confirmation (-want +got):\n%s", diff)
	}
}

// TestRestartBetweenEmitAndEcho: the process that emitted a line stops
// before the core recorded it sent (a crash between the emit and the echo);
// the new process resumes the chat and the core sends the line again. The
// rejoin's history tells the new vendor whether the server has it: kept,
// it is not emitted again; lost with the server's connection, it is. Either
// way the agent sees it exactly once. Before Resume waited for the join's
// answer, the retried Send emitted before the history came: twice.
func TestRestartBetweenEmitAndEcho(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		for _, lost := range []bool{false, true} {
			t.Run(map[bool]string{false: "kept", true: "lost"}[lost], func(t *testing.T) { testRestartBetweenEmitAndEcho(t, eio, lost) })
		}
	})
}

func testRestartBetweenEmitAndEcho(t *testing.T, eio int, lost bool) {
	sim := customerchanneltest.StartTest(t, eio)
	ctx := simCtx(t)
	if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true}); err != nil {
		t.Fatal(err)
	}
	a := newHarnessAt(t, sim.URL, eio)
	waitFor(t, "connected", func() bool { return a.v.Health().Ready })
	conv := conversation()
	raw, err := a.v.Open(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	conv.Session, conv.State = raw, connector.StateActive
	waitFor(t, "the agent", func() bool { ev, _ := a.rec.all(); return len(ev) >= 1 })
	m := &connector.Message{ID: 5, Text: "exactly once"}
	if lost {
		if err := sim.Lose(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	// The emit; the core never learns how it ended: the process stops as
	// soon as the server has the line (or, lost, when the server drops the
	// connection holding it).
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !lost {
		go func() {
			_ = sim.WaitFor(sendCtx, func(st customerchanneltest.State) bool { return timesStored(st, m.Text) == 1 })
			cancel()
		}()
	}
	_ = a.v.Send(sendCtx, conv, m)
	if err := a.v.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	b := newHarnessAt(t, sim.URL, eio)
	waitFor(t, "connected", func() bool { return b.v.Health().Ready })
	if err := b.v.Resume(ctx, conv); err != nil {
		t.Fatal(err)
	}
	if err := sendWhenUp(ctx, b.v, conv, m); err != nil {
		t.Fatal(err)
	}
	// Send returned nil: the server confirmed the line, so a second copy
	// would be stored by now.
	st, err := sim.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := timesStored(st, m.Text); n != 1 {
		t.Errorf("the server holds the line %d times, want 1", n)
	}
}
