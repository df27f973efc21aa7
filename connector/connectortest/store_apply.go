package connectortest

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/connectord/connectord/connector"
)

var applyTests = []storeTest{
	{"ApplyUnknownConversation", testApplyUnknown},
	{"ApplyStateTransitions", testApplyStates},
	{"ApplyEndedIsFinal", testApplyEndedFinal},
	{"ApplyRequireOpen", testApplyRequireOpen},
	{"ApplyAgentAndSession", testApplyAgentAndSession},
	{"ApplyTouch", testApplyTouch},
	{"ApplyLeaveMessage", testApplyLeaveMessage},
	{"ApplyMessagesInOrder", testApplyMessages},
	{"ApplyMessageDeduplication", testApplyDedup},
	{"ApplyFailPending", testApplyFailPending},
	{"ApplyMoveWaitingLines", testApplyMove},
	{"ApplyMoveNothingWaiting", testApplyMoveNothing},
	{"ApplyReopen", testApplyReopen},
}

// The lines still waiting move, ids unchanged and in order, to a new pending
// conversation of the same customer; sent lines, notices, end requests and
// another customer's lines stay.
func testApplyMove(f *fixture) {
	sent := f.inbound(chSMS, alice, "SM1", "one")
	id := sent.Conversation.ID
	f.markSent(sent.Message.ID, "")
	w1 := f.inbound(chSMS, alice, "SM2", "two")
	w2 := f.inbound(chSMS, alice, "SM3", "three")
	f.apply(connector.Change{ConversationID: id, Session: json.RawMessage(`{"chat":1}`), Agent: ptr("Ann"),
		Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "n"},
			{Direction: connector.ToAgent, Kind: connector.KindEnd, Text: "end"}}})
	bobs := f.inbound(chSMS, bob, "SM4", "bob's")
	res := f.apply(connector.Change{ConversationID: id, State: connector.StateEnded, EndReason: "agent",
		Move: &connector.Move{Vendor: "cention.cloud", Messages: []*connector.Message{
			{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "a new conversation"}}}})
	if res.Conversation.State != connector.StateEnded || res.Next == nil {
		f.t.Fatalf("end with Move: state %q, next %+v", res.Conversation.State, res.Next)
	}
	n := res.Next
	if n.ID == id || n.State != connector.StatePending || n.Channel != chSMS || n.Customer != alice ||
		n.Vendor != "cention.cloud" || len(n.Session) != 0 || n.Agent != "" {
		f.t.Errorf("next conversation %+v, want a new pending one of alice on %s routed to cention.cloud", n, chSMS)
	}
	f.diff("next conversation as read", n, f.conversation(n.ID))
	f.diff("moved ids", []int64{w1.Message.ID, w2.Message.ID}, ids(res.Moved))
	for _, m := range res.Moved {
		if m.ConversationID != n.ID || m.State != connector.DeliveryStored {
			f.t.Errorf("moved %+v: want conversation %d and stored", m, n.ID)
		}
	}
	if len(res.Added) != 1 || res.Added[0].ConversationID != id || res.Added[0].Text != "a new conversation" {
		f.t.Errorf("Added %+v, want the Move's notice in the ended conversation", res.Added)
	}
	f.diff("next conversation's messages", res.Moved, f.messages(n.ID))
	kinds := map[connector.Kind]int{}
	for _, m := range f.messages(id) {
		kinds[m.Kind]++
	}
	f.diff("what stays in the ended conversation", map[connector.Kind]int{connector.KindText: 1, connector.KindNotice: 2, connector.KindEnd: 1}, kinds)
	if open, err := f.s.FindOpen(f.ctx, chSMS, alice); err != nil || open.ID != n.ID {
		f.t.Errorf("FindOpen after the move: %+v, %v; want the next conversation", open, err)
	}
	if st := f.message(bobs.Conversation.ID, bobs.Message.ID).State; st != connector.DeliveryStored {
		f.t.Errorf("another customer's line is %q", st)
	}
	// The customer's next message joins the next conversation.
	if got := f.inbound(chSMS, alice, "SM5", "four"); got.Created || got.Conversation.ID != n.ID {
		f.t.Errorf("a later message went to conversation %d (created %v), want %d", got.Conversation.ID, got.Created, n.ID)
	}
}

