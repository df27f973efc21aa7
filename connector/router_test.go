package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/connector"
)

const alice = "+15550000001"

var defaults = connector.DefaultNotices()

func TestRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventJoined, Agent: "Bob"})
	h.event(alice, connector.Event{Type: connector.EventText, Text: "hi, how can I help?", SourceID: "L1"})

	got := texts(h.toUser.wait(t, 3, 5*time.Second))
	want := []string{"notice:" + defaults.Queued, "notice:You are now chatting with Bob.", "text:hi, how can I help?"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"text:hello"}, texts(h.toAgent.all())); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	c := h.openConversation(alice)
	if c.State != connector.StateActive || c.Agent != "Bob" || string(c.Session) != `{"chat":1}` {
		t.Errorf("conversation = %+v", c)
	}
}

func TestDuplicatesDropped(t *testing.T) {
	h := newHarness(t, nil)
	for range 3 {
		h.inbound(alice, "SM1", "once")
	}
	h.inbound(alice, "SM2", "twice")
	h.toAgent.wait(t, 2, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventText, Text: "line", SourceID: "L1"})
	h.event(alice, connector.Event{Type: connector.EventText, Text: "line", SourceID: "L1"})
	h.toUser.wait(t, 2, 5*time.Second) // queued + line
	h.idle()
	if diff := cmp.Diff([]string{"text:once", "text:twice"}, texts(h.toAgent.all())); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	if n := hasPrefix(texts(h.toUser.all()), "text:line"); n != 1 {
		t.Errorf("agent line delivered %d times, want 1", n)
	}
}

// Messages of one conversation keep their order through transient failures.
func TestOrderKeptThroughRetries(t *testing.T) {
	var failures atomic.Int32
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if failures.Add(1)%3 != 0 {
				return errors.New("flaky network")
			}
			return nil
		}
	})
	var want []string
	for i := range 20 {
		text := fmt.Sprintf("m%02d", i)
		want = append(want, "text:"+text)
		h.inbound(alice, "SM"+text, text)
	}
	got := texts(h.toAgent.wait(t, 20, 10*time.Second))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
}

// A conversation whose vendor hangs does not hold up another.
func TestConversationsIndependent(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if m.Text == "stuck" {
				<-release
			}
			return nil
		}
	})
	defer close(release)
	h.inbound(alice, "SM1", "stuck")
	for i := range 5 {
		h.inbound(fmt.Sprintf("+1555000100%d", i), fmt.Sprintf("SMx%d", i), "free")
	}
	got := h.toAgent.wait(t, 5, 5*time.Second)
	for _, s := range got {
		if s.Text != "free" {
			t.Errorf("unexpected delivery %+v", s)
		}
	}
}

