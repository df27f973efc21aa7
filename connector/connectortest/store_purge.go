package connectortest

import (
	"errors"
	"fmt"
	"time"

	"github.com/connectord/connectord/connector"
)

var purgeTests = []storeTest{
	{"PurgeOnlyEnded", testPurgeOnlyEnded},
	{"PurgeCutoff", testPurgeCutoff},
	{"PurgeLimitOldestFirst", testPurgeLimitOldestFirst},
	{"PurgeKeepsStoredMessages", testPurgeKeepsStored},
	{"PurgeRemovesDedupKeys", testPurgeRemovesKeys},
	{"PurgeNeverReusesIDs", testPurgeNeverReusesIDs},
}

func (f *fixture) purge(cutoff time.Time, limit int) int {
	f.t.Helper()
	n, err := f.s.Purge(f.ctx, cutoff, limit)
	if err != nil {
		f.t.Fatalf("Purge(%v, %d): %v", cutoff, limit, err)
	}
	return n
}

// settle marks every message of the outbox sent, so that only its state
// decides whether a conversation can be purged.
func (f *fixture) settle() {
	f.t.Helper()
	for _, m := range f.outbox() {
		f.markSent(m.ID, "")
	}
}

// endedConversation records one customer message, sends it, ends the
// conversation and returns it as read afterwards.
func (f *fixture) endedConversation(channel, customer, sid string) *connector.Conversation {
	f.t.Helper()
	in := f.inbound(channel, customer, sid, "hello")
	f.markSent(in.Message.ID, "")
	f.end(in.Conversation.ID, "agent")
	return f.conversation(in.Conversation.ID)
}

// gone checks that a conversation and its messages were deleted.
func (f *fixture) gone(id int64) {
	f.t.Helper()
	if c, err := f.s.Conversation(f.ctx, id); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("conversation %d after Purge = %+v, %v; want ErrNotFound", id, c, err)
	}
	if ms := f.messages(id); len(ms) != 0 {
		f.t.Errorf("conversation %d purged but %d of its messages are left", id, len(ms))
	}
}

// kept checks that a conversation is still there, messages included.
func (f *fixture) kept(id int64, messages int) {
	f.t.Helper()
	if _, err := f.s.Conversation(f.ctx, id); err != nil {
		f.t.Errorf("conversation %d after Purge: %v; want it kept", id, err)
	}
	if ms := f.messages(id); len(ms) != messages {
		f.t.Errorf("conversation %d has %d messages after Purge, want %d", id, len(ms), messages)
	}
}

func testPurgeOnlyEnded(f *fixture) {
	open := f.inbound(chSMS, alice, "SM1", "still talking")
	f.markSent(open.Message.ID, "")
	active := f.inbound(chSlack, bob, "EV1", "with an agent")
	f.markSent(active.Message.ID, "")
	f.apply(connector.Change{ConversationID: active.Conversation.ID, State: connector.StateActive})
	ended := f.endedConversation(chSMS, bob, "SM2")
	tick()
	if n := f.purge(time.Now(), 100); n != 1 {
		f.t.Errorf("Purge = %d, want 1 (the one ended conversation)", n)
	}
	f.gone(ended.ID)
	f.kept(open.Conversation.ID, 1)
	f.kept(active.Conversation.ID, 1)
}

func testPurgeCutoff(f *fixture) {
	older := f.endedConversation(chSMS, alice, "SM1")
	tick()
	newer := f.endedConversation(chSMS, bob, "SM2")
	if !older.UpdatedAt.Before(newer.UpdatedAt) {
		f.t.Fatalf("UpdatedAt %v, then %v: the clock did not move", older.UpdatedAt, newer.UpdatedAt)
	}
	// Strictly before the cutoff: a conversation updated at it is kept.
	if n := f.purge(newer.UpdatedAt, 100); n != 1 {
		f.t.Errorf("Purge(cutoff = the newer one's update) = %d, want 1", n)
	}
	f.gone(older.ID)
	f.kept(newer.ID, 1)
	if n := f.purge(newer.UpdatedAt.Add(time.Nanosecond), 100); n != 1 {
		f.t.Errorf("Purge(just after the newer one's update) = %d, want 1", n)
	}
	f.gone(newer.ID)
	if n := f.purge(time.Now(), 100); n != 0 {
		f.t.Errorf("Purge of an empty store = %d", n)
	}
}

func testPurgeLimitOldestFirst(f *fixture) {
	a := f.endedConversation(chSMS, alice, "SM1")
	tick()
	b := f.endedConversation(chSMS, bob, "SM2")
	tick()
	c := f.endedConversation(chSlack, alice, "EV1")
	tick()
	// A change to an ended conversation makes it the most recently updated.
	f.apply(connector.Change{ConversationID: a.ID, Agent: ptr("Dee")})
	tick()
	cutoff := time.Now()
	if n := f.purge(cutoff, 0); n != 0 {
		f.t.Errorf("Purge with limit 0 = %d", n)
	}
	f.kept(a.ID, 1)
	for i, want := range []int64{b.ID, c.ID, a.ID} {
		if n := f.purge(cutoff, 1); n != 1 {
			f.t.Fatalf("Purge number %d with limit 1 = %d, want 1", i+1, n)
		}
		f.gone(want)
	}
	// Many at once: the limit caps them, the rest stay for the next call.
	var convs []int64
	for i := range 7 {
		convs = append(convs, f.endedConversation(chSMS, fmt.Sprint("+1555000100", i), fmt.Sprint("SM-many-", i)).ID)
	}
	tick()
	cutoff = time.Now()
	if n := f.purge(cutoff, 5); n != 5 {
		f.t.Errorf("Purge(limit 5) of 7 = %d", n)
	}
	for _, id := range convs[:5] {
		f.gone(id)
	}
	for _, id := range convs[5:] {
		f.kept(id, 1)
	}
	if n := f.purge(cutoff, 5); n != 2 {
		f.t.Errorf("second Purge(limit 5) = %d, want the 2 left", n)
	}
}