// Nothing waiting: no conversation is created. An already ended
// conversation moves nothing either.
func testApplyMoveNothing(f *fixture) {
	in := f.inbound(chSMS, alice, "SM1", "one")
	f.markSent(in.Message.ID, "")
	mv := &connector.Move{Vendor: vendor, Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "x"}}}
	res := f.apply(connector.Change{ConversationID: in.Conversation.ID, State: connector.StateEnded, EndReason: "agent", Move: mv})
	if res.Next != nil || len(res.Moved) != 0 || len(res.Added) != 0 {
		f.t.Errorf("nothing waited, yet %+v", res)
	}
	if _, err := f.s.FindOpen(f.ctx, chSMS, alice); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("FindOpen: %v, want ErrNotFound", err)
	}
	second := f.inbound(chSMS, bob, "SM2", "two")
	f.end(second.Conversation.ID, "agent")
	res = f.apply(connector.Change{ConversationID: second.Conversation.ID, State: connector.StateEnded, EndReason: "again", Move: mv})
	if res.Next != nil {
		f.t.Errorf("an ended conversation moved its lines: %+v", res.Next)
	}
}

// Reopen clears the session, stamps ReopenedAt and owes the context line;
// marking that line sent (or failed) settles it.
func testApplyReopen(f *fixture) {
	in := f.inbound(chSMS, alice, "SM1", "one")
	id := in.Conversation.ID
	f.apply(connector.Change{ConversationID: id, State: connector.StateActive, Session: json.RawMessage(`{"chat":1}`)})
	before := time.Now()
	res := f.apply(connector.Change{ConversationID: id, ClearSession: true, Reopen: true, State: connector.StateQueued,
		Messages: []*connector.Message{
			{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "reconnected"},
			{Direction: connector.ToAgent, Kind: connector.KindContext, Text: "context"}}})
	c := res.Conversation
	if len(c.Session) != 0 || c.State != connector.StateQueued || c.ReopenedAt.Before(before.Add(-time.Second)) {
		f.t.Errorf("after Reopen: session %s, state %q, reopened at %v", c.Session, c.State, c.ReopenedAt)
	}
	if len(res.Added) != 2 || c.ContextMessage != res.Added[1].ID {
		f.t.Fatalf("ContextMessage %d, want the context line of %+v", c.ContextMessage, res.Added)
	}
	f.diff("reopened conversation as read", c, f.conversation(id))
	f.markSent(res.Added[0].ID, "")
	if got := f.conversation(id).ContextMessage; got != c.ContextMessage {
		f.t.Errorf("another message sent cleared ContextMessage (%d)", got)
	}
	f.markSent(c.ContextMessage, "")
	if got := f.conversation(id).ContextMessage; got != 0 {
		f.t.Errorf("context line sent, ContextMessage still %d", got)
	}
	res = f.apply(connector.Change{ConversationID: id, Reopen: true,
		Messages: []*connector.Message{{Direction: connector.ToAgent, Kind: connector.KindContext, Text: "again"}}})
	if err := f.s.MarkFailed(f.ctx, res.Conversation.ContextMessage, "no"); err != nil {
		f.t.Fatal(err)
	}
	if got := f.conversation(id).ContextMessage; got != 0 {
		f.t.Errorf("context line failed, ContextMessage still %d", got)
	}
	m, err := f.s.Message(f.ctx, res.Added[0].ID)
	if err != nil || m.State != connector.DeliveryFailed || m.Text != "again" {
		f.t.Errorf("Message(%d) = %+v, %v", res.Added[0].ID, m, err)
	}
	if _, err := f.s.Message(f.ctx, 987654); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("Message of an unknown id: %v, want ErrNotFound", err)
	}
}

func testApplyUnknown(f *fixture) {
	_, err := f.s.Apply(f.ctx, connector.Change{ConversationID: 424242, State: connector.StateQueued})
	if !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("Apply to an unknown conversation: %v, want ErrNotFound", err)
	}
}

