package connector_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// A send that panics is retried, then failed alone after three panics: the
// daemon lives on, the lines after it go out, other conversations never wait.
func TestPanickingSendFailsOnlyThatMessage(t *testing.T) {
	var panics atomic.Int32
	h := newHarness(t, func(h *harness) {
		h.channel.fail = func(m *connector.Message) error {
			if m.Text == "boom" {
				panics.Add(1)
				panic("renderer blew up")
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventText, Text: "boom", SourceID: "L1"})
	h.event(alice, connector.Event{Type: connector.EventText, Text: "fine", SourceID: "L2"})
	got := texts(h.toUser.wait(t, 2, 5*time.Second))
	if got[1] != "text:fine" {
		t.Fatalf("to customer = %q, want the line after the poison one", got)
	}
	if n := panics.Load(); n != 3 {
		t.Errorf("send panicked %d times, want 3 before giving up", n)
	}
	m := findMessage(t, h, "boom")
	if m.State != connector.DeliveryFailed || !strings.Contains(m.Reason, "panicked 3 times") {
		t.Errorf("poison message = %s %q, want failed after 3 panics", m.State, m.Reason)
	}
	if c := h.openConversation(alice); c.State == connector.StateEnded {
		t.Errorf("conversation ended by one poison line")
	}
}

// A message whose send killed the process three times (the count kept in the
// store) is failed at the next start without being sent again.
func TestPoisonCountSurvivesCrashes(t *testing.T) {
	var sends atomic.Int32
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			sends.Add(1)
			return errors.New("vendor down") // keeps it in the outbox
		}
	})
	h.inbound(alice, "SM1", "kills the daemon")
	waitFor(t, "a send attempt", func() bool { return sends.Load() > 0 })
	h.stop()
	// Three processes started sending it and died before the send returned.
	st, err := sqlite.Open(context.Background(), h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	m := outboxMessage(t, st)
	for range 3 {
		if _, err := st.CountAttempt(context.Background(), m.ID); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	sends.Store(0)
	h.start()
	waitFor(t, "the poison message failed", func() bool {
		return findMessage(t, h, "kills the daemon").State == connector.DeliveryFailed
	})
	if n := sends.Load(); n != 0 {
		t.Errorf("poison message sent %d times after the restart, want 0", n)
	}
}

// A recovered message whose send returns (here with an error) has its crash
// count cleared: restarts and deploys do not add up to "poison".
func TestPoisonCountClearedWhenSendReturns(t *testing.T) {
	var sends atomic.Int32
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error { sends.Add(1); return errors.New("vendor down") }
	})
	h.inbound(alice, "SM1", "patient")
	for range 5 { // five deploys while the vendor is down
		waitFor(t, "a send attempt", func() bool { return sends.Load() > 0 })
		sends.Store(0)
		h.restart()
	}
	waitFor(t, "a send attempt", func() bool { return sends.Load() > 0 })
	if m := findMessage(t, h, "patient"); m.State != connector.DeliveryStored {
		t.Fatalf("message %s %q after deploys, want still stored", m.State, m.Reason)
	}
	h.stop()
	st, err := sqlite.Open(context.Background(), h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountAttempt(context.Background(), outboxMessage(t, st).ID); err != nil || n != 1 {
		t.Errorf("attempt count after five drained restarts: %d, %v; want 1 (cleared each time, this one)", n, err)
	}
}

// A vendor that loops lines cannot flood the customer: past the burst, the
// excess is held in the outbox, none dropped, and goes out in order. The
// rate is an hour so that the held line cannot leave during the test: what
// the customer has when the router stops is exactly the burst.
func TestCustomerRateHoldsTheExcess(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.conv.CustomerRate, h.conv.CustomerBurst = time.Hour, 3
	})
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.toUser.wait(t, 1, 5*time.Second) // "queued" takes one token
	var want []string
	for i := range 12 {
		text := fmt.Sprintf("loop %02d", i)
		want = append(want, "text:"+text)
		h.event(alice, connector.Event{Type: connector.EventText, Text: text, SourceID: text})
	}
	// 2 tokens left from the burst; the third line waits an hour.
	h.toUser.wait(t, 3, 5*time.Second)
	h.stop()
	if got := texts(h.toUser.all())[1:]; fmt.Sprint(got) != fmt.Sprint(want[:2]) {
		t.Fatalf("to customer within the burst = %q, want %q", got, want[:2])
	}
	// Nothing was dropped: without the limit, the rest goes out, in order.
	h.conv.CustomerRate = 0
	h.start()
	if got := texts(h.toUser.wait(t, 13, 10*time.Second))[1:]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("to customer = %q, want %q", got, want)
	}
}

