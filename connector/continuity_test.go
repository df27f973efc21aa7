package connector_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// resolvingChannel names <@U…> references on the way to the agent.
type resolvingChannel struct{ *fakeChannel }

func (resolvingChannel) Resolve(_ context.Context, text string) string {
	return strings.ReplaceAll(text, "<@U1>", "@Ann")
}

// A Resolver's names reach the agent; the stored line keeps the text as it
// came, so that the commit never waited for the remote side.
func TestResolverNamesOnTheWayToTheAgent(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.asChannel = resolvingChannel{h.channel} })
	h.inbound(alice, "SM1", "ask <@U1> please")
	got := texts(h.toAgent.wait(t, 1, 5*time.Second))
	if diff := cmp.Diff([]string{"text:ask @Ann please"}, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	h.idle()
	ms, err := h.store.Messages(context.Background(), h.openConversation(alice).ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Text != "ask <@U1> please" {
		t.Errorf("stored %+v, want the text as it came", ms)
	}
}

// gate makes a fake fail with a retryable error while it is closed.
type gate struct {
	mu     sync.Mutex
	closed bool
}

func (g *gate) set(closed bool) { g.mu.Lock(); g.closed = closed; g.mu.Unlock() }
func (g *gate) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("vendor unreachable")
	}
	return nil
}

// chatWithGate starts alice's conversation ("hello" reached the agent) on
// a vendor whose sends fail while the gate is closed.
func chatWithGate(t *testing.T) (*harness, *gate) {
	g := &gate{}
	h := newHarness(t, func(h *harness) { h.vendor.send = func(*connector.Message) error { return g.err() } })
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	return h, g
}

// agentTexts are the customer lines (and context lines) the agent side got.
func agentTexts(h *harness) []string {
	var out []string
	for _, s := range h.toAgent.all() {
		if s.Kind == connector.KindText || s.Kind == connector.KindContext {
			out = append(out, string(s.Kind)+":"+s.Text)
		}
	}
	return out
}

// Lines waiting when the agent ends the chat move to the customer's next
// conversation, which opens at once; the customer reads the end, then that a
// new chat starts.
func TestWaitingLinesMoveWhenAgentEnds(t *testing.T) {
	h, g := chatWithGate(t)
	first := h.openConversation(alice)
	g.set(true)
	h.inbound(alice, "SM2", "are you there?")
	h.inbound(alice, "SM3", "hello??")
	h.event(alice, connector.Event{Type: connector.EventEnded, Reason: "agent"})
	g.set(false)
	h.toAgent.wait(t, 3, 5*time.Second)
	h.idle()
	if diff := cmp.Diff([]string{"text:hello", "text:are you there?", "text:hello??"}, agentTexts(h)); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	if n := h.vendor.openCount(); n != 2 {
		t.Errorf("%d vendor chats opened, want 2 (the next conversation at once)", n)
	}
	next := h.openConversation(alice)
	if next.ID == first.ID || next.State != connector.StateQueued {
		t.Errorf("next conversation %+v", next)
	}
	want := []string{"notice:" + defaults.Queued, "notice:" + defaults.EndedByAgent, "notice:" + defaults.NewConversation, "notice:" + defaults.Queued}
	if diff := cmp.Diff(want, texts(h.toUser.all())); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
}

