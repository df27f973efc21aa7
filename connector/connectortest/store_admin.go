package connectortest

import (
	"errors"
	"time"

	"github.com/connectord/connectord/connector"
)

var adminTests = []storeTest{
	{"ListConversationsFilters", testListFilters},
	{"ListConversationsPages", testListPages},
	{"ListConversationsStuck", testListStuck},
	{"RecentFailures", testRecentFailures},
	{"RetryMessage", testRetryMessage},
}

func (f *fixture) list(q connector.ConversationQuery) []int64 {
	f.t.Helper()
	cs, err := f.s.ListConversations(f.ctx, q)
	if err != nil {
		f.t.Fatalf("ListConversations(%+v): %v", q, err)
	}
	out := []int64{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// testListFilters: every filter, alone and together, selects exactly the
// conversations it names, newest first, and what a listing returns equals
// what Conversation reads.
func testListFilters(f *fixture) {
	a := f.inbound(chSMS, alice, "SM1", "a").Conversation.ID
	tick()
	mid := time.Now()
	tick()
	b := f.inbound(chSMS, bob, "SM2", "b").Conversation.ID
	s := f.inboundWith(connector.Inbound{Channel: chSlack, Customer: alice, SourceID: "EV1", Text: "c"}).Conversation.ID
	f.apply(connector.Change{ConversationID: b, State: connector.StateActive})
	f.end(a, "agent")
	other, err := f.s.RecordInbound(f.ctx, connector.Inbound{Channel: chSMS, Customer: "+15550000009", SourceID: "SM3",
		Text: "d", ReceivedAt: time.Now()}, "cention.cloud")
	if err != nil {
		f.t.Fatal(err)
	}
	o := other.Conversation.ID
	for _, tc := range []struct {
		name string
		q    connector.ConversationQuery
		want []int64
	}{
		{"everything", connector.ConversationQuery{}, []int64{o, s, b, a}},
		{"open", connector.ConversationQuery{Open: true}, []int64{o, s, b}},
		{"pending", connector.ConversationQuery{State: connector.StatePending}, []int64{o, s}},
		{"active", connector.ConversationQuery{State: connector.StateActive}, []int64{b}},
		{"ended", connector.ConversationQuery{State: connector.StateEnded}, []int64{a}},
		{"channel", connector.ConversationQuery{Channel: chSlack}, []int64{s}},
		{"vendor", connector.ConversationQuery{Vendor: "cention.cloud"}, []int64{o}},
		{"channel and state", connector.ConversationQuery{Channel: chSMS, State: connector.StatePending}, []int64{o}},
		{"created before", connector.ConversationQuery{CreatedBefore: mid}, []int64{a}},
		{"created after", connector.ConversationQuery{CreatedAfter: mid}, []int64{o, s, b}},
		{"open, created before", connector.ConversationQuery{Open: true, CreatedBefore: mid}, []int64{}},
		{"no such channel", connector.ConversationQuery{Channel: "sms.other"}, []int64{}},
	} {
		tc.q.Limit = 10
		f.diff("ListConversations "+tc.name, tc.want, f.list(tc.q))
	}
	cs, err := f.s.ListConversations(f.ctx, connector.ConversationQuery{Limit: 10})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range cs {
		f.diff("listed conversation as read", f.conversation(c.ID), c)
	}
}

// testListPages: a limit cuts the newest first, and Before continues where
// the last page ended, with nothing repeated or skipped.
func testListPages(f *fixture) {
	var want []int64
	for i, sid := range []string{"SM1", "SM2", "SM3", "SM4", "SM5"} {
		id := f.inbound(chSMS, "+1555000010"+string(rune('0'+i)), sid, "x").Conversation.ID
		want = append([]int64{id}, want...)
	}
	var got []int64
	q := connector.ConversationQuery{Limit: 2}
	for range 4 {
		page := f.list(q)
		if len(page) > 2 {
			f.t.Fatalf("page of limit 2 has %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		q.Before = page[len(page)-1]
	}
	f.diff("pages of 2", want, got)
	f.diff("open pages", want[2:4], f.list(connector.ConversationQuery{Open: true, Before: want[1], Limit: 2}))
	if _, err := f.s.ListConversations(f.ctx, connector.ConversationQuery{}); err == nil {
		f.t.Error("ListConversations with no limit did not fail")
	}
}

// testListStuck: a conversation is stuck with a message stored before the
// waiting bound, or one failed since the failure bound; one whose messages
// were all sent, or whose waiting message is younger, is not.
func testListStuck(f *fixture) {
	waiting := f.inbound(chSMS, alice, "SM1", "waits").Conversation.ID
	sent := f.inbound(chSMS, bob, "SM2", "sent")
	f.markSent(sent.Message.ID, "")
	failed := f.inbound(chSlack, alice, "EV1", "fails")
	tick()
	oldFailure := time.Now()
	tick()
	f.markFailed(failed.Message.ID, "refused")
	tick()
	mid := time.Now()
	tick()
	young := f.inbound(chSlack, bob, "EV2", "young").Conversation.ID
	stuck := func(rule connector.StuckRule, q connector.ConversationQuery) []int64 {
		q.Stuck, q.Limit = &rule, 10
		return f.list(q)
	}
	f.diff("waiting before mid, failed since before the failure", []int64{failed.Conversation.ID, waiting},
		stuck(connector.StuckRule{WaitingBefore: mid, FailedSince: oldFailure}, connector.ConversationQuery{}))
	f.diff("waiting before mid, failures not counted", []int64{waiting},
		stuck(connector.StuckRule{WaitingBefore: mid}, connector.ConversationQuery{}))
	f.diff("waiting before mid, failed since mid", []int64{waiting},
		stuck(connector.StuckRule{WaitingBefore: mid, FailedSince: mid}, connector.ConversationQuery{}))
	f.diff("waiting before now", []int64{young, waiting},
		stuck(connector.StuckRule{WaitingBefore: time.Now()}, connector.ConversationQuery{}))
	f.diff("stuck on slack", []int64{failed.Conversation.ID},
		stuck(connector.StuckRule{WaitingBefore: mid, FailedSince: oldFailure}, connector.ConversationQuery{Channel: chSlack}))
	f.diff("stuck below a cursor", []int64{waiting},
		stuck(connector.StuckRule{WaitingBefore: mid, FailedSince: oldFailure}, connector.ConversationQuery{Before: failed.Conversation.ID}))
}

// testRecentFailures: failed messages since the bound, most recent first,
// limited; stored and sent ones never.
func testRecentFailures(f *fixture) {
	c := f.inbound(chSMS, alice, "SM1", "one")
	f.inbound(chSMS, alice, "SM2", "stays stored")
	first := f.toCustomer(c.Conversation.ID, "V1", "to customer")
	f.markFailed(c.Message.ID, "refused")
	tick()
	since := time.Now()
	tick()
	f.markFailed(first.ID, "unreachable")
	tick()
	last := f.toCustomer(c.Conversation.ID, "V2", "sent then failed")
	f.markSent(last.ID, "SMx")
	f.updateDelivery(chSMS, "SMx", connector.DeliveryFailed, "carrier")
	got := func(since time.Time, limit int) []int64 {
		ms, err := f.s.RecentFailures(f.ctx, since, limit)
		if err != nil {
			f.t.Fatalf("RecentFailures: %v", err)
		}
		for _, m := range ms {
			if m.State != connector.DeliveryFailed {
				f.t.Errorf("RecentFailures returned message %d in state %s", m.ID, m.State)
			}
		}
		return ids(ms)
	}
	f.diff("failures since the bound", []int64{last.ID, first.ID}, got(since, 10))
	f.diff("every failure", []int64{last.ID, first.ID, c.Message.ID}, got(time.Time{}, 10))
	f.diff("the newest failure", []int64{last.ID}, got(time.Time{}, 1))
}

// testRetryMessage: a failed message goes back to the outbox with its
// failure forgotten; any other state, and an unknown id, are refused with
// the contract's errors and change nothing.
func testRetryMessage(f *fixture) {
	c := f.inbound(chSMS, alice, "SM1", "one")
	out := f.toCustomer(c.Conversation.ID, "V1", "to customer")
	f.markSent(out.ID, "SMx")
	f.updateDelivery(chSMS, "SMx", connector.DeliveryFailed, "carrier")
	if n, err := f.s.CountAttempt(f.ctx, out.ID); err != nil || n != 1 {
		f.t.Fatalf("CountAttempt = %d, %v", n, err)
	}
	m, err := f.s.RetryMessage(f.ctx, out.ID)
	if err != nil {
		f.t.Fatalf("RetryMessage of a failed message: %v", err)
	}
	f.diff("retried message as read", f.message(c.Conversation.ID, out.ID), m)
	if m.State != connector.DeliveryStored || m.Reason != "" || m.RemoteID != "" {
		f.t.Errorf("retried message is %s (reason %q, remote id %q), want stored with neither", m.State, m.Reason, m.RemoteID)
	}
	f.diff("outbox after retry", []int64{c.Message.ID, out.ID}, ids(f.outbox()))
	if n, err := f.s.CountAttempt(f.ctx, out.ID); err != nil || n != 1 {
		f.t.Errorf("CountAttempt after retry = %d, %v; want 1 (retry starts the count again)", n, err)
	}
	if found := f.updateDelivery(chSMS, "SMx", connector.DeliveryFailed, "late"); found {
		f.t.Error("a late report for the earlier send found the retried message")
	}
	for _, tc := range []struct {
		name string
		id   int64
		want error
	}{
		{"stored", c.Message.ID, connector.ErrWrongState},
		{"retried", out.ID, connector.ErrWrongState},
		{"unknown", out.ID + 1000, connector.ErrNotFound},
	} {
		if _, err := f.s.RetryMessage(f.ctx, tc.id); !errors.Is(err, tc.want) {
			f.t.Errorf("RetryMessage of a %s message: %v, want %v", tc.name, err, tc.want)
		}
	}
	f.markSent(c.Message.ID, "")
	if _, err := f.s.RetryMessage(f.ctx, c.Message.ID); !errors.Is(err, connector.ErrWrongState) {
		f.t.Errorf("RetryMessage of a sent message: %v, want ErrWrongState", err)
	}
	f.diff("sent message after a refused retry", connector.DeliverySent, f.message(c.Conversation.ID, c.Message.ID).State)
}