func testPurgeKeepsStored(f *fixture) {
	// An ended conversation whose end notice is not sent yet.
	in := f.inbound(chSMS, alice, "SM1", "bye")
	f.markSent(in.Message.ID, "")
	res := f.apply(connector.Change{ConversationID: in.Conversation.ID, State: connector.StateEnded, EndReason: "agent",
		Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "ended"}}})
	notice := res.Added[0]
	// A failed message does not keep its conversation.
	failed := f.inbound(chSMS, bob, "SM2", "never delivered")
	f.markFailed(failed.Message.ID, "unreachable")
	f.end(failed.Conversation.ID, "agent")
	// A vendor-started message: its conversation is created ended.
	out, err := f.s.RecordOutbound(f.ctx, connector.Outbound{Vendor: "customerchannel.hub", Channel: chSMS,
		Customer: "+15550000003", Text: "sale", SourceID: "M1"})
	if err != nil {
		f.t.Fatal(err)
	}
	tick()
	if n := f.purge(time.Now(), 100); n != 1 {
		f.t.Errorf("Purge = %d, want 1 (the conversation with nothing left to send)", n)
	}
	f.gone(failed.Conversation.ID)
	f.kept(in.Conversation.ID, 2)
	f.kept(out.Message.ConversationID, 1)
	f.diff("outbox after Purge", []int64{notice.ID, out.Message.ID}, ids(f.outbox()))

	f.markSent(notice.ID, "")
	f.markSent(out.Message.ID, "")
	if n := f.purge(time.Now(), 100); n != 2 {
		f.t.Errorf("Purge after the messages were sent = %d, want 2", n)
	}
	f.gone(in.Conversation.ID)
	f.gone(out.Message.ConversationID)
}

func testPurgeRemovesKeys(f *fixture) {
	in := f.inbound(chSMS, alice, "SM1", "hello")
	reply := f.toCustomer(in.Conversation.ID, "L1", "hi")
	f.markSent(in.Message.ID, "")
	f.markSent(reply.ID, "SMout1")
	f.end(in.Conversation.ID, "agent")
	o := connector.Outbound{Vendor: "customerchannel.hub", Channel: chSMS, Customer: bob, Text: "sale", SourceID: "M1"}
	out, err := f.s.RecordOutbound(f.ctx, o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.markSent(out.Message.ID, "SMout2")
	tick()
	if n := f.purge(time.Now(), 100); n != 2 {
		f.t.Fatalf("Purge = %d, want 2", n)
	}
	// A re-sent customer message is new again: its key went with it.
	again := f.inbound(chSMS, alice, "SM1", "hello again")
	if again.Duplicate || !again.Created || again.Message == nil {
		f.t.Errorf("inbound SM1 after Purge: Duplicate=%v Created=%v; want a new conversation", again.Duplicate, again.Created)
	}
	if r, err := f.s.RecordOutbound(f.ctx, o); err != nil || r.Duplicate || r.Message == nil {
		f.t.Errorf("RecordOutbound M1 after Purge = %+v, %v; want stored again", r, err)
	}
	// A late delivery report for a purged message finds nothing.
	if f.updateDelivery(chSMS, "SMout1", connector.DeliveryDelivered, "") {
		f.t.Error("UpdateDelivery found a purged message")
	}
}

func testPurgeNeverReusesIDs(f *fixture) {
	f.endedConversation(chSMS, bob, "SM0")
	in := f.inbound(chSMS, alice, "SM1", "hello")
	newest := f.toCustomer(in.Conversation.ID, "", "the newest message")
	f.settle()
	f.end(in.Conversation.ID, "agent")
	tick()
	if n := f.purge(time.Now(), 100); n != 2 {
		f.t.Fatalf("Purge = %d, want 2 (every conversation)", n)
	}
	next := f.inbound(chSMS, alice, "SM2", "after the purge")
	if next.Conversation.ID <= in.Conversation.ID {
		f.t.Errorf("conversation id %d given after purging conversation %d", next.Conversation.ID, in.Conversation.ID)
	}
	if next.Message.ID <= newest.ID {
		f.t.Errorf("message id %d given after purging message %d: ids are reused", next.Message.ID, newest.ID)
	}
	added := f.toCustomer(next.Conversation.ID, "", "reply")
	if added.ID <= next.Message.ID {
		f.t.Errorf("message id %d after %d", added.ID, next.Message.ID)
	}
}