func testApplyStates(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	for _, st := range []connector.State{connector.StateQueued, connector.StateActive, connector.StateQueued, connector.StateActive} {
		res := f.apply(connector.Change{ConversationID: id, State: st})
		if res.Conversation.State != st || res.Skipped {
			f.t.Fatalf("Apply(State %s): state %q Skipped=%v", st, res.Conversation.State, res.Skipped)
		}
		f.diff("conversation after "+string(st), res.Conversation, f.conversation(id))
	}
	// A change without State leaves it.
	if res := f.apply(connector.Change{ConversationID: id}); res.Conversation.State != connector.StateActive {
		f.t.Errorf("empty change moved the state to %q", res.Conversation.State)
	}
	res := f.apply(connector.Change{ConversationID: id, State: connector.StateEnded, EndReason: "agent"})
	if res.Conversation.State != connector.StateEnded || res.Conversation.EndReason != "agent" {
		f.t.Errorf("end: state %q reason %q, want ended (agent)", res.Conversation.State, res.Conversation.EndReason)
	}
	f.diff("ended conversation", res.Conversation, f.conversation(id))
}

func testApplyEndedFinal(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	f.end(id, "timeout")
	for _, st := range []connector.State{connector.StatePending, connector.StateQueued, connector.StateActive, connector.StateEnded} {
		res := f.apply(connector.Change{ConversationID: id, State: st, EndReason: "again"})
		if res.Skipped {
			f.t.Errorf("Apply(State %s) without RequireOpen reported Skipped", st)
		}
		c := f.conversation(id)
		if c.State != connector.StateEnded || c.EndReason != "timeout" {
			f.t.Errorf("after Apply(State %s) to an ended conversation: %q (%q), want ended (timeout)", st, c.State, c.EndReason)
		}
		f.diff("result of Apply to an ended conversation", c, res.Conversation)
	}
	// The rest of a change still applies without RequireOpen.
	res := f.apply(connector.Change{ConversationID: id, Agent: ptr("Bea"), Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "bye"}}})
	if len(res.Added) != 1 || res.Conversation.Agent != "Bea" {
		f.t.Errorf("change to an ended conversation without RequireOpen: added %d, agent %q; want 1 and Bea",
			len(res.Added), res.Conversation.Agent)
	}
}

func testApplyRequireOpen(f *fixture) {
	first := f.inbound(chSMS, alice, "SM1", "hi")
	id := first.Conversation.ID
	open := f.apply(connector.Change{ConversationID: id, RequireOpen: true, State: connector.StateQueued})
	if open.Skipped || open.Conversation.State != connector.StateQueued {
		f.t.Fatalf("RequireOpen on an open conversation: Skipped=%v state %q", open.Skipped, open.Conversation.State)
	}
	f.end(id, "agent")
	before := f.conversation(id)
	res := f.apply(connector.Change{ConversationID: id, RequireOpen: true, State: connector.StateActive,
		Agent: ptr("Carl"), Session: json.RawMessage(`{"x":1}`), LeaveMessage: true, Touch: true,
		FailPending: "nope", Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "late"}}})
	if !res.Skipped || len(res.Added) != 0 || len(res.Failed) != 0 {
		f.t.Errorf("RequireOpen on an ended conversation: Skipped=%v Added=%d Failed=%v, want skipped and nothing done",
			res.Skipped, len(res.Added), res.Failed)
	}
	f.diff("conversation after a skipped change", before, f.conversation(id))
	f.diff("skipped change reports the conversation", before, res.Conversation)
	f.diff("messages after a skipped change", []*connector.Message{f.message(id, first.Message.ID)}, f.messages(id))
}

func testApplyAgentAndSession(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	s1 := json.RawMessage(`{"chat":"c-1","token":"t"}`)
	res := f.apply(connector.Change{ConversationID: id, Agent: ptr("Alma"), Session: s1})
	check := func(step, agent string, session json.RawMessage, got *connector.Conversation) {
		f.t.Helper()
		if got.Agent != agent {
			f.t.Errorf("%s: agent %q, want %q", step, got.Agent, agent)
		}
		if string(got.Session) != string(session) {
			f.t.Errorf("%s: session %s, want %s", step, got.Session, session)
		}
	}
	check("set", "Alma", s1, res.Conversation)
	check("set, as read", "Alma", s1, f.conversation(id))

	res = f.apply(connector.Change{ConversationID: id, State: connector.StateActive})
	check("nil Agent and Session keep them", "Alma", s1, res.Conversation)

	s2 := json.RawMessage(`{"chat":"c-2"}`)
	res = f.apply(connector.Change{ConversationID: id, Agent: ptr("Ben"), Session: s2})
	check("replaced", "Ben", s2, res.Conversation)
	check("replaced, as read", "Ben", s2, f.conversation(id))

	res = f.apply(connector.Change{ConversationID: id, Agent: ptr("")})
	check("agent cleared", "", s2, res.Conversation)
	check("agent cleared, as read", "", s2, f.conversation(id))
}

