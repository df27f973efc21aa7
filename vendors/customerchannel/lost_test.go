package customerchannel

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

// lostConfig makes a join's answer due within 500 ms.
var lostConfig = map[string]any{"send_confirm_timeout": "500ms", "reconnect_initial": "50ms"}

// eventsOf returns the recorded events of type typ.
func eventsOf(r *recorder, typ connector.EventType) []connector.Event {
	ev, _ := r.all()
	var out []connector.Event
	for _, e := range ev {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// customerLines returns the texts the server holds from the customer of chat.
func customerLines(t *testing.T, sim *customerchanneltest.Server, chat string) []string {
	t.Helper()
	st, err := sim.State(simCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	c := st.Conversation(chat)
	if c == nil {
		return nil
	}
	var out []string
	for _, m := range c.Messages {
		if m.From.ID == c.CustomerParticipantID {
			out = append(out, m.Text)
		}
	}
	return out
}

// TestLostChatOnReconnect: the server forgets a live chat (a restart that
// kept nothing) and the connection drops; the rejoin goes unanswered, and
// the adapter reports EventLost once (not an end). A Send with the old
// session is then a plain retryable error (the core was told already), and
// the conversation's next Open is a new chat with another requestId, which
// takes the context line and the customer's line. Before the fix the chat
// stayed carried for ever: no event, and every Send timed out.
func TestLostChatOnReconnect(t *testing.T) { bothGenerations(t, testLostChatOnReconnect) }

func testLostChatOnReconnect(t *testing.T, eio int) {
	sim := customerchanneltest.StartTest(t, eio)
	ctx := simCtx(t)
	if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true}); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, sim.URL, eio, lostConfig)
	waitFor(t, "connected", func() bool { return h.v.Health().Ready })
	conv := conversation()
	raw, err := h.v.Open(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	conv.Session = raw
	first := simSession(t, conv).ConversationID
	waitFor(t, "the agent", func() bool { return len(eventsOf(h.rec, connector.EventJoined)) == 1 })

	if err := sim.Forget(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := sim.Drop(ctx, "close"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "EventLost", func() bool { return len(eventsOf(h.rec, connector.EventLost)) == 1 })
	if lost := eventsOf(h.rec, connector.EventLost); lost[0].ConversationID != conv.ID {
		t.Errorf("EventLost %+v, want conversation %d", lost[0], conv.ID)
	}
	if ended := eventsOf(h.rec, connector.EventEnded); len(ended) != 0 {
		t.Errorf("a lost chat was reported ended: %+v", ended)
	}

	err = h.v.Send(ctx, conv, &connector.Message{ID: 2, Text: "still there?"})
	if err == nil || errors.Is(err, connector.ErrChatLost) || connector.IsPermanent(err) {
		t.Errorf("Send on the lost chat after EventLost: %v; want a plain retryable error (reported once)", err)
	}

	again := conversation()
	raw, err = h.v.Open(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	again.Session = raw
	second := simSession(t, again).ConversationID
	if second == first {
		t.Fatalf("the new Open got the lost chat %s back", first)
	}
	st, err := sim.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Inits) != 2 || st.Inits[0]["requestId"] == st.Inits[1]["requestId"] {
		t.Errorf("inits %+v: want two with different requestIds", st.Inits)
	}
	for _, m := range []*connector.Message{
		{ID: 3, Kind: connector.KindContext, Text: "Reconnected: Ann Lee, sms; last line: still there?"},
		{ID: 2, Text: "still there?"},
	} {
		if err := h.v.Send(ctx, again, m); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Reconnected: Ann Lee, sms; last line: still there?", "still there?"}
	if got := customerLines(t, sim, second); !slices.Equal(got, want) {
		t.Errorf("the new chat holds %q, want %q", got, want)
	}
	waitFor(t, "the new agent's answer", func() bool { return hasText(h.rec, "echo: still there?") })
	if n := len(eventsOf(h.rec, connector.EventLost)); n != 1 {
		t.Errorf("%d EventLost, want 1", n)
	}
}

// TestResumeFindsChatLost: after a restart of ours and of the server's, the
// stored session names a chat the server forgot: Resume returns an error
// wrapping connector.ErrChatLost (and no event: the core hears it once).
// Before the fix Resume returned nil and the conversation hung.
func TestResumeFindsChatLost(t *testing.T) { bothGenerations(t, testResumeFindsChatLost) }

func testResumeFindsChatLost(t *testing.T, eio int) {
	sim := customerchanneltest.StartTest(t, eio)
	ctx := simCtx(t)
	if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true}); err != nil {
		t.Fatal(err)
	}
	a := newHarnessWith(t, sim.URL, eio, lostConfig)
	waitFor(t, "connected", func() bool { return a.v.Health().Ready })
	conv := conversation()
	raw, err := a.v.Open(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	conv.Session, conv.State, conv.Agent = raw, connector.StateActive, "Dee"
	waitFor(t, "the agent", func() bool { return len(eventsOf(a.rec, connector.EventJoined)) == 1 })
	if err := a.v.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.Forget(ctx, simSession(t, conv).ConversationID); err != nil {
		t.Fatal(err)
	}

	b := newHarnessWith(t, sim.URL, eio, lostConfig)
	waitFor(t, "connected", func() bool { return b.v.Health().Ready })
	err = b.v.Resume(ctx, conv)
	if !errors.Is(err, connector.ErrChatLost) {
		t.Fatalf("Resume of a chat the server forgot: %v; want ErrChatLost", err)
	}
	if lost := eventsOf(b.rec, connector.EventLost); len(lost) != 0 {
		t.Errorf("EventLost %+v besides Resume's error", lost)
	}
	conv.Session, conv.Agent = nil, ""
	raw, err = b.v.Open(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	conv.Session = raw
	if err := b.v.Send(ctx, conv, &connector.Message{ID: 4, Text: "hello again"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new agent's answer", func() bool { return hasText(b.rec, "echo: hello again") })
}

// answered reports whether v has read a history of chat (a join's answer).
func answered(v *Vendor, chat string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	l, ok := v.live[chat]
	return ok && l.lines.histGen != 0
}

// TestSendReportsLostChat: a line out on a connection that died waits for
// the rejoin's history; when the rejoin goes unanswered, that Send returns
// ErrChatLost (the verdict goes to it, not to an event), and the next Send
// of the chat a plain retryable error. The line is not emitted on the new
// connection.
func TestSendReportsLostChat(t *testing.T) {
	h := newHarnessWith(t, "", 0, map[string]any{"send_confirm_timeout": "300ms"})
	ctx := simCtx(t)
	conv, c := h.open()
	c.server(evConversation, `{"conversation":{"id":"conv-1"},"messages":[]}`)
	waitFor(t, "the join answered", func() bool { return answered(h.v, "conv-1") })
	c.mu.Lock()
	c.silent = true
	c.mu.Unlock()
	m := &connector.Message{ID: 3, Text: "line"}
	if err := h.v.Send(ctx, conv, m); err == nil || errors.Is(err, connector.ErrChatLost) {
		t.Fatalf("Send without an echo: %v; want a timeout", err)
	}
	c.Close()
	c2 := h.client()
	waitFor(t, "rejoined", func() bool { return len(c2.names()) == 2 })
	err := h.v.Send(ctx, conv, m)
	if !errors.Is(err, connector.ErrChatLost) {
		t.Fatalf("Send after an unanswered rejoin: %v; want ErrChatLost", err)
	}
	if lost := eventsOf(h.rec, connector.EventLost); len(lost) != 0 {
		t.Errorf("EventLost %+v besides Send's error", lost)
	}
	if err := h.v.Send(ctx, conv, m); err == nil || errors.Is(err, connector.ErrChatLost) {
		t.Errorf("second Send on the lost chat: %v; want a plain retryable error", err)
	}
	if n := sendEvents(c2); n != 0 {
		t.Errorf("the line was emitted %d times on the new connection", n)
	}
}

// TestNeverAnsweredChatNotLost: a server that does not answer joins with
// conversationInfo at all must not cost a new chat per reconnect: a chat
// the server never answered (opened by this process) is not taken for lost
// when its join goes unanswered.
func TestNeverAnsweredChatNotLost(t *testing.T) {
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(context.Context, connector.Event) error { return nil }}
	v, _, logs := startObserved(t, sink, "send_confirm_timeout = \"100ms\"\n", false)
	waitFor(t, "the verdict", func() bool {
		return logs.FilterMessageSnippet("a chat it never answered is not taken for lost").Len() > 0
	})
	if ev, _ := sink.all(); len(ev) != 0 {
		t.Errorf("events %+v", ev)
	}
	v.mu.Lock()
	_, live := v.live["conv-1"]
	v.mu.Unlock()
	if !live {
		t.Error("the chat is no longer carried")
	}
}

// TestStalledReaderIsNotSilence: the reader held by the core's store longer
// than the answer may take is not the server's silence: the join's answer
// waiting behind it is read, and the chat is not lost. Before the idle clock
// the timer, already past, raced the waiting answer.
func TestStalledReaderIsNotSilence(t *testing.T) {
	const timeout = 200 * time.Millisecond
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(ctx context.Context, e connector.Event) error {
		if e.SourceID == "slow" {
			time.Sleep(6 * timeout) // a store that takes its time
		}
		return nil
	}}
	_, c, logs := startObserved(t, sink, "send_confirm_timeout = \"200ms\"\n", true)
	c.server(evArrived, line("slow", "committed slowly"))
	<-sink.entered
	c.server(evConversation, `{"conversation":{"id":"conv-1"},"messages":[]}`)
	c.server(evArrived, line("after", "next"))
	waitFor(t, "the line after the answer", func() bool { ev, _ := sink.all(); return len(ev) == 2 })
	if ev, _ := sink.all(); ev[0].Type == connector.EventLost || ev[1].Type == connector.EventLost {
		t.Errorf("events %+v: the stalled reader was taken for the server's silence", ev)
	}
	if n := logs.FilterMessageSnippet("no longer has the chat").Len(); n != 0 {
		t.Errorf("lost verdicts logged: %d", n)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
		t.Errorf("warnings: %+v", logs.FilterLevelExact(zapcore.WarnLevel).All())
	}
}

// TestContextLineSentAsCustomerLine: KindContext goes to the agent as a
// ChatMessage from the customer, confirmed like any line.
func TestContextLineSentAsCustomerLine(t *testing.T) {
	h := newHarness(t)
	conv, c := h.open()
	m := &connector.Message{ID: 9, Kind: connector.KindContext, Text: "Customer +15557654321 on sms, reconnected"}
	if err := h.v.Send(context.Background(), conv, m); err != nil {
		t.Fatal(err)
	}
	sent := c.sent(t, 0)
	if sent.Type != typeChat || sent.From.ID != "cust-1" || sent.Text != m.Text || sent.ID != "connectord-9" {
		t.Errorf("sendMessage = %+v", sent)
	}
}
