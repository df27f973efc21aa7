package connectortest

import (
	"errors"

	"github.com/connectord/connectord/connector"
)

var readTests = []storeTest{
	{"ConversationNotFound", testConversationNotFound},
	{"OpenConversations", testOpenConversations},
	{"MessagesInOrder", testMessagesOrder},
	{"Stats", testStats},
	{"Ping", testPing},
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
