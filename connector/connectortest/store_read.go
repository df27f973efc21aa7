package connectortest

import (
	"errors"

	"github.com/connectord/connectord/connector"
)

var readTests = []storeTest{
	{"ConversationNotFound", testConversationNotFound},
	{"OpenConversations", testOpenConversations},
	{"FindOpen", testFindOpen},
	{"OpenCursors", testOpenCursors},
	{"NewestSourceID", testNewestSourceID},
	{"RecordOutbound", testRecordOutbound},
	{"LabelsKept", testNoticeKeyKept},
	{"MessagesInOrder", testMessagesOrder},
	{"Stats", testStats},
	{"Ping", testPing},
	{"WaitingBefore", testWaitingBefore},
	{"WaitingBeforeFollowsEveryChange", testWaitingFollowsChanges},
}

func testConversationNotFound(f *fixture) {
	c, err := f.s.Conversation(f.ctx, 31337)
	if !errors.Is(err, connector.ErrNotFound) || c != nil {
		f.t.Errorf("Conversation(unknown) = %v, %v; want nil, ErrNotFound", c, err)
	}
	if ms, err := f.s.Messages(f.ctx, 31337); err != nil || len(ms) != 0 {
		f.t.Errorf("Messages(unknown) = %d messages, %v; want none", len(ms), err)
	}
}

func testOpenConversations(f *fixture) {
	a := f.inbound(chSMS, alice, "SM1", "a").Conversation
	b := f.inbound(chSMS, bob, "SM2", "b").Conversation
	c := f.inbound(chSlack, alice, "EV1", "c").Conversation
	f.apply(connector.Change{ConversationID: b.ID, State: connector.StateActive, Agent: ptr("Dee")})
	f.end(a.ID, "agent")
	a2 := f.inbound(chSMS, alice, "SM3", "again").Conversation

	open, err := f.s.OpenConversations(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	f.diff("open conversations", []*connector.Conversation{f.conversation(b.ID), f.conversation(c.ID), f.conversation(a2.ID)}, open)
}

func testMessagesOrder(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "1").Conversation.ID
	var want []string
	want = append(want, "1")
	for i, text := range []string{"2", "3", "4", "5", "6"} {
		if i%2 == 0 {
			f.toCustomer(id, "", text)
		} else {
			f.inbound(chSMS, alice, "SM"+text, text)
		}
		f.inbound(chSMS, bob, "other"+text, "interleaved") // another conversation between them
		want = append(want, text)
	}
	var got []string
	ms := f.messages(id)
	for i, m := range ms {
		got = append(got, m.Text)
		if i > 0 && m.ID <= ms[i-1].ID {
			f.t.Errorf("Messages ids %v, want increasing", ids(ms))
		}
	}
	f.diff("message texts", want, got)
}

func testStats(f *fixture) {
	st := f.stats()
	f.diff("empty store: conversations", map[connector.State]int{}, nonZero(st.Conversations))
	if st.OutboxDepth != 0 || !st.OldestPending.IsZero() {
		f.t.Errorf("empty store: outbox %d, oldest %v", st.OutboxDepth, st.OldestPending)
	}

	first := f.inbound(chSMS, alice, "SM1", "a") // pending
	second := f.inbound(chSMS, bob, "SM2", "b")  // pending
	q := f.inbound(chSlack, alice, "EV1", "c").Conversation.ID
	f.apply(connector.Change{ConversationID: q, State: connector.StateQueued})
	act := f.inbound(chSlack, bob, "EV2", "d").Conversation.ID
	f.apply(connector.Change{ConversationID: act, State: connector.StateActive})
	f.end(f.inbound(chSlack, "carol", "EV3", "e").Conversation.ID, "agent")
	f.inbound(chSlack, "carol", "EV4", "f") // pending: a new conversation
	f.dup(chSMS, alice, "SM1")              // changes nothing

	st = f.stats()
	f.diff("conversations by state", map[connector.State]int{
		connector.StatePending: 3, connector.StateQueued: 1, connector.StateActive: 1, connector.StateEnded: 1,
	}, nonZero(st.Conversations))
	if st.OutboxDepth != 6 {
		f.t.Errorf("OutboxDepth %d, want 6", st.OutboxDepth)
	}
	if !st.OldestPending.Equal(first.Message.CreatedAt) {
		f.t.Errorf("OldestPending %v, want the first message's %v", st.OldestPending, first.Message.CreatedAt)
	}
	f.markSent(first.Message.ID, "")
	st = f.stats()
	if st.OutboxDepth != 5 || !st.OldestPending.Equal(second.Message.CreatedAt) {
		f.t.Errorf("after MarkSent of the oldest: OutboxDepth %d OldestPending %v, want 5 and %v",
			st.OutboxDepth, st.OldestPending, second.Message.CreatedAt)
	}
	if st.Transactions == 0 || st.Writes < 11 || st.Transactions > st.Writes {
		f.t.Errorf("Transactions %d, Writes %d after 11 writes in sequence", st.Transactions, st.Writes)
	}
}

