package customerchannel

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// heldSink is the core's store with a hold before each event is committed:
// a slow store (a sleep) or one stuck until the test lets it go.
type heldSink struct {
	recorder
	hold func(ctx context.Context, e connector.Event) error
}

func (s *heldSink) Event(ctx context.Context, e connector.Event) error {
	if err := s.hold(ctx, e); err != nil {
		return err
	}
	return s.recorder.Event(ctx, e)
}

// sourceIDs returns the source ids of the agent lines stored for conv, in
// the order they were stored.
func (s *heldSink) sourceIDs(conv int64) []string {
	ev, _ := s.all()
	var out []string
	for _, e := range ev {
		if e.ConversationID == conv && e.Type == connector.EventText {
			out = append(out, e.SourceID)
		}
	}
	return out
}

// startHeld runs a vendor configured with block, whose store is sink,
// against fake connections (one per dial, on the channel returned).
// prepare runs before Start (a role, chats to carry). The vendor is stopped
// at the test's end.
func startHeld(t *testing.T, sink *heldSink, block string, prepare func(v *Vendor)) (*Vendor, chan *fakeClient) {
	t.Helper()
	v, err := New(connector.VendorEnv{Instance: instanceOf("deliver_via = \"sms.main\"\n" + block), Logger: zaptest.NewLogger(t),
		Sink: sink, Outbound: sink})
	if err != nil {
		t.Fatal(err)
	}
	clients := make(chan *fakeClient, 8)
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) {
		c := newFakeClient()
		clients <- c
		return c, nil
	}
	if prepare != nil {
		prepare(v)
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Stop(context.Background()) })
	return v, clients
}

// chatN is conversation n carrying chat "chat-n", whose customer is "cust-n".
func chatN(n int) (*connector.Conversation, session) {
	s := session{ConversationID: fmt.Sprintf("chat-%d", n), ParticipantID: fmt.Sprintf("cust-%d", n), ParticipantName: "Ann"}
	c := conversation()
	c.ID = int64(n)
	c.Session, _ = json.Marshal(s)
	return c, s
}

// agentLine is a messageArrived (or a history entry) of chat with id.
func agentLine(chat, id string) string {
	return `{"type":"ChatMessage","conversationId":"` + chat + `","id":"` + id + `","from":{"id":"a1","name":"Dee"},"text":"line ` + id + `"}`
}

// history is a join's answer for chat holding lines.
func history(chat string, lines ...string) string {
	return `{"conversation":{"id":"` + chat + `"},"messages":[` + strings.Join(lines, ",") + `]}`
}

// TestResumedChatsReplayConcurrently is the takeover of a dead instance's
// chats: 8 resumed at once, each answered with a 60-line history, against
// a store that takes 20 ms per event. Every chat's history is handled on
// its own worker: the store holds each chat's first event until all 8
// chats have one in the store at once, which a reader handling one event
// at a time never reaches. Each Resume still returns only once its chat's
// history is stored, and an answer counts when it is read: a replay (1.2 s)
// longer than send_confirm_timeout is not the server's silence.
func TestResumedChatsReplayConcurrently(t *testing.T) {
	const chats, lines, commit = 8, 60, 20 * time.Millisecond
	var mu sync.Mutex
	inStore := map[int64]bool{}
	allIn := make(chan struct{})
	sink := &heldSink{hold: func(ctx context.Context, e connector.Event) error {
		mu.Lock()
		if !inStore[e.ConversationID] {
			inStore[e.ConversationID] = true
			if len(inStore) == chats {
				close(allIn)
			}
		}
		mu.Unlock()
		select {
		case <-allIn:
		case <-ctx.Done():
			return ctx.Err()
		}
		time.Sleep(commit)
		return nil
	}}
	v, clients := startHeld(t, sink, "send_confirm_timeout = \"300ms\"\n", nil)
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		chat   int
		stored int
		err    error
	}
	results := make(chan result, chats)
	for n := 1; n <= chats; n++ {
		conv, _ := chatN(n)
		go func() {
			err := v.Resume(ctx, conv)
			results <- result{chat: n, stored: len(sink.sourceIDs(conv.ID)), err: err}
		}()
	}
	waitFor(t, "the joins", func() bool {
		return len(slices.DeleteFunc(c.names(), func(s string) bool { return s != evJoin })) == chats
	})
	for n := 1; n <= chats; n++ {
		chat := fmt.Sprintf("chat-%d", n)
		var hist []string
		for i := range lines {
			hist = append(hist, agentLine(chat, fmt.Sprintf("%s-m%02d", chat, i)))
		}
		c.server(evConversation, history(chat, hist...))
	}
	waitFor(t, "every chat's history in the store at once", func() bool {
		select {
		case <-allIn:
			return true
		default:
			return false
		}
	})
	for range chats {
		r := <-results
		if r.err != nil {
			t.Errorf("Resume of chat %d: %v", r.chat, r.err)
		}
		if r.stored != lines {
			t.Errorf("Resume of chat %d returned with %d of its %d history lines stored", r.chat, r.stored, lines)
		}
	}
}

