package connectortest

import (
	"errors"

	"github.com/connectord/connectord/connector"
)

var attemptTests = []storeTest{
	{"CountAttempt", testCountAttempt},
	{"AttemptsUnknownMessage", testAttemptsUnknown},
}

func (f *fixture) countAttempt(id int64) int {
	f.t.Helper()
	n, err := f.s.CountAttempt(f.ctx, id)
	if err != nil {
		f.t.Fatalf("CountAttempt(%d): %v", id, err)
	}
	return n
}

func testCountAttempt(f *fixture) {
	a := f.inbound(chSMS, alice, "SM1", "a").Message
	b := f.inbound(chSMS, bob, "SM2", "b").Message
	for want := 1; want <= 3; want++ {
		if got := f.countAttempt(a.ID); got != want {
			f.t.Errorf("CountAttempt number %d of message a = %d", want, got)
		}
	}
	if got := f.countAttempt(b.ID); got != 1 {
		f.t.Errorf("first CountAttempt of message b = %d, want 1 (counts are per message)", got)
	}
	// Counting changes nothing a reader sees: the message is still to send.
	f.diff("message a after counting", a, f.message(a.ConversationID, a.ID))
	f.diff("outbox", []int64{a.ID, b.ID}, ids(f.outbox()))

	if err := f.s.ClearAttempts(f.ctx, a.ID); err != nil {
		f.t.Fatalf("ClearAttempts: %v", err)
	}
	if got := f.countAttempt(a.ID); got != 1 {
		f.t.Errorf("CountAttempt after ClearAttempts = %d, want 1", got)
	}
	if got := f.countAttempt(b.ID); got != 2 {
		f.t.Errorf("ClearAttempts of a reset b: next count %d, want 2", got)
	}
	// Clearing twice is harmless.
	for range 2 {
		if err := f.s.ClearAttempts(f.ctx, b.ID); err != nil {
			f.t.Fatalf("ClearAttempts: %v", err)
		}
	}
	if got := f.countAttempt(b.ID); got != 1 {
		f.t.Errorf("CountAttempt after two ClearAttempts = %d, want 1", got)
	}
}

func testAttemptsUnknown(f *fixture) {
	if n, err := f.s.CountAttempt(f.ctx, 987654); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("CountAttempt(unknown) = %d, %v; want ErrNotFound", n, err)
	}
	if err := f.s.ClearAttempts(f.ctx, 987654); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("ClearAttempts(unknown) = %v; want ErrNotFound", err)
	}
}