func testApplyTouch(f *fixture) {
	first := f.inbound(chSMS, alice, "SM1", "hi")
	id, before := first.Conversation.ID, first.Conversation.LastActivity
	tick()
	if res := f.apply(connector.Change{ConversationID: id, State: connector.StateQueued}); !res.Conversation.LastActivity.Equal(before) {
		f.t.Errorf("a change without Touch moved LastActivity from %v to %v", before, res.Conversation.LastActivity)
	}
	res := f.apply(connector.Change{ConversationID: id, Touch: true})
	if !res.Conversation.LastActivity.After(before) {
		f.t.Errorf("Touch: LastActivity %v, want after %v", res.Conversation.LastActivity, before)
	}
	if got := f.conversation(id).LastActivity; !got.Equal(res.Conversation.LastActivity) {
		f.t.Errorf("Touch: LastActivity read back %v, returned %v", got, res.Conversation.LastActivity)
	}
}

func testApplyLeaveMessage(f *fixture) {
	a := f.inbound(chSMS, alice, "SM1", "one")
	id := a.Conversation.ID
	f.inbound(chSMS, alice, "SM2", "two")
	other := f.inbound(chSMS, bob, "SM3", "someone else, later id") // a higher id elsewhere must not count
	if res := f.apply(connector.Change{ConversationID: id}); res.Conversation.LeaveMessageAfter != 0 {
		f.t.Fatalf("LeaveMessageAfter %d before any LeaveMessage", res.Conversation.LeaveMessageAfter)
	}
	res := f.apply(connector.Change{ConversationID: id, LeaveMessage: true, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "leave a message"}}})
	msgs := f.messages(id)
	want := msgs[len(msgs)-1].ID // the notice added by this very change: "at commit time"
	if res.Conversation.LeaveMessageAfter != want {
		f.t.Errorf("LeaveMessageAfter %d, want %d (highest id of the conversation; other conversation's %d)",
			res.Conversation.LeaveMessageAfter, want, other.Message.ID)
	}
	if got := f.conversation(id).LeaveMessageAfter; got != want {
		f.t.Errorf("LeaveMessageAfter read back %d, want %d", got, want)
	}
	later := f.inbound(chSMS, alice, "SM4", "left message")
	if later.Message.ID <= want || later.Conversation.LeaveMessageAfter != want {
		f.t.Errorf("a later message has id %d and LeaveMessageAfter %d; want above and unchanged %d",
			later.Message.ID, later.Conversation.LeaveMessageAfter, want)
	}
}

func testApplyMessages(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	in := []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "queued"},
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "<b>hi</b>", Format: connector.FormatHTML, SourceID: "v-1",
			Attachments: []connector.Attachment{{URL: "https://x.example/a.png", ContentType: "image/png"}}},
		{Direction: connector.ToAgent, Kind: connector.KindEnd, Text: "timeout"},
	}
	res := f.apply(connector.Change{ConversationID: id, Messages: in})
	if len(res.Added) != len(in) {
		f.t.Fatalf("added %d messages, want %d", len(res.Added), len(in))
	}
	var want []*connector.Message
	for i, m := range res.Added {
		if m.ID == 0 || m.CreatedAt.IsZero() || m.UpdatedAt.IsZero() {
			f.t.Errorf("added message %d: id or times not filled in: %+v", i, m)
		}
		if i > 0 && m.ID <= res.Added[i-1].ID {
			f.t.Errorf("added ids %v, want increasing in the order given", ids(res.Added))
		}
		w := *in[i]
		w.ID, w.ConversationID, w.State = m.ID, id, connector.DeliveryStored
		want = append(want, &w)
	}
	f.diff("added messages", want, res.Added, ignoreTimes)
	f.diff("messages as read", res.Added, f.messages(id)[1:])
}