// With no agent and no leave-message, the waiting lines fail and the
// customer is told which, quoting each.
func TestNoAgentFailsWaitingLinesAndTells(t *testing.T) {
	h, g := chatWithGate(t)
	g.set(true)
	h.inbound(alice, "SM2", "my order number is 12345 and it has not arrived yet")
	h.event(alice, connector.Event{Type: connector.EventNoAgent})
	h.idle()
	got := texts(h.toUser.all())
	want := []string{"notice:" + defaults.Queued, "notice:" + defaults.NoAgent,
		`notice:Sorry, no agent could take these messages: "my order number is 12345 and it has not…"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
	if n := h.vendor.openCount(); n != 1 {
		t.Errorf("%d vendor chats opened, want 1", n)
	}
}

// A vendor that lost the chat across a restart gets a new one: the customer
// reads "reconnected", never an end; the new agent gets the context line,
// then the lines that waited, in order.
func TestResumeLostOpensANewChat(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventJoined, Agent: "Bob"})
	h.event(alice, connector.Event{Type: connector.EventText, Text: "hi, Bob here", SourceID: "L1"})
	h.toUser.wait(t, 3, 5*time.Second)
	h.idle()
	h.stop()
	h.vendor.resume = func(*connector.Conversation) error {
		return fmt.Errorf("whoson answered with another chat: %w", connector.ErrChatLost)
	}
	h.start()
	h.inbound(alice, "SM2", "still there?")
	h.toAgent.wait(t, 3, 5*time.Second)
	h.idle()
	got := agentTexts(h)
	if len(got) != 3 || got[0] != "text:hello" || got[2] != "text:still there?" ||
		!strings.HasPrefix(got[1], "context:[connectord] This chat continues one that was disconnected. Customer: (+15550000001) on sms.main. Last lines: customer: hello | agent: hi, Bob here") {
		t.Errorf("to agent:\n%s", strings.Join(got, "\n"))
	}
	c := h.openConversation(alice)
	if c.State != connector.StateQueued || c.Agent != "" || string(c.Session) != `{"chat":2}` || c.ContextMessage != 0 {
		t.Errorf("conversation after the new chat: %+v", c)
	}
	user := texts(h.toUser.all())
	if user[len(user)-1] != "notice:"+defaults.Reconnected {
		t.Errorf("to customer: %v, want the reconnected notice last", user)
	}
	for _, u := range user {
		if strings.Contains(u, "ended") {
			t.Errorf("customer told %q", u)
		}
	}
}

// A Send that finds the chat lost opens a new one and sends the line there.
func TestSendLostOpensANewChat(t *testing.T) {
	var lost atomic.Bool
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if m.Text == "two" && lost.CompareAndSwap(false, true) {
				return fmt.Errorf("chat gone: %w", connector.ErrChatLost)
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "one")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.inbound(alice, "SM2", "two")
	h.toAgent.wait(t, 3, 5*time.Second)
	h.idle()
	got := agentTexts(h)
	if len(got) != 3 || got[1][:8] != "context:" || got[2] != "text:two" {
		t.Errorf("to agent: %q", got)
	}
	if n := h.vendor.openCount(); n != 2 {
		t.Errorf("%d chats opened, want 2", n)
	}
}

// EventLost (a reconnect found the chat gone) opens a new chat at once, even
// with nothing waiting; a chat lost again within reopen_window ends, and the
// lines then waiting fail with a notice.
func TestEventLostReopensOnceThenEnds(t *testing.T) {
	var g gate
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if m.Kind == connector.KindText {
				return g.err()
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventLost, Reason: "socket came back without the chat"})
	h.toAgent.wait(t, 2, 5*time.Second) // the context line, on the new chat
	h.idle()
	if n := h.vendor.openCount(); n != 2 {
		t.Fatalf("%d chats opened, want 2", n)
	}
	g.set(true)
	h.inbound(alice, "SM2", "anyone?")
	h.event(alice, connector.Event{Type: connector.EventLost, Reason: "again"})
	h.idle()
	if _, err := h.store.FindOpen(context.Background(), "sms.main", alice); !errors.Is(err, connector.ErrNotFound) {
		t.Errorf("conversation still open after a second loss: %v", err)
	}
	user := texts(h.toUser.all())
	want := []string{"notice:" + defaults.Queued, "notice:" + defaults.Reconnected,
		"notice:Sorry, we could not keep this chat going (the agent system closed the chat). Write again to start a new one.",
		`notice:Sorry, no agent could take these messages: "anyone?"`}
	if diff := cmp.Diff(want, user); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
	if n := h.vendor.openCount(); n != 2 {
		t.Errorf("%d chats opened, want still 2", n)
	}
}

// The customer's own end request still lets the lines they wrote before it
// reach the agent, then the end.
func TestCustomerEndAfterWaitingLines(t *testing.T) {
	h, g := chatWithGate(t)
	g.set(true)
	h.inbound(alice, "SM2", "thanks, bye")
	if err := h.router.Receive(context.Background(), connector.Inbound{Channel: "sms.main", Customer: alice, SourceID: "SM3", End: true}); err != nil {
		t.Fatal(err)
	}
	g.set(false)
	h.toAgent.wait(t, 3, 5*time.Second)
	h.idle()
	var got []string
	for _, s := range h.toAgent.all() {
		got = append(got, string(s.Kind)+":"+s.Text)
	}
	if diff := cmp.Diff([]string{"text:hello", "text:thanks, bye", "end:customer"}, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
}

// lateCommitStore commits RecordInbound but reports the caller's deadline,
// as a group commit does when the caller gives up while its write is in the
// batch; n says how many times.
type lateCommitStore struct {
	connector.Store
	n atomic.Int32
}

func (s *lateCommitStore) RecordInbound(ctx context.Context, in connector.Inbound, vendor string) (connector.InboundResult, error) {
	res, err := s.Store.RecordInbound(ctx, in, vendor)
	if err == nil && s.n.Add(-1) >= 0 {
		return connector.InboundResult{}, context.DeadlineExceeded
	}
	return res, err
}

// A retried delivery of a message whose first commit went through after
// its caller gave up finds a duplicate that still waits, and queues it.
func TestDuplicateOfWaitingMessageQueued(t *testing.T) {
	ls := &lateCommitStore{}
	h := newHarness(t, func(h *harness) {
		h.wrap = func(st connector.Store) connector.Store { ls.Store = st; return ls }
	})
	ls.n.Store(1)
	err := h.router.Receive(context.Background(), connector.Inbound{Channel: "sms.main", Customer: alice, Text: "hello", SourceID: "SM1"})
	if err == nil {
		t.Fatal("the late commit reported success")
	}
	h.inbound(alice, "SM1", "hello") // the source retries
	h.toAgent.wait(t, 1, 5*time.Second)
	h.idle()
	if diff := cmp.Diff([]string{"text:hello"}, agentTexts(h)); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
}

// With no retry at all, the outbox sweep queues what nobody holds.
func TestOutboxSweepQueuesWhatNobodyHolds(t *testing.T) {
	ls := &lateCommitStore{}
	h := newHarness(t, func(h *harness) {
		h.conv.OutboxSweep = 300 * time.Millisecond
		h.wrap = func(st connector.Store) connector.Store { ls.Store = st; return ls }
	})
	ls.n.Store(1)
	if err := h.router.Receive(context.Background(), connector.Inbound{Channel: "sms.main", Customer: alice, Text: "hello", SourceID: "SM1"}); err == nil {
		t.Fatal("the late commit reported success")
	}
	h.toAgent.wait(t, 1, 5*time.Second)
	h.idle()
	if diff := cmp.Diff([]string{"text:hello"}, agentTexts(h)); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
}

// Every line written after the leave-message prompt is left, as one message:
// the conversation ends once it is left, and none is dropped or carried to a
// next chat that would meet the same prompt.
func TestLeaveMessageTakesEveryWaitingLine(t *testing.T) {
	h := newHarness(t, func(h2 *harness) {
		h2.vendor.onOpen = func(c *connector.Conversation) error {
			return h2.vendor.sink.Event(context.Background(), connector.Event{ConversationID: c.ID,
				Type: connector.EventNoAgent, LeaveMessage: true})
		}
	})
	h.inbound(alice, "SM1", "anyone there?")
	h.toUser.wait(t, 1, 5*time.Second)
	h.idle()
	h.stop() // the lines wait together, as when the customer writes faster than the vendor answers
	for i, text := range []string{"please call me back", "my number is 555", "thanks"} {
		in := connector.Inbound{Channel: "sms.main", Customer: alice, Text: text, SourceID: fmt.Sprint("SM", i+2), ReceivedAt: time.Now()}
		st, err := sqlite.Open(context.Background(), h.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordInbound(context.Background(), in, "whoson.sales"); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	h.start()
	h.toUser.wait(t, 2, 5*time.Second)
	h.idle()
	var left []string
	for _, s := range h.toAgent.all() {
		left = append(left, string(s.Kind)+":"+s.Text)
	}
	if diff := cmp.Diff([]string{"leave_message:please call me back\nmy number is 555\nthanks"}, left); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	if n := h.vendor.openCount(); n != 1 {
		t.Errorf("%d chats opened, want 1", n)
	}
}

// On the real store, callers whose deadline ends inside a group commit get
// an error although the write may land; their retry (same source id) must
// still get the message queued. Nothing stays stored once the router idles.
func TestShortDeadlinesLeaveNothingUnqueued(t *testing.T) {
	h := newHarness(t, nil)
	const n = 400
	var wg sync.WaitGroup
	var failedFirst atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := connector.Inbound{Channel: "sms.main", Customer: fmt.Sprintf("+1555%07d", i%40), Text: "hi", SourceID: fmt.Sprint("SM", i)}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%10)*500*time.Microsecond)
			err := h.router.Receive(ctx, in)
			cancel()
			if err == nil {
				return
			}
			failedFirst.Add(1)
			for { // the source retries until answered
				if err := h.router.Receive(context.Background(), in); err == nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	h.toAgent.wait(t, n, 20*time.Second)
	h.idle()
	out, err := h.store.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d first deliveries failed on their deadline; %d messages still stored", failedFirst.Load(), n, len(out))
	if len(out) != 0 {
		t.Errorf("%d messages stored and never queued", len(out))
	}
}

// A report of the lost chat that comes after the conversation got its new
// chat (an EventLost carrying the old session) changes nothing.
func TestLateLostReportIgnored(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	old := h.openConversation(alice).Session
	h.event(alice, connector.Event{Type: connector.EventLost, Session: old})
	h.toAgent.wait(t, 2, 5*time.Second) // the context line, on the new chat
	h.idle()
	h.event(alice, connector.Event{Type: connector.EventLost, Session: old, Reason: "late"})
	h.idle()
	c := h.openConversation(alice)
	if string(c.Session) != `{"chat":2}` || h.vendor.openCount() != 2 {
		t.Errorf("after a late report: session %s, %d chats opened; want chat 2 kept", c.Session, h.vendor.openCount())
	}
}

// A vendor that loses the chat at every restart (it does not re-attach
// chats) gets a new one each time, however close the restarts: only a loss
// soon after a reopening by the running process ends the conversation.
func TestLostAtEveryRestartReopensEachTime(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.idle()
	h.vendor.resume = func(*connector.Conversation) error { return connector.ErrChatLost }
	for i := range 3 {
		h.restart()
		h.inbound(alice, fmt.Sprint("SM", i+2), fmt.Sprint("line ", i))
		h.toAgent.wait(t, 1+2*(i+1), 5*time.Second) // a context line and the line, each time
		h.idle()
	}
	if n := h.vendor.openCount(); n != 4 {
		t.Errorf("%d chats opened, want 4 (one per restart)", n)
	}
	for _, u := range texts(h.toUser.all()) {
		if strings.Contains(u, "could not keep") || strings.Contains(u, "no agent could") {
			t.Errorf("customer told %q", u)
		}
	}
}

// An end the vendor words itself (CoBrowser's blocked notice) replaces the
// end notice: the customer does not also read "write again any time".
func TestEndedWithVendorText(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventEnded, Reason: "blocked", Text: "You are blocked for a day."})
	h.idle()
	want := []string{"notice:" + defaults.Queued, "notice:You are blocked for a day."}
	if diff := cmp.Diff(want, texts(h.toUser.all())); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
}

// The store refusing writes while a lost chat is recorded (a full disk):
// nothing is lost or doubled; once it takes writes again the new chat opens
// and the waiting line reaches it once, after the context line.
func TestLostWhileStoreRefuses(t *testing.T) {
	fs := &flakyStore{}
	var refused atomic.Bool
	var h *harness
	h = newHarness(t, func(h2 *harness) {
		withFlaky(fs)(h2)
		h2.vendor.send = func(m *connector.Message) error {
			if m.Text != "two" || h2.vendor.openCount() > 1 {
				return nil
			}
			// The first chat is gone for good: every send on it says so.
			if refused.CompareAndSwap(false, true) {
				fs.apply.Store(4) // and the record of the loss is refused four times
			}
			return fmt.Errorf("chat gone: %w", connector.ErrChatLost)
		}
	})
	h.inbound(alice, "SM1", "one")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.inbound(alice, "SM2", "two")
	h.toAgent.wait(t, 3, 10*time.Second)
	h.idle()
	got := agentTexts(h)
	if len(got) != 3 || !strings.HasPrefix(got[1], "context:") || got[2] != "text:two" {
		t.Errorf("to agent: %q", got)
	}
	if n := h.vendor.openCount(); n != 2 {
		t.Errorf("%d chats opened, want 2", n)
	}
	if fs.apply.Load() >= 0 {
		t.Errorf("the store never refused (%d refusals left): the fault was not met", fs.apply.Load())
	}
}

// The store refusing writes when the agent ends the chat with a line
// waiting: the end event is retried until committed, and the line still
// moves to the next conversation and reaches an agent once.
func TestMoveWhileStoreRefuses(t *testing.T) {
	fs := &flakyStore{}
	var g gate
	h := newHarness(t, func(h *harness) {
		withFlaky(fs)(h)
		h.vendor.send = func(*connector.Message) error { return g.err() }
	})
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	g.set(true)
	h.inbound(alice, "SM2", "still there?")
	fs.apply.Store(3)
	h.event(alice, connector.Event{Type: connector.EventEnded, Reason: "agent"}) // Event retries the refused commit
	g.set(false)
	h.toAgent.wait(t, 2, 10*time.Second)
	h.idle()
	if diff := cmp.Diff([]string{"text:hello", "text:still there?"}, agentTexts(h)); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	if n := h.vendor.openCount(); n != 2 {
		t.Errorf("%d chats opened, want 2", n)
	}
	if fs.apply.Load() >= 0 {
		t.Errorf("the store never refused (%d refusals left): the fault was not met", fs.apply.Load())
	}
}