// dup records an inbound message that must be a duplicate.
func (f *fixture) dup(channel, customer, sid string) {
	f.t.Helper()
	if res := f.inbound(channel, customer, sid, "again"); !res.Duplicate {
		f.t.Errorf("inbound %s/%s: want a duplicate", channel, sid)
	}
}

// nonZero drops zero counts, which a store may or may not report.
func nonZero(m map[connector.State]int) map[connector.State]int {
	out := map[connector.State]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func testPing(f *fixture) {
	if err := f.s.Ping(f.ctx); err != nil {
		f.t.Errorf("Ping: %v", err)
	}
}

func testFindOpen(f *fixture) {
	a := f.inbound(chSMS, alice, "SM1", "a").Conversation
	f.inbound(chSlack, alice, "EV1", "same address, other channel")
	got, err := f.s.FindOpen(f.ctx, chSMS, alice)
	if err != nil {
		f.t.Fatal(err)
	}
	f.diff("FindOpen", f.conversation(a.ID), got)
	f.end(a.ID, "agent")
	if c, err := f.s.FindOpen(f.ctx, chSMS, alice); !errors.Is(err, connector.ErrNotFound) || c != nil {
		f.t.Errorf("FindOpen after the end = %v, %v; want nil, ErrNotFound", c, err)
	}
	a2 := f.inbound(chSMS, alice, "SM2", "again").Conversation
	if got, err := f.s.FindOpen(f.ctx, chSMS, alice); err != nil || got.ID != a2.ID {
		f.t.Errorf("FindOpen after a new message = %v, %v; want conversation %d", got, err, a2.ID)
	}
}

func testNoticeKeyKept(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "a").Conversation.ID
	res := f.apply(connector.Change{ConversationID: id, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "", Notice: "queued"},
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "hi", Agent: "Dee"}}})
	if len(res.Added) != 2 || res.Added[0].Notice != "queued" || res.Added[1].Agent != "Dee" {
		f.t.Fatalf("Apply added %+v, want the notice key and the agent kept", res.Added)
	}
	if got := f.message(id, res.Added[0].ID); got.Notice != "queued" || got.Text != "" {
		f.t.Errorf("stored notice = %q with text %q; want queued and empty", got.Notice, got.Text)
	}
	if got := f.message(id, res.Added[1].ID); got.Agent != "Dee" {
		f.t.Errorf("stored agent line has agent %q, want Dee", got.Agent)
	}
}

