package connectortest

import (
	"time"

	"github.com/connectord/connectord/connector"
)

var optOutTests = []storeTest{
	{"OptOutPerPair", testOptOutPerPair},
	{"LastReceived", testLastReceived},
}

func (f *fixture) optedOut(channel, sender, customer string) bool {
	f.t.Helper()
	out, err := f.s.OptedOut(f.ctx, channel, sender, customer)
	if err != nil {
		f.t.Fatalf("OptedOut(%s, %s, %s): %v", channel, sender, customer, err)
	}
	return out
}

func (f *fixture) setOptOut(channel, sender, customer string, out bool) {
	f.t.Helper()
	if err := f.s.SetOptOut(f.ctx, channel, sender, customer, out); err != nil {
		f.t.Fatalf("SetOptOut(%s, %s, %s, %v): %v", channel, sender, customer, out, err)
	}
}

// An opt-out holds for one (channel, sender, customer) and nothing else;
// recording it twice or opting in twice is harmless.
func testOptOutPerPair(f *fixture) {
	const us, other = "+15551230000", "MG0123"
	if f.optedOut(chSMS, us, alice) {
		f.t.Fatal("opted out before anything was recorded")
	}
	f.setOptOut(chSMS, us, alice, true)
	f.setOptOut(chSMS, us, alice, true)
	for _, tc := range []struct {
		channel, sender, customer string
		want                      bool
	}{
		{chSMS, us, alice, true},
		{chSMS, us, bob, false},
		{chSMS, other, alice, false},
		{chSlack, us, alice, false},
	} {
		if got := f.optedOut(tc.channel, tc.sender, tc.customer); got != tc.want {
			f.t.Errorf("OptedOut(%s, %s, %s) = %v, want %v", tc.channel, tc.sender, tc.customer, got, tc.want)
		}
	}
	f.setOptOut(chSMS, us, alice, false)
	f.setOptOut(chSMS, us, alice, false)
	if f.optedOut(chSMS, us, alice) {
		f.t.Error("still opted out after opting back in")
	}
}

// LastReceived finds the channel's newest customer message, in ended
// conversations too, and ignores agent lines and other channels.
func testLastReceived(f *fixture) {
	if id, at, err := f.s.LastReceived(f.ctx, chSMS); err != nil || id != "" || !at.IsZero() {
		f.t.Fatalf("LastReceived on an empty store = %q, %v, %v; want nothing", id, at, err)
	}
	first := f.inbound(chSMS, alice, "SMa", "one")
	f.apply(connector.Change{ConversationID: first.Conversation.ID, State: connector.StateEnded, EndReason: "agent",
		Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "bye", SourceID: "L1"}}})
	before := time.Now()
	f.inbound(chSMS, bob, "SMb", "two")
	f.inbound(chSlack, alice, "C1/1.2", "elsewhere")
	id, at, err := f.s.LastReceived(f.ctx, chSMS)
	if err != nil {
		f.t.Fatal(err)
	}
	if id != "SMb" || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		f.t.Errorf("LastReceived = %q at %v, want SMb at about %v", id, at, before)
	}
}
