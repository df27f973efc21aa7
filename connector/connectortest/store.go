// Package connectortest holds the conformance suites that every
// implementation of a connector contract passes.
package connectortest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

// TestStore runs the Store conformance suite: one subtest per clause of the
// connector.Store contract. open must return a new, empty store for the
// subtest it is given and arrange for it to be closed with t.Cleanup; one
// subtest closes its store itself, so that cleanup must tolerate a store
// already closed. Subtests run in parallel, each on its own store.
//
// Beyond the interface's comments, the suite holds a store to these:
//   - a missing conversation or message is an error wrapping connector.ErrNotFound;
//   - what a write returns equals what a later read returns (times too);
//   - a duplicate inbound reports the conversation the first one went to;
//   - a canceled context makes a write fail with the context's error;
//   - Stats.Writes counts each committed write call once, and concurrent
//     writes share transactions (Writes/Transactions > 1 under load);
//   - CountAttempt and ClearAttempts of an unknown message are ErrNotFound,
//     and counting changes nothing else a reader sees;
//   - Purge with a limit below 1 deletes nothing; a conversation updated
//     exactly at the cutoff is kept; a purged message's delivery report
//     finds nothing; conversation ids are not reused either;
//   - Stats.Conversations and OpenCounts equal a real count after any mix of
//     writes, purges included.
//   - OptedOut sees every SetOptOut that returned nil, under concurrent
//     writes too, and none that failed.
//
// That a store which cannot write fails Ping is not expressible here (how
// to make a store unwritable depends on the store); each store tests it.
func TestStore(t *testing.T, open func(t *testing.T) connector.Store) {
	for _, tc := range storeTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(&fixture{t: t, s: open(t), ctx: context.Background()})
		})
	}
}

type storeTest struct {
	name string
	fn   func(f *fixture)
}

// storeTests lists every subtest; each file adds its own.
var storeTests = concat(inboundTests, applyTests, deliveryTests, readTests, loadTests,
	attemptTests, purgeTests, countTests, optOutTests, adminTests)

func concat(lists ...[]storeTest) []storeTest {
	var all []storeTest
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// fixture is one subtest's store with helpers that fail the test on error.
type fixture struct {
	t   *testing.T
	s   connector.Store
	ctx context.Context
}

// The channel, vendor and customers the subtests use.
const (
	chSMS   = "sms.main"
	chSlack = "slack.support"
	vendor  = "whoson.sales"
	alice   = "+15550000001"
	bob     = "+15550000002"
)

func (f *fixture) inbound(channel, customer, sid, text string) connector.InboundResult {
	f.t.Helper()
	return f.inboundWith(connector.Inbound{Channel: channel, Customer: customer, SourceID: sid, Text: text})
}

func (f *fixture) inboundWith(in connector.Inbound) connector.InboundResult {
	f.t.Helper()
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Now()
	}
	res, err := f.s.RecordInbound(f.ctx, in, vendor)
	if err != nil {
		f.t.Fatalf("RecordInbound(%s, %s, %s): %v", in.Channel, in.Customer, in.SourceID, err)
	}
	if res.Conversation == nil {
		f.t.Fatalf("RecordInbound(%s): no conversation in result %+v", in.SourceID, res)
	}
	return res
}

func (f *fixture) apply(ch connector.Change) connector.ChangeResult {
	f.t.Helper()
	res, err := f.s.Apply(f.ctx, ch)
	if err != nil {
		f.t.Fatalf("Apply(%+v): %v", ch, err)
	}
	if res.Conversation == nil {
		f.t.Fatalf("Apply(%+v): no conversation in result", ch)
	}
	return res
}

func (f *fixture) conversation(id int64) *connector.Conversation {
	f.t.Helper()
	c, err := f.s.Conversation(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Conversation(%d): %v", id, err)
	}
	return c
}

func (f *fixture) messages(convID int64) []*connector.Message {
	f.t.Helper()
	ms, err := f.s.Messages(f.ctx, convID)
	if err != nil {
		f.t.Fatalf("Messages(%d): %v", convID, err)
	}
	return ms
}

// message finds one message of a conversation by id.
func (f *fixture) message(convID, id int64) *connector.Message {
	f.t.Helper()
	for _, m := range f.messages(convID) {
		if m.ID == id {
			return m
		}
	}
	f.t.Fatalf("conversation %d has no message %d", convID, id)
	return nil
}

func (f *fixture) outbox() []*connector.Message {
	f.t.Helper()
	ms, err := f.s.Outbox(f.ctx)
	if err != nil {
		f.t.Fatalf("Outbox: %v", err)
	}
	return ms
}

func (f *fixture) stats() connector.Stats {
	f.t.Helper()
	st, err := f.s.Stats(f.ctx)
	if err != nil {
		f.t.Fatalf("Stats: %v", err)
	}
	return st
}

func (f *fixture) markSent(id int64, remote string) {
	f.t.Helper()
	if err := f.s.MarkSent(f.ctx, id, remote); err != nil {
		f.t.Fatalf("MarkSent(%d, %q): %v", id, remote, err)
	}
}

func (f *fixture) markFailed(id int64, reason string) {
	f.t.Helper()
	if err := f.s.MarkFailed(f.ctx, id, reason); err != nil {
		f.t.Fatalf("MarkFailed(%d): %v", id, err)
	}
}

func (f *fixture) updateDelivery(channel, remote string, d connector.Delivery, reason string) bool {
	f.t.Helper()
	found, err := f.s.UpdateDelivery(f.ctx, channel, remote, d, reason)
	if err != nil {
		f.t.Fatalf("UpdateDelivery(%s, %s, %s): %v", channel, remote, d, err)
	}
	return found
}

// end ends a conversation.
func (f *fixture) end(id int64, reason string) {
	f.t.Helper()
	f.apply(connector.Change{ConversationID: id, State: connector.StateEnded, EndReason: reason})
}

// toCustomer appends one ToCustomer text to a conversation and returns it.
func (f *fixture) toCustomer(convID int64, sid, text string) *connector.Message {
	f.t.Helper()
	res := f.apply(connector.Change{ConversationID: convID, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: text, SourceID: sid}}})
	if len(res.Added) != 1 {
		f.t.Fatalf("toCustomer(%d, %q): added %d messages, want 1", convID, sid, len(res.Added))
	}
	return res.Added[0]
}

// diff reports a mismatch between want and got, with what was compared.
func (f *fixture) diff(what string, want, got any, opts ...cmp.Option) {
	f.t.Helper()
	if d := cmp.Diff(want, got, opts...); d != "" {
		f.t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// ids returns the ids of messages, in order.
func ids(ms []*connector.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// tick makes sure the clock moves on between two writes whose times a test compares.
func tick() { time.Sleep(2 * time.Millisecond) }
