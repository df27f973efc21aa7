package sms

import (
	"context"
	"testing"

	"github.com/connectord/connectord/connector"
)

const secondNumber = "+15551230001"

// A customer who writes to another of our numbers is answered from it; the
// number lives in the conversation's address, which the store keeps.
func TestSeveralNumbers(t *testing.T) {
	oo := &fakeOptOuts{}
	w := newWorld(t, setup{optOuts: oo, extra: `numbers = ["` + secondNumber + `"]` + "\n"})
	w.say(newTestSID(1), secondNumber, "hi there")
	w.say(newTestSID(2), companyNumber, "hi first")
	got := w.sink.received()
	if len(got) != 2 || got[0].Customer != customerNumber+"@"+secondNumber || got[1].Customer != customerNumber ||
		got[0].Profile.Phone != customerNumber {
		t.Fatalf("received %+v, want the second number in the first address only", got)
	}
	ctx := context.Background()
	for i, tc := range []struct{ addr, from string }{{got[0].Customer, secondNumber}, {got[1].Customer, companyNumber}} {
		sid, err := w.ch.Send(ctx, tc.addr, text(int64(i+1), "answer"))
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := w.twilio.Get(sid); m.From != tc.from || m.To != customerNumber {
			t.Errorf("to %s: sent %s -> %s, want %s -> %s", tc.addr, m.From, m.To, tc.from, customerNumber)
		}
	}
	// STOP to the second number blocks that pair only.
	w.say(newTestSID(3), secondNumber, "stop")
	if _, err := w.ch.Send(ctx, got[0].Customer, text(3, "x")); !connector.IsPermanent(err) {
		t.Errorf("Send to the opted-out pair = %v, want permanent", err)
	}
	if _, err := w.ch.Send(ctx, got[1].Customer, text(4, "y")); err != nil {
		t.Errorf("Send from the default number = %v", err)
	}
}

func TestParseAddress(t *testing.T) {
	c := &Channel{cfg: Config{From: companyNumber, Numbers: []string{secondNumber}}}
	for _, tc := range []struct{ addr, customer, number string }{
		{customerNumber, customerNumber, ""},
		{customerNumber + "@" + secondNumber, customerNumber, secondNumber},
		{customerNumber + "@+19999999999", customerNumber + "@+19999999999", ""}, // not ours: all customer
		{"whatsapp:" + customerNumber, "whatsapp:" + customerNumber, ""},
	} {
		customer, number := c.parseAddress(tc.addr)
		if customer != tc.customer || number != tc.number {
			t.Errorf("parseAddress(%q) = %q, %q; want %q, %q", tc.addr, customer, number, tc.customer, tc.number)
		}
	}
	for _, tc := range []struct{ from, to, want string }{
		{customerNumber, companyNumber, customerNumber},
		{customerNumber, secondNumber, customerNumber + "@" + secondNumber},
		{customerNumber, "+19999999999", customerNumber},
		{customerNumber, "", customerNumber},
	} {
		if got := c.addressOf(tc.from, tc.to); got != tc.want {
			t.Errorf("addressOf(%q, %q) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	svc := &Channel{cfg: Config{From: companyNumber, MessagingServiceSID: "MG0123456789abcdef0123456789abcdef"}}
	if got := svc.optOutSender(""); got != svc.cfg.MessagingServiceSID {
		t.Errorf("optOutSender with a service = %q", got)
	}
}
