package sqlstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

// ReadsHarness is a freshly opened, empty store for TestReads, which the
// engine's test closes when the test ends.
type ReadsHarness struct {
	Store connector.Store
	// Uncached reads a conversation from the database, never from a cache.
	Uncached func(ctx context.Context, id int64) (*connector.Conversation, error)
}

// TestReads runs the tests of what a read sees after a write (read your
// writes, whichever way the store serves Conversation: the SQLite store
// from a cache the writer keeps), each on a fresh, empty store open gives.
func TestReads(t *testing.T, open func(t *testing.T) ReadsHarness) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, h ReadsHarness)
	}{
		{"ConversationAfterEachWriteKind", testConversationAfterEachWriteKind},
		{"ConversationIsACopy", testConversationIsACopy},
		{"ConversationUnderConcurrentWrites", testConversationUnderConcurrentWrites},
		{"LazyMarkVisibleOnReturn", testLazyMarkVisibleOnReturn},
		{"DeliveryReportsLazyButFailures", testDeliveryReportsLazyButFailures},
		{"InboundRacingEnd", testInboundRacingEnd},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
}

// sameAsDatabase fails t when conversation id as Conversation returns it
// differs from the row in the database.
func sameAsDatabase(t *testing.T, h ReadsHarness, id int64) {
	t.Helper()
	want, err := h.Uncached(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, read(t, h.Store, id)); d != "" {
		t.Errorf("Conversation(%d) differs from the database's row (-database +read):\n%s", id, d)
	}
}