func testApplyDedup(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	add := func(dir connector.Direction, sid, text string) []*connector.Message {
		f.t.Helper()
		return f.apply(connector.Change{ConversationID: id, Messages: []*connector.Message{
			{Direction: dir, Kind: connector.KindText, Text: text, SourceID: sid}}}).Added
	}
	first := add(connector.ToCustomer, "V1", "agent line")
	if len(first) != 1 {
		f.t.Fatalf("first V1: added %d, want 1", len(first))
	}
	if again := add(connector.ToCustomer, "V1", "agent line (redelivered)"); len(again) != 0 {
		f.t.Errorf("V1 again in the same direction: added %d, want 0", len(again))
	}
	if other := add(connector.ToAgent, "V1", "other direction"); len(other) != 1 {
		f.t.Errorf("V1 in the other direction: added %d, want 1", len(other))
	}
	if n := len(add(connector.ToCustomer, "", "no id")) + len(add(connector.ToCustomer, "", "no id")); n != 2 {
		f.t.Errorf("two messages without SourceID: added %d, want 2", n)
	}
	// Within one change: the second V2 is skipped, the rest kept in order.
	res := f.apply(connector.Change{ConversationID: id, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "a", SourceID: "V2"},
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "b", SourceID: "V2"},
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "c", SourceID: "V3"},
	}})
	var texts []string
	for _, m := range res.Added {
		texts = append(texts, m.Text)
	}
	f.diff("added within one change", []string{"a", "c"}, texts)
	// Another conversation may carry the same source id.
	bobID := f.inbound(chSMS, bob, "SM2", "hi").Conversation.ID
	res = f.apply(connector.Change{ConversationID: bobID, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "x", SourceID: "V1"}}})
	if len(res.Added) != 1 {
		f.t.Errorf("V1 in another conversation: added %d, want 1", len(res.Added))
	}
	if n := len(f.messages(id)); n != 7 {
		f.t.Errorf("conversation has %d messages, want 7", n)
	}
}

func testApplyFailPending(f *fixture) {
	in1 := f.inbound(chSMS, alice, "SM1", "one")
	id := in1.Conversation.ID
	in2 := f.inbound(chSMS, alice, "SM2", "two")
	sent := f.inbound(chSMS, alice, "SM3", "three")
	f.markSent(sent.Message.ID, "")
	added := f.apply(connector.Change{ConversationID: id, Messages: []*connector.Message{
		{Direction: connector.ToAgent, Kind: connector.KindEnd, Text: "end it"},
		{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "notice"},
		{Direction: connector.ToAgent, Kind: connector.KindLeaveMessage, Text: "left"},
	}}).Added
	endMsg, notice, left := added[0], added[1], added[2]
	otherConv := f.inbound(chSMS, bob, "SM4", "bob's")

	res := f.apply(connector.Change{ConversationID: id, State: connector.StateEnded, EndReason: "x", FailPending: "conversation ended"})
	f.diff("failed ids", []int64{in1.Message.ID, in2.Message.ID, left.ID}, ids(res.Failed))
	if len(res.Failed) > 0 && (res.Failed[0].Text != "one" || res.Failed[0].State != connector.DeliveryFailed) {
		f.t.Errorf("FailPending reports %+v, want the message as failed", res.Failed[0])
	}

	want := map[int64]connector.Delivery{
		in1.Message.ID: connector.DeliveryFailed, in2.Message.ID: connector.DeliveryFailed, left.ID: connector.DeliveryFailed,
		sent.Message.ID: connector.DeliverySent, endMsg.ID: connector.DeliveryStored, notice.ID: connector.DeliveryStored,
	}
	got := map[int64]connector.Delivery{}
	for _, m := range f.messages(id) {
		got[m.ID] = m.State
		if m.State == connector.DeliveryFailed && m.Reason != "conversation ended" {
			f.t.Errorf("message %d failed with reason %q, want %q", m.ID, m.Reason, "conversation ended")
		}
	}
	f.diff("states after FailPending", want, got)
	if st := f.message(otherConv.Conversation.ID, otherConv.Message.ID).State; st != connector.DeliveryStored {
		f.t.Errorf("another conversation's message is %q, want stored", st)
	}
	if res := f.apply(connector.Change{ConversationID: id, FailPending: "again"}); len(res.Failed) != 0 {
		f.t.Errorf("second FailPending failed %v, want none", res.Failed)
	}
}
