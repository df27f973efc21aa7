package connectortest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/connectord/connectord/connector"
)

var optOutTests = []storeTest{
	{"OptOutPerPair", testOptOutPerPair},
	{"OptOutFailedWriteChangesNothing", testOptOutFailedWrite},
	{"OptOutSeenOnReturn", testOptOutSeenOnReturn},
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

// A SetOptOut that fails (its context canceled) leaves the answer as it
// was, either way.
func testOptOutFailedWrite(f *fixture) {
	const us = "+15551230000"
	canceled, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := f.s.SetOptOut(canceled, chSMS, us, alice, true); err == nil {
		f.t.Fatal("SetOptOut with a canceled context succeeded")
	}
	if f.optedOut(chSMS, us, alice) {
		f.t.Error("opted out by a SetOptOut that failed")
	}
	f.setOptOut(chSMS, us, alice, true)
	if err := f.s.SetOptOut(canceled, chSMS, us, alice, false); err == nil {
		f.t.Fatal("SetOptOut with a canceled context succeeded")
	}
	if !f.optedOut(chSMS, us, alice) {
		f.t.Error("opted back in by a SetOptOut that failed")
	}
}

// Every OptedOut after a SetOptOut returned sees it, while other customers
// opt out and in at the same time (their writes share transactions).
func testOptOutSeenOnReturn(f *fixture) {
	const us, customers, rounds = "+15551230000", 8, 6
	var wg sync.WaitGroup
	for c := range customers {
		customer := fmt.Sprintf("+1555999%04d", c)
		wg.Go(func() {
			for r := range rounds {
				out := r%2 == 0
				if err := f.s.SetOptOut(f.ctx, chSMS, us, customer, out); err != nil {
					f.t.Errorf("SetOptOut(%s, %v): %v", customer, out, err)
					return
				}
				if got, err := f.s.OptedOut(f.ctx, chSMS, us, customer); err != nil || got != out {
					f.t.Errorf("OptedOut(%s) right after SetOptOut(%v) = %v, %v", customer, out, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for c := range customers { // the last round opted each back in
		if customer := fmt.Sprintf("+1555999%04d", c); f.optedOut(chSMS, us, customer) {
			f.t.Errorf("%s opted out after opting back in", customer)
		}
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