func testRecordOutbound(f *fixture) {
	o := connector.Outbound{Vendor: "customerchannel.hub", Channel: chSMS, Customer: alice, Text: "Sale today", SourceID: "M1"}
	res, err := f.s.RecordOutbound(f.ctx, o)
	if err != nil {
		f.t.Fatal(err)
	}
	if res.Duplicate || res.Message == nil || res.Message.Direction != connector.ToCustomer || res.Message.State != connector.DeliveryStored {
		f.t.Fatalf("RecordOutbound = %+v", res)
	}
	c := f.conversation(res.Message.ConversationID)
	if c.State != connector.StateEnded || c.EndReason != "outbound" || c.Channel != chSMS || c.Customer != alice || c.Vendor != o.Vendor {
		f.t.Errorf("outbound conversation = %+v", c)
	}
	f.diff("outbox", []int64{res.Message.ID}, ids(f.outbox()))
	// The same id from the same vendor is a duplicate; from another vendor it is not.
	if again, err := f.s.RecordOutbound(f.ctx, o); err != nil || !again.Duplicate || again.Message != nil {
		f.t.Errorf("repeat = %+v, %v; want a duplicate", again, err)
	}
	other := o
	other.Vendor = "customerchannel.other"
	if r, err := f.s.RecordOutbound(f.ctx, other); err != nil || r.Duplicate {
		f.t.Errorf("same id, other vendor = %+v, %v; want stored", r, err)
	}
	// The customer's answer opens a conversation of its own.
	in := f.inbound(chSMS, alice, "SM1", "tell me more")
	if !in.Created || in.Conversation.ID == c.ID {
		f.t.Errorf("answer = %+v; want a new conversation", in)
	}
	if _, err := f.s.RecordOutbound(f.ctx, connector.Outbound{Vendor: "v", Channel: chSMS, Customer: alice}); err == nil {
		f.t.Error("an outbound message without a source id was stored")
	}

	// Naming a conversation adds the message to it, after what it holds.
	joined := o
	joined.SourceID, joined.Conversation = "M2", in.Conversation.ID
	res, err = f.s.RecordOutbound(f.ctx, joined)
	if err != nil {
		f.t.Fatal(err)
	}
	if res.Message == nil || res.Message.ConversationID != in.Conversation.ID || res.Message.ID <= in.Message.ID {
		f.t.Errorf("outbound into conversation %d = %+v", in.Conversation.ID, res)
	}
	if got := f.conversation(in.Conversation.ID); got.State != in.Conversation.State {
		f.t.Errorf("joining an outbound message changed the conversation's state to %s", got.State)
	}
	for _, bad := range []connector.Outbound{
		{Vendor: o.Vendor, Channel: chSMS, Customer: "+15559999999", SourceID: "M3", Conversation: in.Conversation.ID},
		{Vendor: o.Vendor, Channel: chSMS, Customer: alice, SourceID: "M4", Conversation: 1 << 40},
	} {
		if r, err := f.s.RecordOutbound(f.ctx, bad); err == nil {
			f.t.Errorf("RecordOutbound(%+v) = %+v; want refused", bad, r)
		}
	}
}

func testOpenCursors(f *fixture) {
	a := f.inbound(chSMS, alice, "SM1", "one").Conversation
	f.inbound(chSMS, alice, "SM2", "two")
	f.apply(connector.Change{ConversationID: a.ID, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "agent", SourceID: "L1"}}})
	b := f.inbound(chSMS, bob, "SM3", "bob").Conversation
	f.end(b.ID, "agent")
	f.inbound(chSlack, alice, "EV1", "other channel")
	got, err := f.s.OpenCursors(f.ctx, chSMS)
	if err != nil {
		f.t.Fatal(err)
	}
	want := []connector.CustomerCursor{{ConversationID: a.ID, Customer: alice, State: connector.StatePending, LastSourceID: "SM2"}}
	f.diff("OpenCursors", want, got)
}

