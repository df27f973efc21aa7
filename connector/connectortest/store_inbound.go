package connectortest

import (
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectord/connectord/connector"
)

var inboundTests = []storeTest{
	{"InboundCreatesPendingConversation", testInboundCreates},
	{"InboundAppendsToOpenConversation", testInboundAppends},
	{"InboundDuplicate", testInboundDuplicate},
	{"InboundDuplicateScopedByChannel", testInboundDuplicateChannel},
	{"InboundDuplicateAfterEnd", testInboundDuplicateAfterEnd},
	{"InboundEndedNotReused", testInboundEndedNotReused},
	{"InboundProfile", testInboundProfile},
	{"InboundAttachments", testInboundAttachments},
}

// ignoreTimes leaves times out of a comparison whose times a test checks apart.
var ignoreTimes = cmpopts.IgnoreFields(connector.Message{}, "CreatedAt", "UpdatedAt")

func testInboundCreates(f *fixture) {
	res := f.inbound(chSMS, alice, "SM1", "hello")
	if !res.Created || res.Duplicate || res.Message == nil {
		f.t.Fatalf("first inbound: Created=%v Duplicate=%v Message=%v, want a created conversation and a message",
			res.Created, res.Duplicate, res.Message)
	}
	c := res.Conversation
	if c.ID == 0 || c.CreatedAt.IsZero() || c.UpdatedAt.IsZero() || c.LastActivity.IsZero() {
		f.t.Errorf("conversation id or times not filled in: %+v", c)
	}
	want := &connector.Conversation{ID: c.ID, Channel: chSMS, Customer: alice, Vendor: vendor,
		State: connector.StatePending, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, LastActivity: c.LastActivity}
	f.diff("created conversation", want, c)
	f.diff("conversation as read", c, f.conversation(c.ID))

	m := res.Message
	if m.ID == 0 || m.CreatedAt.IsZero() || m.UpdatedAt.IsZero() {
		f.t.Errorf("message id or times not filled in: %+v", m)
	}
	wantMsg := &connector.Message{ID: m.ID, ConversationID: c.ID, Direction: connector.ToAgent,
		Kind: connector.KindText, Text: "hello", SourceID: "SM1", State: connector.DeliveryStored}
	f.diff("recorded message", wantMsg, m, ignoreTimes)
	f.diff("messages as read", []*connector.Message{m}, f.messages(c.ID))
}

func testInboundAppends(f *fixture) {
	first := f.inbound(chSMS, alice, "SM1", "one")
	tick()
	second := f.inbound(chSMS, alice, "SM2", "two")
	if second.Created || second.Duplicate {
		f.t.Fatalf("second inbound: Created=%v Duplicate=%v, want neither", second.Created, second.Duplicate)
	}
	if second.Conversation.ID != first.Conversation.ID {
		f.t.Fatalf("second inbound went to conversation %d, want the open one %d",
			second.Conversation.ID, first.Conversation.ID)
	}
	if !second.Conversation.LastActivity.After(first.Conversation.LastActivity) {
		f.t.Errorf("LastActivity %v not after the first message's %v",
			second.Conversation.LastActivity, first.Conversation.LastActivity)
	}
	if second.Message.ID <= first.Message.ID {
		f.t.Errorf("message ids %d then %d, want increasing", first.Message.ID, second.Message.ID)
	}
	f.diff("conversation as read", second.Conversation, f.conversation(first.Conversation.ID))
	f.diff("messages", []*connector.Message{first.Message, second.Message}, f.messages(first.Conversation.ID))

	other := f.inbound(chSMS, bob, "SM3", "another customer")
	if !other.Created || other.Conversation.ID == first.Conversation.ID {
		f.t.Errorf("another customer: Created=%v conversation %d, want a new conversation",
			other.Created, other.Conversation.ID)
	}
}

func testInboundDuplicate(f *fixture) {
	first := f.inbound(chSMS, alice, "SM1", "hello")
	dup := f.inbound(chSMS, alice, "SM1", "hello again")
	if !dup.Duplicate || dup.Created {
		f.t.Fatalf("repeated SourceID: Duplicate=%v Created=%v, want a duplicate", dup.Duplicate, dup.Created)
	}
	// The message stored before is reported as it stands, so that a caller
	// can queue it again while it waits.
	f.diff("duplicate reports the stored message", first.Message, dup.Message)
	if dup.Conversation.ID != first.Conversation.ID {
		f.t.Errorf("duplicate reports conversation %d, want %d", dup.Conversation.ID, first.Conversation.ID)
	}
	// Even from another customer address, a channel's source id is recorded once.
	if res := f.inbound(chSMS, bob, "SM1", "spoofed"); !res.Duplicate {
		f.t.Errorf("same SourceID from another customer: Duplicate=false, want true")
	}
	f.diff("messages after duplicates", []*connector.Message{first.Message}, f.messages(first.Conversation.ID))
	if open, err := f.s.OpenConversations(f.ctx); err != nil || len(open) != 1 {
		f.t.Errorf("OpenConversations after duplicates: %d conversations, err %v; want 1", len(open), err)
	}
}