// started records a customer's first message and returns its conversation.
func started(t *testing.T, s connector.Store, customer string) connector.InboundResult {
	t.Helper()
	res, err := s.RecordInbound(context.Background(), connector.Inbound{Channel: "sms.main", Customer: customer,
		SourceID: "SM-" + customer, Text: "hello"}, "whoson.sales")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// read returns conversation id as the store has it now.
func read(t *testing.T, s connector.Store, id int64) *connector.Conversation {
	t.Helper()
	c, err := s.Conversation(context.Background(), id)
	if err != nil {
		t.Fatalf("Conversation(%d): %v", id, err)
	}
	return c
}

// testConversationAfterEachWriteKind reads a conversation (which a cache
// then holds), changes it with each kind of write that changes conversation
// rows, and reads it again: the read must show the write.
func testConversationAfterEachWriteKind(t *testing.T, h ReadsHarness) {
	ctx, s := context.Background(), h.Store
	for _, tc := range []struct {
		name string
		// write changes conversation id and returns what a read must show.
		write func(t *testing.T, id int64) func(c *connector.Conversation) string
	}{
		{"RecordInbound", func(t *testing.T, id int64) func(c *connector.Conversation) string {
			res, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: read(t, s, id).Customer,
				SourceID: "SM-second-" + strconv.FormatInt(id, 10), Text: "again", Profile: connector.Profile{Name: "Kim"}}, "whoson.sales")
			if err != nil {
				t.Fatal(err)
			}
			return func(c *connector.Conversation) string {
				return cmp.Diff(res.Conversation.Profile, c.Profile) + cmp.Diff(res.Conversation.LastActivity, c.LastActivity)
			}
		}},
		{"Apply", func(t *testing.T, id int64) func(c *connector.Conversation) string {
			agent := "Ann"
			res, err := s.Apply(ctx, connector.Change{ConversationID: id, State: connector.StateActive, Agent: &agent,
				Session: json.RawMessage(`{"chat":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			return func(c *connector.Conversation) string { return cmp.Diff(res.Conversation, c) }
		}},
		{"ApplyEnd", func(t *testing.T, id int64) func(c *connector.Conversation) string {
			_, err := s.Apply(ctx, connector.Change{ConversationID: id, State: connector.StateEnded, EndReason: "agent",
				Move: &connector.Move{Vendor: "whoson.sales"}})
			if err != nil {
				t.Fatal(err)
			}
			return func(c *connector.Conversation) string {
				return cmp.Diff(connector.State(connector.StateEnded), c.State) + cmp.Diff("agent", c.EndReason)
			}
		}},
		{"MarkSentOfContextLine", func(t *testing.T, id int64) func(c *connector.Conversation) string {
			m := reopened(t, s, id)
			if err := s.MarkSent(ctx, m, "remote-1"); err != nil {
				t.Fatal(err)
			}
			return func(c *connector.Conversation) string { return cmp.Diff(int64(0), c.ContextMessage) }
		}},
		{"MarkFailedOfContextLine", func(t *testing.T, id int64) func(c *connector.Conversation) string {
			m := reopened(t, s, id)
			if err := s.MarkFailed(ctx, m, "gone"); err != nil {
				t.Fatal(err)
			}
			return func(c *connector.Conversation) string { return cmp.Diff(int64(0), c.ContextMessage) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := started(t, s, "+1555"+tc.name).Conversation.ID
			read(t, s, id)
			read(t, s, id) // a second read, from the cache where there is one
			check := tc.write(t, id)
			if d := check(read(t, s, id)); d != "" {
				t.Errorf("conversation read after %s (-want +got):\n%s", tc.name, d)
			}
			sameAsDatabase(t, h, id)
		})
	}
	t.Run("Purge", func(t *testing.T) {
		id := started(t, s, "+1555purged").Conversation.ID
		if _, err := s.Apply(ctx, connector.Change{ConversationID: id, State: connector.StateEnded, EndReason: "agent",
			FailPending: "ended"}); err != nil {
			t.Fatal(err)
		}
		read(t, s, id)
		read(t, s, id)
		if _, err := s.Purge(ctx, time.Now().Add(time.Hour), 1000); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Conversation(ctx, id); !errors.Is(err, connector.ErrNotFound) {
			t.Errorf("Conversation of a purged conversation: %v, want ErrNotFound", err)
		}
	})
}

// reopened gives conversation id a context line owed to a new agent (its
// ContextMessage), reads it so that a cache holds it, and returns the line.
func reopened(t *testing.T, s connector.Store, id int64) int64 {
	t.Helper()
	res, err := s.Apply(context.Background(), connector.Change{ConversationID: id, Reopen: true,
		Messages: []*connector.Message{{Direction: connector.ToAgent, Kind: connector.KindContext, Text: "context"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Conversation.ContextMessage
	if m == 0 {
		t.Fatal("Reopen set no ContextMessage")
	}
	if got := read(t, s, id).ContextMessage; got != m {
		t.Fatalf("ContextMessage read after Reopen = %d, want %d", got, m)
	}
	return m
}

// testConversationIsACopy: what a caller does to the conversation it got
// does not reach the next caller.
func testConversationIsACopy(t *testing.T, h ReadsHarness) {
	ctx, s := context.Background(), h.Store
	id := started(t, s, "+1555copy").Conversation.ID
	if _, err := s.Apply(ctx, connector.Change{ConversationID: id, Session: json.RawMessage(`{"chat":1}`)}); err != nil {
		t.Fatal(err)
	}
	want := read(t, s, id)
	for range 2 { // the first read may fill a cache, the second comes from it
		c := read(t, s, id)
		c.Agent, c.State = "changed", connector.StateEnded
		c.Session[2] = 'X'
		if d := cmp.Diff(want, read(t, s, id)); d != "" {
			t.Fatalf("a caller's change reached the store's conversation (-want +got):\n%s", d)
		}
	}
}

// testConversationUnderConcurrentWrites: one writer renames a
// conversation's agent 1, 2, 3... while readers read it. A reader never
// sees an older agent than one it saw, and the writer always sees its own
// latest write (readers that read the row before a commit must not leave
// it cached after).
func testConversationUnderConcurrentWrites(t *testing.T, h ReadsHarness) {
	ctx, s := context.Background(), h.Store
	id := started(t, s, "+1555busy").Conversation.ID
	const writes, readers = 100, 4
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			seen := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				n := agentNumber(t, read(t, s, id))
				if n < seen {
					t.Errorf("reader %d saw agent %d after agent %d", r, n, seen)
					return
				}
				seen = n
			}
		})
	}
	for i := 1; i <= writes; i++ {
		agent := strconv.Itoa(i)
		if _, err := s.Apply(ctx, connector.Change{ConversationID: id, Agent: &agent}); err != nil {
			t.Error(err)
			break
		}
		if n := agentNumber(t, read(t, s, id)); n != i {
			t.Errorf("after writing agent %d, read agent %d", i, n)
			break
		}
	}
	close(done)
	wg.Wait()
	sameAsDatabase(t, h, id)
}

// agentNumber returns the number a test wrote as c's agent, 0 for none.
func agentNumber(t *testing.T, c *connector.Conversation) int {
	if c.Agent == "" {
		return 0
	}
	n, err := strconv.Atoi(c.Agent)
	if err != nil {
		t.Errorf("agent %q", c.Agent)
	}
	return n
}

// testLazyMarkVisibleOnReturn: when MarkSent (a lazy write) returns, every
// read sees the mark, and it is counted, though not as synced.
func testLazyMarkVisibleOnReturn(t *testing.T, h ReadsHarness) {
	ctx, s := context.Background(), h.Store
	in := started(t, s, "+1555mark")
	before, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, in.Message.ID, "remote-1"); err != nil {
		t.Fatal(err)
	}
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, in.Message.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != connector.DeliverySent || m.RemoteID != "remote-1" {
		t.Errorf("message read after MarkSent returned: state %s, remote id %q; want sent, remote-1", m.State, m.RemoteID)
	}
	if after.Transactions != before.Transactions+1 || after.SyncedTransactions != before.SyncedTransactions ||
		after.SyncedWrites != before.SyncedWrites {
		t.Errorf("MarkSent alone: transactions %d -> %d, synced %d -> %d, synced writes %d -> %d; want one more transaction, no synced one",
			before.Transactions, after.Transactions, before.SyncedTransactions, after.SyncedTransactions, before.SyncedWrites, after.SyncedWrites)
	}
}

// testDeliveryReportsLazyButFailures: a report of progress (sent,
// delivered) is applied when UpdateDelivery returns but waits for no disk
// sync; a failure does.
func testDeliveryReportsLazyButFailures(t *testing.T, h ReadsHarness) {
	ctx, s := context.Background(), h.Store
	in := started(t, s, "+1555report")
	res, err := s.Apply(ctx, connector.Change{ConversationID: in.Conversation.ID, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "one"},
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "two"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range res.Added {
		if err := s.MarkSent(ctx, m.ID, fmt.Sprint("SM-report-", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		remote string
		state  connector.Delivery
		synced uint64
	}{
		{"SM-report-0", connector.DeliveryDelivered, 0},
		{"SM-report-1", connector.DeliveryFailed, 1},
	} {
		before, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if found, err := s.UpdateDelivery(ctx, "sms.main", tt.remote, tt.state, "carrier says so"); err != nil || !found {
			t.Fatalf("report %s for %s: found %v, %v", tt.state, tt.remote, found, err)
		}
		after, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := after.SyncedWrites - before.SyncedWrites; got != tt.synced || after.Writes != before.Writes+1 {
			t.Errorf("report %s: %d synced writes of %d, want %d of 1", tt.state, got, after.Writes-before.Writes, tt.synced)
		}
	}
	for i, want := range []connector.Delivery{connector.DeliveryDelivered, connector.DeliveryFailed} {
		if m, err := s.Message(ctx, res.Added[i].ID); err != nil || m.State != want {
			t.Errorf("message %d after its report: %v, %v; want %s", i, m, err, want)
		}
	}
}

// testInboundRacingEnd: a customer's line and the end of their conversation
// committed together, often in one batch. The writer may find a customer's
// open conversation from memory; a line stored after the end (in commit
// order, which message ids follow) must open a new conversation, and one
// stored before it belongs to the one that ended.
func testInboundRacingEnd(t *testing.T, h ReadsHarness) {
	ctx := context.Background()
	const customers = 40
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range customers {
			customer := fmt.Sprintf("+1555%03d%04d", round, i)
			first := started(t, h.Store, customer)
			conv := first.Conversation.ID
			line := func(sid string) (connector.InboundResult, error) {
				return h.Store.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: customer,
					SourceID: sid, Text: "hi"}, "whoson.sales")
			}
			// A second line and a read: what the store keeps in memory of
			// the open conversation is in place before the race.
			if _, err := line("SM-second-" + customer); err != nil {
				t.Fatal(err)
			}
			read(t, h.Store, conv)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var end connector.ChangeResult
				var in connector.InboundResult
				var endErr, inErr error
				var race sync.WaitGroup
				race.Add(2)
				go func() {
					defer race.Done()
					end, endErr = h.Store.Apply(ctx, connector.Change{ConversationID: conv, State: connector.StateEnded,
						EndReason: "agent", Messages: []*connector.Message{{Direction: connector.ToCustomer,
							Kind: connector.KindNotice, Text: "bye", SourceID: "bye-" + customer}}})
				}()
				go func() {
					defer race.Done()
					in, inErr = line("SM-late-" + customer)
				}()
				race.Wait()
				if endErr != nil || inErr != nil {
					t.Errorf("%s: end: %v; line: %v", customer, endErr, inErr)
					return
				}
				after := in.Message.ID > end.Added[0].ID
				if got := in.Conversation.ID != conv; got != after {
					t.Errorf("%s: the line stored %s the end went to conversation %d (the ended one is %d)",
						customer, map[bool]string{true: "after", false: "before"}[after], in.Conversation.ID, conv)
				}
				if after && !in.Created {
					t.Errorf("%s: the line after the end did not open a conversation", customer)
				}
			}()
		}
		wg.Wait()
	}
}