// A RetryAfter from the channel sets the wait before the next attempt: the
// router's own back-off (at most RetryMax, 50ms here) does not cut it short.
// The test reads the wait the router chose from its log, not from a clock.
func TestRetryAfterHonoured(t *testing.T) {
	var attempts atomic.Int32
	core, logs := observer.New(zap.WarnLevel)
	h := newHarness(t, func(h *harness) {
		h.notices.Queued = ""
		h.log = zap.New(core)
		h.channel.fail = func(m *connector.Message) error {
			if attempts.Add(1) == 1 {
				return connector.RetryAfter(errors.New("429"), 300*time.Millisecond)
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "hi")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventText, Text: "reply", SourceID: "L1"})
	h.toUser.wait(t, 1, 5*time.Second)
	retries := logs.FilterMessage("delivery failed, will retry").All()
	if len(retries) != 1 || attempts.Load() != 2 {
		t.Fatalf("%d retries logged, %d attempts; want 1 retry, then delivered", len(retries), attempts.Load())
	}
	if in, ok := retries[0].ContextMap()["in"].(time.Duration); !ok || in < 300*time.Millisecond {
		t.Errorf("next attempt in %v, want at least the 300ms asked for", retries[0].ContextMap()["in"])
	}
}

// A permanent failure towards the agent ends the conversation: the customer
// is told, the vendor gets an end, and the next message opens a new one.
func TestPermanentFailureEnds(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if m.Text == "poison" {
				return connector.Permanent(errors.New("rejected by vendor"))
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "poison")
	got := texts(h.toUser.wait(t, 2, 5*time.Second))
	want := []string{"notice:" + defaults.Queued,
		// The vendor's error text goes to the log; the customer reads a fixed reason.
		"notice:Sorry, your last message could not be delivered to the agent (the agent system did not accept it)."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
	ends := h.toAgent.wait(t, 1, 5*time.Second)
	if ends[0].Kind != connector.KindEnd {
		t.Errorf("vendor got %+v, want an end", ends[0])
	}
	h.inbound(alice, "SM2", "again")
	h.toAgent.wait(t, 2, 5*time.Second)
	waitFor(t, "a second open", func() bool { h.vendor.mu.Lock(); defer h.vendor.mu.Unlock(); return h.vendor.opens == 2 })
}

func TestAgentEndThenNewConversation(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "one")
	h.toAgent.wait(t, 1, 5*time.Second)
	first := h.openConversation(alice)
	h.event(alice, connector.Event{Type: connector.EventEnded})
	h.toUser.wait(t, 2, 5*time.Second)
	h.inbound(alice, "SM2", "two")
	h.toAgent.wait(t, 2, 5*time.Second)
	second := h.openConversation(alice)
	if second.ID == first.ID {
		t.Fatalf("message after the end reused conversation %d", first.ID)
	}
	got := texts(h.toUser.wait(t, 3, 5*time.Second))
	want := []string{"notice:" + defaults.Queued, "notice:" + defaults.EndedByAgent, "notice:" + defaults.Queued}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
}

func TestNoAgentLeaveMessage(t *testing.T) {
	var h *harness
	h = newHarness(t, func(h2 *harness) {
		h2.vendor.onOpen = func(c *connector.Conversation) error {
			return h2.vendor.sink.Event(context.Background(), connector.Event{ConversationID: c.ID,
				Type: connector.EventNoAgent, LeaveMessage: true})
		}
	})
	h.inbound(alice, "SM1", "anyone there?")
	h.toUser.wait(t, 1, 5*time.Second)
	h.inbound(alice, "SM2", "please call me back")
	got := texts(h.toUser.wait(t, 2, 5*time.Second))
	want := []string{"notice:" + defaults.LeaveMessage, "notice:" + defaults.MessageLeft}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
	agent := h.toAgent.wait(t, 1, 5*time.Second)
	if diff := cmp.Diff([]string{"leave_message:please call me back"}, texts(agent[:1])); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
}

func TestNoAgentEnds(t *testing.T) {
	h := newHarness(t, func(h2 *harness) {
		h2.vendor.onOpen = func(c *connector.Conversation) error {
			return h2.vendor.sink.Event(context.Background(), connector.Event{ConversationID: c.ID,
				Type: connector.EventNoAgent})
		}
	})
	h.inbound(alice, "SM1", "anyone?")
	got := texts(h.toUser.wait(t, 1, 5*time.Second))
	if diff := cmp.Diff([]string{"notice:" + defaults.NoAgent}, got); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
	open, err := h.store.OpenConversations(context.Background())
	if err != nil || len(open) != 0 {
		t.Errorf("open conversations = %v, %v; want none", open, err)
	}
}

func TestInactivityTimeout(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.conv.InactivityTimeout = 300 * time.Millisecond })
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventJoined, Agent: "Bob"})
	got := texts(h.toUser.wait(t, 3, 10*time.Second))
	if got[2] != "notice:"+defaults.EndedTimeout {
		t.Errorf("to customer = %v, want the timeout notice after the join", got)
	}
	h.toAgent.wait(t, 2, 5*time.Second) // the vendor is told too
}

// A customer waiting in the queue is not timed out on their own silence:
// queue events are the vendor's, and the wait is for an agent.
func TestQueuedNotTimedOut(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.conv.InactivityTimeout = 200 * time.Millisecond })
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // past the timeout, and past the sweep (every second)
	if c := h.openConversation(alice); c.State != connector.StateQueued {
		t.Fatalf("queued conversation is %q", c.State)
	}
	if got := texts(h.toUser.all()); len(got) != 1 {
		t.Errorf("to customer = %v, want only the queued notice", got)
	}
}