// TestSlowChatDoesNotDelayAnother: while the store holds one chat's event,
// another chat's live agent line is stored.
func TestSlowChatDoesNotDelayAnother(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	sink := &heldSink{hold: func(ctx context.Context, e connector.Event) error {
		if e.ConversationID == 1 {
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
	v, clients := startHeld(t, sink, "", func(v *Vendor) {
		for n := 1; n <= 2; n++ {
			conv, s := chatN(n)
			track(v, conv, s, false)
		}
	})
	defer close(release)
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	c.server(evArrived, agentLine("chat-1", "slow"))
	<-held
	c.server(evArrived, agentLine("chat-2", "quick"))
	waitFor(t, "chat 2's line while chat 1's is held", func() bool { return len(sink.sourceIDs(2)) == 1 })
	if got := sink.sourceIDs(1); len(got) != 0 {
		t.Errorf("chat 1 stored %v while its store was held", got)
	}
}

// TestOrderWithinChatUnderConcurrency: lines of six chats, interleaved on
// the connection and stored with random delays, are stored in each chat's
// order.
func TestOrderWithinChatUnderConcurrency(t *testing.T) {
	const chats, lines = 6, 40
	sink := &heldSink{hold: func(ctx context.Context, e connector.Event) error {
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
		return nil
	}}
	v, clients := startHeld(t, sink, "", func(v *Vendor) {
		for n := 1; n <= chats; n++ {
			conv, s := chatN(n)
			track(v, conv, s, false)
		}
	})
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	want := make([][]string, chats+1)
	go func() {
		for i := range lines {
			for n := 1; n <= chats; n++ {
				chat := fmt.Sprintf("chat-%d", n)
				c.server(evArrived, agentLine(chat, fmt.Sprintf("%s-%02d", chat, i)))
			}
		}
	}()
	for n := 1; n <= chats; n++ {
		for i := range lines {
			want[n] = append(want[n], fmt.Sprintf("chat-%d-%02d", n, i))
		}
	}
	waitFor(t, "every line", func() bool { ev, _ := sink.all(); return len(ev) == chats*lines })
	for n := 1; n <= chats; n++ {
		if diff := cmp.Diff(want[n], sink.sourceIDs(int64(n))); diff != "" {
			t.Errorf("chat %d's lines (-want +got):\n%s", n, diff)
		}
	}
}

// TestRoleChangeNotBehindTheStore: a follower told to lead registers on the
// live connection while the store holds an event.
func TestRoleChangeNotBehindTheStore(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	sink := &heldSink{hold: func(ctx context.Context, e connector.Event) error {
		held <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}}
	v, clients := startHeld(t, sink, "", func(v *Vendor) {
		v.Lead(context.Background(), false)
		conv, s := chatN(1)
		track(v, conv, s, false)
	})
	defer close(release)
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	c.server(evArrived, agentLine("chat-1", "held"))
	<-held
	v.Lead(context.Background(), true)
	waitFor(t, "registerConnector while the store is held", func() bool { return slices.Contains(c.names(), evRegister) })
}

// TestStaleHistoryDecidesNothingNew: a chat's worker still holds the
// previous connection's history when the next connection is up. Handled
// then, it says nothing about the new connection's history: a line that
// went out on the dead connection waits for the new history (which has it)
// and is not sent twice. Taken for the new connection's history, it would
// have made the line look lost and sent it again.
func TestStaleHistoryDecidesNothingNew(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	sink := &heldSink{hold: func(ctx context.Context, e connector.Event) error {
		if e.SourceID == "held" {
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
	conv, s := chatN(1)
	v, clients := startHeld(t, sink, "reconnect_initial = \"10ms\"\n", func(v *Vendor) { track(v, conv, s, false) })
	c1 := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	c1.server(evConversation, history("chat-1"))
	waitFor(t, "the join answered", func() bool { return answered(v, "chat-1") })

	// Line 5 goes out on the first connection and is not confirmed there.
	c1.mu.Lock()
	c1.silent = true
	c1.mu.Unlock()
	m := &connector.Message{ID: 5, Text: "my order"}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := v.Send(short, conv, m); err == nil {
		t.Fatal("Send without an echo returned nil")
	}
	// The worker is held; the first connection's history (without line 5,
	// as the server answered before it came) waits behind it; the
	// connection drops and the next one rejoins.
	c1.server(evArrived, agentLine("chat-1", "held"))
	<-held
	c1.server(evConversation, history("chat-1"))
	c1.Close()
	c2 := <-clients
	waitFor(t, "the rejoin", func() bool { return slices.Contains(c2.names(), evJoin) })
	close(release)
	c2.server(evArrived, agentLine("chat-1", "after"))
	waitFor(t, "the stale history handled", func() bool { return slices.Contains(sink.sourceIDs(1), "after") })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- v.Send(ctx, conv, m) }()
	waitFor(t, "Send waiting for the new history", func() bool { return waiters(v, "chat-1") == 1 || sendEvents(c2) > 0 })
	c2.server(evConversation, history("chat-1",
		`{"type":"ChatMessage","id":"connectord-5","from":{"id":"cust-1","name":"Ann"},"text":"my order"}`))
	if err := <-sent; err != nil {
		t.Fatalf("Send after the new history: %v", err)
	}
	if n := sendEvents(c2); n != 0 {
		t.Errorf("line 5 emitted %d times on the new connection; the server had it", n)
	}
}

// TestFloodOfChatsBounded: a server that sends one line for each of 400
// chats while the store is stuck gets at most maxQueued of them taken in
// (a worker per chat holding one) before the reader stops reading; the
// connection is still served (a role change registers), and once the store
// moves every line is stored.
func TestFloodOfChatsBounded(t *testing.T) {
	const chats = 400
	release := make(chan struct{})
	sink := &heldSink{hold: func(ctx context.Context, e connector.Event) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}}
	before := runtime.NumGoroutine()
	v, clients := startHeld(t, sink, "", func(v *Vendor) {
		v.Lead(context.Background(), false)
		for n := 1; n <= chats; n++ {
			conv, s := chatN(n)
			track(v, conv, s, false)
		}
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for n := 1; n <= chats; n++ {
			c.server(evArrived, agentLine(fmt.Sprintf("chat-%d", n), fmt.Sprintf("m%d", n)))
		}
	}()
	waitFor(t, "the workers full and the reader stopped", func() bool {
		n, _ := v.lanes.Pending()
		return n == maxQueued && len(c.events) == cap(c.events)
	})
	if n, _ := v.lanes.Pending(); n != maxQueued {
		t.Errorf("%d events taken in, want %d", n, maxQueued)
	}
	if extra := runtime.NumGoroutine() - before; extra > maxQueued+16 {
		t.Errorf("%d more goroutines with %d chats flooding, want at most about %d", extra, chats, maxQueued)
	}
	v.Lead(context.Background(), true)
	waitFor(t, "registerConnector while the workers are full", func() bool { return slices.Contains(c.names(), evRegister) })
	close(release)
	released = true
	<-pushed
	waitFor(t, "every line", func() bool { ev, _ := sink.all(); return len(ev) == chats })
}
