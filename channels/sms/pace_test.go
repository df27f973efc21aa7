package sms

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
)

// fakeClockPacer is a pacer on a clock the test moves.
func fakeClockPacer(cfg Config) (*pacer, *time.Time) {
	p := newPacer(cfg)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.now = func() time.Time { return now }
	return p, &now
}

func TestPacerSchedule(t *testing.T) {
	cfg := defaultConfig()
	cfg.MPS, cfg.Burst = 1, 2
	p, now := fakeClockPacer(cfg)
	t0 := *now
	type step struct {
		sender, to string
		segs       int
		want       time.Duration // after t0
	}
	for i, st := range []step{
		{companyNumber, "A", 1, 0},
		{companyNumber, "A", 1, 0}, // the burst of 2
		{companyNumber, "B", 1, time.Second},
		{companyNumber, "A", 3, 2 * time.Second},
		{companyNumber, "B", 1, 5 * time.Second}, // A's three segments leave Twilio by 6s; B joins within the burst
		{secondNumber, "A", 1, 0},                // another number has its own queue
		{"+18005550100", "A", 1, 0},              // toll-free: 3 a second
		{"+18005550100", "A", 1, 0},
		{"+18005550100", "A", 1, time.Second / 3},
	} {
		if got := p.reserve(st.sender, st.to, st.segs).at.Sub(t0); got != st.want {
			t.Errorf("step %d (%s to %s): at t0+%v, want t0+%v", i, st.sender, st.to, got, st.want)
		}
	}
}

func TestPacerUndoAndBlocks(t *testing.T) {
	cfg := defaultConfig()
	cfg.MPS, cfg.Burst = 1, 1
	p, now := fakeClockPacer(cfg)
	t0 := *now
	p.reserve(companyNumber, "A", 1)
	r := p.reserve(companyNumber, "B", 1)
	r.undo() // B gave up waiting: its slot is free again
	if got := p.reserve(companyNumber, "C", 1).at.Sub(t0); got != time.Second {
		t.Errorf("after an undo: t0+%v, want t0+1s", got)
	}
	p.rateLimited(companyNumber, 5*time.Second)
	if got := p.reserve(companyNumber, "D", 1).at.Sub(t0); got != 5*time.Second {
		t.Errorf("after 20429: t0+%v, want t0+5s", got)
	}
	p.pairLimited(companyNumber, "E")
	p.reserve(companyNumber, "E", 1) // creates the pair
	p.pairLimited(companyNumber, "E")
	if got := p.reserve(companyNumber, "E", 1).at.Sub(t0); got < cfg.RecipientWindow {
		t.Errorf("after 14107: t0+%v, want at least the window", got)
	}
}

func TestPacerLoopLimit(t *testing.T) {
	cfg := defaultConfig()
	cfg.MPS, cfg.RecipientLimit, cfg.RecipientWindow = 0, 3, 10*time.Second
	p, now := fakeClockPacer(cfg)
	t0 := *now
	var got []time.Duration
	for range 7 {
		r := p.reserve(companyNumber, "A", 1)
		got = append(got, r.at.Sub(t0))
		*now = r.at.Add(time.Second) // each sent a second after the one before
	}
	// 3 in a row, then a pause of the window and a margin after the last.
	want := []time.Duration{0, 1 * time.Second, 2 * time.Second, 13 * time.Second, 14 * time.Second, 15 * time.Second, 26 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots %v, want %v", got, want)
		}
	}
}

// One busy customer never delays another beyond the sender's rate: each
// conversation sends one message at a time, so the other takes the next
// slot, not the busy one's last. Judged by the order the sends finish in,
// at 2 a second so that only a stall of a whole second could reorder them.
func TestPacingFairAcrossCustomers(t *testing.T) {
	w := newWorld(t, setup{extra: "mps = 2\nburst = 1\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const other = "+15557654322"
	var mu sync.Mutex
	var done []string // who finished a send, in order
	finished := func(who string) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, who)
	}
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		for i := range 6 {
			if i == 1 {
				close(started)
			}
			if _, err := w.ch.Send(ctx, customerNumber, text(int64(i+1), "busy")); err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
			finished("busy")
		}
	})
	<-started
	if _, err := w.ch.Send(ctx, other, text(100, "me too")); err != nil {
		t.Fatal(err)
	}
	finished("other")
	cancel() // the busy one's remaining sends are not the point
	wg.Wait()
	// The other waits for at most the slot being served and the one already
	// reserved: busy's 2nd and 3rd. A pacer that queued it behind the busy
	// customer's backlog would finish it after the 4th.
	mu.Lock()
	defer mu.Unlock()
	if i := slices.Index(done, "other"); i > 3 {
		t.Errorf("sends finished in the order %q: the other waited behind the busy one", done)
	}
}

// Paced at the sender's rate, creates keep to their slots, and loop
// protection never fails a message. How the slots are spaced is
// TestPacerSchedule's, on a fake clock; here a send whose slot is an hour
// away is held, and gives its slot back when its context ends.
//
// Our recipient window is twice Twilio's: Twilio (and the fake) times a
// create when it arrives, and a create that a loaded machine delays would
// otherwise leave the next, on time, inside Twilio's window. The pacer's
// own arithmetic for the window is TestPacerLoopLimit's.
func TestPacingMatchesTwilio(t *testing.T) {
	w := newWorld(t, setup{
		twilio: smstest.Config{MPS: 5, LoopProtection: true, LoopLimit: 3, LoopWindow: 500 * time.Millisecond},
		extra:  "mps = 5\nburst = 1\nrecipient_limit = 3\nrecipient_window = \"1s\"\n",
	})
	ctx := context.Background()
	var sids []string
	for i := range 7 {
		sid, err := w.ch.Send(ctx, customerNumber, text(int64(i+1), "line"))
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, sid)
	}
	heldUntilItsSlot(t, w)
	for _, sid := range sids {
		eventually(t, "a final status", func() bool {
			m, _ := w.twilio.Get(sid)
			return m.Status == "delivered" || m.Status == "failed"
		})
		if m, _ := w.twilio.Get(sid); m.Status != "delivered" {
			t.Errorf("%s ended %s (error %d), want delivered", sid, m.Status, m.ErrorCode)
		}
	}
}

// heldUntilItsSlot shows a send waits for its slot: with the sender held for
// an hour (as after a 20429), a send reserves the slot after it and makes no
// create; ending its context gives the slot back.
func heldUntilItsSlot(t *testing.T, w *world) {
	t.Helper()
	p := w.ch.pacer
	p.rateLimited(companyNumber, time.Hour)
	tat := func() time.Time {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.senders[companyNumber].tat
	}
	before, creates := tat(), len(w.twilio.Departures(companyNumber))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := w.ch.Send(ctx, customerNumber, text(99, "an hour away"))
		got <- err
	}()
	eventually(t, "the held send's reservation", func() bool { return tat().After(before) })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("held send returned %v, want context.Canceled", err)
	}
	if n := len(w.twilio.Departures(companyNumber)); n != creates {
		t.Errorf("%d creates after the held send, want %d", n, creates)
	}
	if !tat().Equal(before) {
		t.Errorf("the held send's slot was not given back")
	}
}
