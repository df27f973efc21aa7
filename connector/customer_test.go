package connector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

// receive hands the router one customer message.
func (h *harness) receive(in connector.Inbound) {
	h.t.Helper()
	in.Channel = "sms.main"
	if err := h.router.Receive(context.Background(), in); err != nil {
		h.t.Fatalf("receive %s: %v", in.SourceID, err)
	}
}

func TestCustomerEnds(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "M1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	for range 3 { // the same request delivered three times ends it once
		h.receive(connector.Inbound{Customer: alice, Text: "end chat", SourceID: "M2", End: true})
	}
	got := texts(h.toAgent.wait(t, 2, 5*time.Second))
	if diff := cmp.Diff([]string{"text:hello", "end:customer"}, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	toUser := texts(h.toUser.wait(t, 2, 5*time.Second))
	if n := hasPrefix(toUser, "notice:"+defaults.EndedByCustomer); n != 1 {
		t.Errorf("ended-by-customer notice sent %d times, want 1: %q", n, toUser)
	}
	cs, err := h.store.OpenConversations(context.Background())
	if err != nil || len(cs) != 0 {
		t.Errorf("open conversations after end = %v, %v; want none", cs, err)
	}
	// With nothing open, the keyword neither opens a conversation nor reaches anyone.
	h.receive(connector.Inbound{Customer: alice, Text: "end chat", SourceID: "M3", End: true})
	h.idle()
	if n := len(h.toAgent.all()); n != 2 {
		t.Errorf("to agent after a keyword with nothing open: %d entries, want 2", n)
	}
	if cs, _ := h.store.OpenConversations(context.Background()); len(cs) != 0 {
		t.Errorf("the keyword opened a conversation: %+v", cs[0])
	}
}

// A customer who opts out (an SMS STOP) ends the chat: the agent is told
// why before the vendor hears of the end, and the customer, who may not be
// messaged any more, is sent nothing.
func TestCustomerOptsOut(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "M1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	before := len(h.toUser.wait(t, 1, 5*time.Second)) // the queued notice
	for range 2 {
		h.receive(connector.Inbound{Customer: alice, Text: "STOP", SourceID: "M2", End: true, OptedOut: true})
	}
	got := texts(h.toAgent.wait(t, 3, 5*time.Second))
	want := []string{"text:hello", "text:" + defaults.OptedOutAgent, "end:customer opted out"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	h.idle()
	if after := h.toUser.all(); len(after) != before {
		t.Errorf("the customer who opted out was sent %q", texts(after[before:]))
	}
	if cs, err := h.store.OpenConversations(context.Background()); err != nil || len(cs) != 0 {
		t.Errorf("open conversations after the opt-out = %v, %v; want none", cs, err)
	}
}

func TestCustomerEndsPending(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.vendor.onOpen = func(*connector.Conversation) error { return errors.New("vendor down") }
	})
	h.inbound(alice, "M1", "hello")
	waitFor(t, "an open attempt", func() bool { h.vendor.mu.Lock(); defer h.vendor.mu.Unlock(); return h.vendor.opens > 0 })
	h.receive(connector.Inbound{Customer: alice, Text: "end chat", SourceID: "M2", End: true})
	h.toUser.wait(t, 1, 5*time.Second)
	ms, err := h.store.Messages(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Kind == connector.KindEnd {
			t.Errorf("a conversation the vendor never opened got an end for the vendor: %+v", m)
		}
		if m.Kind == connector.KindText && m.State != connector.DeliveryFailed {
			t.Errorf("pending customer text left %s, want failed", m.State)
		}
	}
}

func TestNewConversationInSamePlaceIsAnnounced(t *testing.T) {
	h := newHarness(t, nil)
	h.receive(connector.Inbound{Customer: alice, Text: "first", SourceID: "M1"})
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventEnded})
	h.receive(connector.Inbound{Customer: alice, Text: "again", SourceID: "M2", Continues: true})
	h.receive(connector.Inbound{Customer: alice, Text: "and more", SourceID: "M3", Continues: true})
	h.toAgent.wait(t, 3, 5*time.Second)
	h.toUser.wait(t, 4, 5*time.Second)
	// Only the message that opened the new conversation announces it.
	want := []string{"notice:" + defaults.Queued, "notice:" + defaults.EndedByAgent,
		"notice:" + defaults.NewConversation, "notice:" + defaults.Queued}
	h.idle()
	if diff := cmp.Diff(want, texts(h.toUser.all())); diff != "" {
		t.Errorf("to customer (-want +got):\n%s", diff)
	}
}