func testNewestSourceID(f *fixture) {
	const c1, c2 = "C1/", "C2/"
	a := f.inbound(chSlack, c1+"1700000000.000100", c1+"1700000000.000100", "root").Conversation
	f.inbound(chSlack, c1+"1700000000.000100", c1+"1700000005.000100", "reply")
	f.end(a.ID, "agent") // ended conversations count too
	f.inbound(chSlack, c1+"1700000002.000100", c1+"1700000002.000100", "another root")
	f.inbound(chSlack, c2+"1700000009.000100", c2+"1700000009.000100", "other slack channel")
	f.inbound(chSMS, "C1/x", "C1/1700000099.000100", "other connectord channel")
	f.apply(connector.Change{ConversationID: a.ID, RequireOpen: false, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "agent", SourceID: c1 + "1700000050.000100"}}})
	for _, tc := range []struct{ prefix, want string }{
		{c1, c1 + "1700000005.000100"},
		{c2, c2 + "1700000009.000100"},
		{"C3/", ""},
		{"C", c2 + "1700000009.000100"},
	} {
		got, err := f.s.NewestSourceID(f.ctx, chSlack, tc.prefix)
		if err != nil || got != tc.want {
			f.t.Errorf("NewestSourceID(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
	if _, err := f.s.NewestSourceID(f.ctx, chSlack, ""); err == nil {
		f.t.Error("NewestSourceID with an empty prefix: no error")
	}
}

// WaitingBefore lists a conversation's lines to the agent still stored
// below an id, by id: not sent ones, not lines to the customer, not other
// conversations'.
func testWaitingBefore(f *fixture) {
	a1 := f.inbound(chSMS, alice, "SM1", "one").Message
	a2 := f.inbound(chSMS, alice, "SM2", "two").Message
	f.inbound(chSMS, bob, "SM3", "bob's")
	a3 := f.inbound(chSMS, alice, "SM4", "three").Message
	f.apply(connector.Change{ConversationID: a1.ConversationID,
		Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "hi", SourceID: "L1"}}})
	if err := f.s.MarkSent(f.ctx, a1.ID, ""); err != nil {
		f.t.Fatal(err)
	}
	got, err := f.s.WaitingBefore(f.ctx, a1.ConversationID, a3.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.diff("waiting before the third line", []int64{a2.ID}, ids(got))
	if got, err = f.s.WaitingBefore(f.ctx, a1.ConversationID, a2.ID); err != nil || len(got) != 0 {
		f.t.Errorf("WaitingBefore(the second line) = %v, %v; want none (the first was sent)", ids(got), err)
	}
}

// WaitingBefore follows every way a line to the agent starts or stops
// waiting: a store may answer it from memory, so each one must reach it.
func testWaitingFollowsChanges(f *fixture) {
	waiting := func(what string, convID int64, want ...int64) {
		f.t.Helper()
		got, err := f.s.WaitingBefore(f.ctx, convID, 1<<62)
		if err != nil {
			f.t.Fatalf("%s: WaitingBefore: %v", what, err)
		}
		f.diff(what, append([]int64{}, want...), ids(got))
	}
	a1 := f.inbound(chSMS, alice, "SM1", "one").Message
	a2 := f.inbound(chSMS, alice, "SM2", "two").Message
	a3 := f.inbound(chSMS, alice, "SM3", "three").Message
	conv := a1.ConversationID
	waiting("three lines stored", conv, a1.ID, a2.ID, a3.ID)

	f.markFailed(a1.ID, "refused")
	waiting("the first failed", conv, a2.ID, a3.ID)
	f.markFailed(a2.ID, "refused")
	f.markFailed(a3.ID, "refused")
	waiting("all three failed", conv)
	if _, err := f.s.RetryMessage(f.ctx, a1.ID); err != nil {
		f.t.Fatal(err)
	}
	waiting("the first retried", conv, a1.ID)
	for _, m := range []*connector.Message{a2, a3} {
		if _, err := f.s.RetryMessage(f.ctx, m.ID); err != nil {
			f.t.Fatal(err)
		}
	}
	waiting("all three retried", conv, a1.ID, a2.ID, a3.ID)

	// A line to the customer never waits for the agent, whatever its state.
	out := f.toCustomer(conv, "L1", "hello")
	waiting("a line to the customer added", conv, a1.ID, a2.ID, a3.ID)
	f.markSent(out.ID, "SMout")
	f.updateDelivery(chSMS, "SMout", connector.DeliveryFailed, "30003")
	if _, err := f.s.RetryMessage(f.ctx, out.ID); err != nil {
		f.t.Fatal(err)
	}
	waiting("a line to the customer retried", conv, a1.ID, a2.ID, a3.ID)

	f.markSent(a2.ID, "")
	waiting("the second sent", conv, a1.ID, a3.ID)

	// Ending the conversation with a move takes the waiting lines along.
	res := f.apply(connector.Change{ConversationID: conv, State: connector.StateEnded, EndReason: "agent",
		Move: &connector.Move{Vendor: vendor}})
	if res.Next == nil {
		f.t.Fatal("ended with two lines waiting and a Move: no next conversation")
	}
	waiting("the ended conversation", conv)
	waiting("the next conversation", res.Next.ID, a1.ID, a3.ID)

	// FailPending fails what waits, except an end line.
	end := f.apply(connector.Change{ConversationID: res.Next.ID, Messages: []*connector.Message{
		{Direction: connector.ToAgent, Kind: connector.KindEnd}}}).Added[0]
	f.apply(connector.Change{ConversationID: res.Next.ID, FailPending: "vendor gone"})
	waiting("after FailPending", res.Next.ID, end.ID)
	f.markSent(end.ID, "")
	waiting("the end line sent", res.Next.ID)

	// A conversation's lines are its own.
	b := f.inbound(chSMS, bob, "SM4", "bob's").Message
	waiting("bob's conversation", b.ConversationID, b.ID)
	waiting("alice's, after bob wrote", res.Next.ID)
}