func testInboundDuplicateChannel(f *fixture) {
	sms := f.inbound(chSMS, alice, "X1", "by sms")
	slack := f.inbound(chSlack, alice, "X1", "by slack")
	if slack.Duplicate || !slack.Created {
		f.t.Fatalf("same SourceID on another channel: Duplicate=%v Created=%v, want a new message and conversation",
			slack.Duplicate, slack.Created)
	}
	if slack.Conversation.ID == sms.Conversation.ID || slack.Conversation.Channel != chSlack {
		f.t.Errorf("slack message went to conversation %+v", slack.Conversation)
	}
}

func testInboundDuplicateAfterEnd(f *fixture) {
	first := f.inbound(chSMS, alice, "SM1", "hello")
	f.end(first.Conversation.ID, "agent")
	dup := f.inbound(chSMS, alice, "SM1", "hello (Twilio retry)")
	if !dup.Duplicate || dup.Created {
		f.t.Fatalf("retry after the conversation ended: Duplicate=%v Created=%v, want a duplicate", dup.Duplicate, dup.Created)
	}
	if open, err := f.s.OpenConversations(f.ctx); err != nil || len(open) != 0 {
		f.t.Errorf("a duplicate opened a conversation: %d open, err %v", len(open), err)
	}
}

func testInboundEndedNotReused(f *fixture) {
	first := f.inbound(chSMS, alice, "SM1", "hello")
	f.end(first.Conversation.ID, "customer")
	next := f.inbound(chSMS, alice, "SM2", "me again")
	if !next.Created || next.Conversation.ID == first.Conversation.ID {
		f.t.Fatalf("after end: Created=%v conversation %d, want a new conversation (old %d)",
			next.Created, next.Conversation.ID, first.Conversation.ID)
	}
	if next.Conversation.State != connector.StatePending {
		f.t.Errorf("new conversation state %q, want pending", next.Conversation.State)
	}
	old := f.conversation(first.Conversation.ID)
	if old.State != connector.StateEnded || old.EndReason != "customer" {
		f.t.Errorf("old conversation %q (%q), want ended (customer)", old.State, old.EndReason)
	}
	if got := ids(f.messages(first.Conversation.ID)); !cmp.Equal(got, []int64{first.Message.ID}) {
		f.t.Errorf("old conversation messages %v, want only %d", got, first.Message.ID)
	}
	f.diff("messages of the new conversation", []*connector.Message{next.Message}, f.messages(next.Conversation.ID))
}

func testInboundProfile(f *fixture) {
	p := connector.Profile{Name: "Alice", Email: "alice@example.com"}
	first := f.inboundWith(connector.Inbound{Channel: chSMS, Customer: alice, SourceID: "SM1", Text: "hi", Profile: p})
	f.diff("profile on creation", p, first.Conversation.Profile)
	f.diff("profile as read", p, f.conversation(first.Conversation.ID).Profile)

	kept := f.inbound(chSMS, alice, "SM2", "no profile this time")
	f.diff("profile kept when none is sent", p, kept.Conversation.Profile)
	f.diff("profile kept, as read", p, f.conversation(first.Conversation.ID).Profile)

	p2 := connector.Profile{Name: "Alice B", Language: "de"}
	changed := f.inboundWith(connector.Inbound{Channel: chSMS, Customer: alice, SourceID: "SM3", Text: "x", Profile: p2})
	f.diff("profile replaced", p2, changed.Conversation.Profile)
	f.diff("profile replaced, as read", p2, f.conversation(first.Conversation.ID).Profile)
}

func testInboundAttachments(f *fixture) {
	att := []connector.Attachment{
		{URL: "https://media.example.com/1.jpg", Name: "1.jpg", ContentType: "image/jpeg", Size: 1234},
		{URL: "https://media.example.com/2.pdf"},
	}
	res := f.inboundWith(connector.Inbound{Channel: chSMS, Customer: alice, SourceID: "MM1", Attachments: att})
	f.diff("attachments returned", att, res.Message.Attachments)
	f.diff("attachments as read", att, f.messages(res.Conversation.ID)[0].Attachments)
}