// The channel's length limit splits an agent line into parts, in order.
func TestSplitParts(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.channel.max = 4; h.notices.Queued = "" })
	h.inbound(alice, "SM1", "hi")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventText, Text: "abcdefghij", SourceID: "L1"})
	got := texts(h.toUser.wait(t, 3, 5*time.Second))
	if diff := cmp.Diff([]string{"text:abcd", "text:efgh", "text:ij"}, got); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
}

// What was stored but not delivered when the router stopped goes out after a
// restart, and the vendor session is resumed first.
func TestRestartDeliversOutbox(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if down.Load() {
				return errors.New("vendor down")
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "first")
	h.toAgent.wait(t, 1, 5*time.Second)
	down.Store(true)
	h.inbound(alice, "SM2", "second")
	h.inbound(alice, "SM3", "third")
	time.Sleep(30 * time.Millisecond)
	h.restart()
	down.Store(false)
	got := texts(h.toAgent.wait(t, 3, 5*time.Second))
	if diff := cmp.Diff([]string{"text:first", "text:second", "text:third"}, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	waitFor(t, "resume", func() bool { h.vendor.mu.Lock(); defer h.vendor.mu.Unlock(); return h.vendor.resumes == 1 })
}

// A vendor that refuses to resume ends the conversation with a notice.
func TestResumeRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM1", "first")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.vendor.mu.Lock()
	h.vendor.resume = func(c *connector.Conversation) error {
		return h.vendor.sink.Event(context.Background(), connector.Event{ConversationID: c.ID,
			Type: connector.EventEnded, Reason: "vendor could not resume the chat"})
	}
	h.vendor.mu.Unlock()
	h.restart()
	got := texts(h.toUser.wait(t, 2, 5*time.Second))
	want := "notice:Sorry, we could not keep this chat going (the agent system closed the chat). Write again to start a new one."
	if got[1] != want {
		t.Errorf("to customer = %q, want %q last", got, want)
	}
}

// The vendor's join commits before Open returns, and the process dies before
// Open's session is stored: the conversation is active with no session. The
// next attempt opens it again instead of failing the customer's message.
func TestSessionLostInCrashReopens(t *testing.T) {
	var crashed atomic.Bool
	h := newHarness(t, func(h *harness) {
		h.vendor.onOpen = func(c *connector.Conversation) error {
			if err := h.vendor.sink.Event(context.Background(), connector.Event{ConversationID: c.ID,
				Type: connector.EventJoined, Agent: "Bob"}); err != nil {
				return err
			}
			if crashed.CompareAndSwap(false, true) {
				return errors.New("process died before the session was stored")
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "hello")
	if diff := cmp.Diff([]string{"text:hello"}, texts(h.toAgent.wait(t, 1, 5*time.Second))); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	c := h.openConversation(alice)
	if c.State != connector.StateActive || string(c.Session) != `{"chat":2}` {
		t.Errorf("conversation = %+v, want active with the second session", c)
	}
}

// A line queued for a chat another process opened (woken by another
// instance, or found by an outbox sweep before the scheduled resume ran) is
// sent only after the vendor resumed the chat: a vendor that does not carry
// a chat cannot send on it.
func TestLineOnAnotherProcessChatResumesFirst(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			h.vendor.mu.Lock()
			defer h.vendor.mu.Unlock()
			if h.vendor.resumes == 0 {
				return errors.New("chat not carried by this process")
			}
			return nil
		}
	})
	ctx := context.Background()
	// Another process's conversation: stored, opened at the vendor, and a
	// line waiting, none of it through this Router.
	res, err := h.store.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: alice, Text: "hello",
		SourceID: "SM1", ReceivedAt: time.Now()}, "whoson.sales")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Apply(ctx, connector.Change{ConversationID: res.Conversation.ID, State: connector.StateQueued,
		Session: json.RawMessage(`{"chat":99}`)}); err != nil {
		t.Fatal(err)
	}
	h.router.Wake(ctx, res.Conversation.ID)
	if diff := cmp.Diff([]string{"text:hello"}, texts(h.toAgent.wait(t, 1, 5*time.Second))); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	h.idle()
	h.vendor.mu.Lock()
	defer h.vendor.mu.Unlock()
	if h.vendor.resumes != 1 {
		t.Errorf("Resume called %d times, want once", h.vendor.resumes)
	}
}