// Past conversation.max_open, a new conversation waits with a notice to
// its customer, and is opened once a slot frees.
func TestMaxOpenHoldsNewConversations(t *testing.T) {

	h := newHarness(t, func(h *harness) { h.conv.MaxOpen = 1 })
	h.inbound(alice, "SM1", "first")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.inbound(bob, "SM2", "second")
	waitFor(t, "bob told to wait", func() bool {
		for _, s := range h.toUser.all() {
			if s.To == bob && s.Text == defaults.Busy {
				return true
			}
		}
		return false
	})
	if n := len(h.toAgent.all()); n != 1 {
		t.Fatalf("vendor got %d lines while at the cap, want 1", n)
	}
	h.event(alice, connector.Event{Type: connector.EventEnded})
	got := h.toAgent.wait(t, 2, 15*time.Second)
	if got[1].To != bob || got[1].Text != "second" {
		t.Errorf("after a slot freed the vendor got %+v, want bob's line", got[1])
	}
}

// An agent line longer than max_agent_line is cut, with a mark, before it is
// stored: it is rendered and split at send time.
func TestAgentLineCapped(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.conv.MaxAgentLine = 1000 })
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	long := strings.Repeat("é", 5000) // 10,000 bytes, two per character
	h.event(alice, connector.Event{Type: connector.EventText, Text: long, SourceID: "L1"})
	got := h.toUser.wait(t, 2, 5*time.Second)[1].Text
	if len(got) > 1000 || !strings.HasSuffix(got, "message cut: too long]") || !strings.HasPrefix(got, "éé") {
		t.Errorf("capped line: %d bytes, ends %q", len(got), got[max(0, len(got)-30):])
	}
	if !strings.HasPrefix(strings.TrimSuffix(got, " [… message cut: too long]"), strings.Repeat("é", 480)) {
		t.Errorf("cut inside a character: %q", got[:20])
	}
}

func findMessage(t *testing.T, h *harness, text string) *connector.Message {
	t.Helper()
	ctx := context.Background()
	for id := int64(1); id < 10; id++ {
		ms, err := h.store.Messages(ctx, id)
		if err != nil {
			continue
		}
		for _, m := range ms {
			if m.Text == text {
				return m
			}
		}
	}
	t.Fatalf("no message %q", text)
	return nil
}

func outboxMessage(t *testing.T, st *sqlite.Store) *connector.Message {
	t.Helper()
	out, err := st.Outbox(context.Background())
	if err != nil || len(out) != 1 {
		t.Fatalf("outbox = %v, %v; want one message", out, err)
	}
	return out[0]
}

// A queue event without a position or words of its own says nothing rather
// than "You are number 0 in the queue".
func TestQueueWithoutPositionSaysNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventQueue})
	h.event(alice, connector.Event{Type: connector.EventQueue, Position: 2})
	got := texts(h.toUser.wait(t, 2, 5*time.Second))
	h.idle()
	want := []string{"notice:" + defaults.Queued, "notice:You are number 2 in the queue."}
	if fmt.Sprint(texts(h.toUser.all())) != fmt.Sprint(want) {
		t.Errorf("to customer = %q, want %q", got, want)
	}
}

// panicStore panics where a write would happen.
type panicStore struct{ connector.Store }

func (panicStore) RecordInbound(context.Context, connector.Inbound, string) (connector.InboundResult, error) {
	panic("store bug")
}

func (panicStore) Conversation(context.Context, int64) (*connector.Conversation, error) {
	panic("store bug")
}

// A panic inside the core while an adapter hands it a message or an event
// becomes that call's error: the adapter refuses the one message (its source
// retries) and the process lives on.
func TestPanicInCoreCallIsAnError(t *testing.T) {
	r, err := connector.NewRouter(connector.RouterConfig{Store: panicStore{}, Logger: zap.NewNop(),
		Conversation: quickConversation(), Notices: defaults,
		VendorFor: func(string) (string, bool) { return "whoson.sales", true }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Receive(ctx, connector.Inbound{Channel: "sms.main", Customer: alice, Text: "x", SourceID: "SM1"}); err == nil {
		t.Error("Receive: no error from a panicking store")
	}
	if err := r.Event(ctx, connector.Event{ConversationID: 1, Type: connector.EventText, Text: "x"}); err == nil {
		t.Error("Event: no error from a panicking store")
	}
}

// renderingChannel is fakeChannel with a markup of its own: HTML becomes
// plain text with the tags dropped.
type renderingChannel struct{ *fakeChannel }

func (renderingChannel) Render(text string, f connector.Format) (string, connector.Format) {
	r := strings.NewReplacer("<b>", "", "</b>", "", "<p>", "", "</p>", "")
	return r.Replace(text), connector.FormatPlain
}

// A rich agent line is rendered for the channel before it is stored, and
// then split once: each part is stored and sent on its own.
func TestRenderThenSplit(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.channel.max = 10
		h.asChannel = renderingChannel{h.channel}
	})
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventText, Format: connector.FormatHTML,
		Text: "<p><b>0123456789</b>abcdefghij</p>", SourceID: "L1"})
	h.idle()
	var got []string
	for _, s := range texts(h.toUser.all()) {
		if strings.HasPrefix(s, "text:") {
			got = append(got, s)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"text:0123456789", "text:abcdefghij"}) {
		t.Errorf("to customer = %q, want the rendered text in two parts", got)
	}
	if m := findMessage(t, h, "abcdefghij"); m.Format != connector.FormatPlain || m.SourceID != "L1#2" {
		t.Errorf("stored part: format %q source %q, want plain L1#2", m.Format, m.SourceID)
	}
}