// markingChannel is a fake channel that shows state: it records notice keys.
type markingChannel struct {
	*fakeChannel
	keys *recorder
}

func (m markingChannel) MarksNotices() {}

func (m markingChannel) Send(ctx context.Context, to string, msg *connector.Message) (string, error) {
	if msg.Kind == connector.KindNotice {
		m.keys.add(sent{To: to, Kind: msg.Kind, Text: msg.Notice})
	}
	return m.fakeChannel.Send(ctx, to, msg)
}

func TestNoticeMarkerGetsEveryNotice(t *testing.T) {
	keys := newRecorder()
	h := newHarness(t, func(h *harness) {
		h.notices.Queued = "" // say nothing, but a marking channel still shows the state
		h.asChannel = markingChannel{h.channel, keys}
	})
	h.inbound(alice, "M1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.event(alice, connector.Event{Type: connector.EventJoined, Agent: "Bob"})
	h.event(alice, connector.Event{Type: connector.EventEnded})
	got := texts(keys.wait(t, 3, 5*time.Second))
	want := []string{"notice:queued", "notice:agent_joined", "notice:ended_by_agent"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notice keys (-want +got):\n%s", diff)
	}
	if toUser := texts(h.toUser.all()); toUser[0] != "notice:" {
		t.Errorf("first notice text = %q, want empty (template empty)", toUser[0])
	}
}

func TestOpenCustomersListsCursors(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(alice, "M1", "one")
	h.inbound(alice, "M2", "two")
	h.inbound("+15550000002", "M3", "other")
	h.toAgent.wait(t, 3, 5*time.Second)
	h.event("+15550000002", connector.Event{Type: connector.EventEnded})
	got, err := h.router.OpenCustomers(context.Background(), "sms.main")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Customer != alice || got[0].LastSourceID != "M2" {
		t.Errorf("OpenCustomers = %+v, want alice at M2 only", got)
	}
	if other, _ := h.router.OpenCustomers(context.Background(), "sms.other"); len(other) != 0 {
		t.Errorf("another channel lists %+v", other)
	}
}

func TestVendorStartedMessage(t *testing.T) {
	h := newHarness(t, nil)
	o := connector.Outbound{Vendor: "whoson.sales", Channel: "sms.main", Customer: alice, Text: "Sale today", SourceID: "C1"}
	for range 2 {
		if err := h.router.Outbound(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	h.toUser.wait(t, 1, 5*time.Second)
	h.inbound(alice, "M1", "tell me more")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.idle()
	got := texts(h.toUser.all())
	if n := hasPrefix(got, "text:Sale today"); n != 1 {
		t.Errorf("campaign message sent %d times, want once: %q", n, got)
	}
	if diff := cmp.Diff([]string{"text:tell me more"}, texts(h.toAgent.all())); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	bad := o
	bad.Channel, bad.SourceID = "slack.nowhere", "C2"
	if err := h.router.Outbound(context.Background(), bad); !connector.IsPermanent(err) {
		t.Errorf("to an unknown channel: %v, want a permanent error", err)
	}
}

func TestKindBuildErrorIsNoTypedNil(t *testing.T) {
	k := connector.NewChannelKind("fake", func(connector.ChannelEnv) (*fakeChannel, error) {
		return nil, errors.New("bad config")
	}, nil)
	if ch, err := k.Build(connector.ChannelEnv{}); ch != nil || err == nil {
		t.Errorf("Build = %#v, %v; want a nil Channel and the error", ch, err)
	}
	vk := connector.NewVendorKind("fake", func(connector.VendorEnv) (*fakeVendor, error) {
		return nil, errors.New("bad config")
	}, nil)
	if v, err := vk.Build(connector.VendorEnv{}); v != nil || err == nil {
		t.Errorf("Build = %#v, %v; want a nil Vendor and the error", v, err)
	}
}