// Lines reach the agent in the order they were stored, even when a newer
// one is queued before older ones (stored by another instance that woke
// this one late, or found by a claim): the newer one waits behind them.
func TestOlderLinesGoFirst(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "SM0", "zero")
	h.toAgent.wait(t, 1, 5*time.Second)
	ctx := context.Background()
	for _, sid := range []string{"SM1", "SM2"} { // stored, but not queued by this Router
		if _, err := h.store.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: alice, Text: sid,
			SourceID: sid, ReceivedAt: time.Now()}, "whoson.sales"); err != nil {
			t.Fatal(err)
		}
	}
	h.inbound(alice, "SM3", "SM3")
	got := texts(h.toAgent.wait(t, 4, 5*time.Second))
	if diff := cmp.Diff([]string{"text:zero", "text:SM1", "text:SM2", "text:SM3"}, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
}

// A message the outbox held when the process started is handed to its
// adapter as Recovered, on every attempt; one this process stored is not,
// before the restart or after it.
func TestRecoveredOnlyFromOutboxAtStart(t *testing.T) {
	var down atomic.Bool
	var mu sync.Mutex
	seen := map[string][]bool{}
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			mu.Lock()
			seen[m.Text] = append(seen[m.Text], m.Recovered)
			mu.Unlock()
			if down.Load() {
				return errors.New("vendor down")
			}
			return nil
		}
	})
	h.inbound(alice, "SM1", "first")
	h.toAgent.wait(t, 1, 5*time.Second)
	down.Store(true)
	h.inbound(alice, "SM2", "second")
	waitFor(t, "an attempt at the second line", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen["second"]) > 0 })
	h.restart()
	down.Store(false)
	h.toAgent.wait(t, 2, 5*time.Second)
	h.inbound(alice, "SM3", "third")
	h.toAgent.wait(t, 3, 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	last := func(text string) bool { s := seen[text]; return s[len(s)-1] }
	if seen["first"][0] || seen["second"][0] || last("third") {
		t.Errorf("Recovered on a message this process stored: %v", seen)
	}
	if !last("second") {
		t.Errorf("the outbox's message after the restart was not Recovered: %v", seen)
	}
}

// A message this process sent whose mark the store lost (a database server
// that crashed with its commits not yet on disk) and that is queued again
// goes to its adapter as Recovered, so that one that can look at the
// destination does before sending it again.
func TestRecoveredWhenMarkLost(t *testing.T) {
	var mu sync.Mutex
	var sends []bool
	var first atomic.Int64
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(m *connector.Message) error {
			if m.Text == "hello" {
				first.CompareAndSwap(0, m.ID)
				mu.Lock()
				sends = append(sends, m.Recovered)
				mu.Unlock()
			}
			return nil
		}
		h.wrap = func(s connector.Store) connector.Store { return &losingMark{Store: s, lose: &first} }
	})
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	m, err := h.store.Message(context.Background(), first.Load())
	if err != nil || m.State != connector.DeliveryStored {
		t.Fatalf("the message after its lost mark: %+v, %v", m, err)
	}
	h.router.Wake(context.Background(), m.ConversationID)
	waitFor(t, "the second send", func() bool { mu.Lock(); defer mu.Unlock(); return len(sends) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if sends[0] || !sends[1] {
		t.Errorf("Recovered on the first and second send: %v, want false then true", sends)
	}
}

// losingMark is a store that forgets the first MarkSent of message *lose,
// as a crashed database server forgets a commit it had not synced.
type losingMark struct {
	connector.Store
	lose *atomic.Int64
	lost atomic.Bool
}

func (s *losingMark) MarkSent(ctx context.Context, id int64, remoteID string) error {
	if id == s.lose.Load() && s.lost.CompareAndSwap(false, true) {
		return nil
	}
	return s.Store.MarkSent(ctx, id, remoteID)
}
