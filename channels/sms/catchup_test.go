package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeReceipts is the core's Receipts: the newest stored customer message.
type fakeReceipts struct {
	mu  sync.Mutex
	sid string
	at  time.Time
	err error
}

func (f *fakeReceipts) LastReceived(context.Context, string) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sid, f.at, f.err
}

func (f *fakeReceipts) set(sid string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sid, f.at = sid, at
}

// texts returns the text of every message the core received, with its
// customer address.
func (w *world) texts() []string {
	var out []string
	for _, in := range w.sink.received() {
		out = append(out, in.Customer+" "+in.Text)
	}
	return out
}

func TestCatchUp(t *testing.T) {
	rc := &fakeReceipts{}
	w := newWorld(t, setup{receipts: rc, extra: `numbers = ["` + secondNumber + `"]
catch_up_interval = "0s"
`})
	ctx := context.Background()
	old := w.twilio.InboundOffline(customerNumber, companyNumber, "too old: before the stored one")
	time.Sleep(1100 * time.Millisecond) // Twilio's dates have whole seconds
	sid, status, err := w.twilio.Inbound(ctx, w.public+"/sms/main", customerNumber, companyNumber, "stored")
	if err != nil || status != http.StatusOK {
		t.Fatal(status, err)
	}
	rc.set(sid, time.Now())
	// connectord is unreachable: Twilio keeps these in its list only.
	w.twilio.InboundOffline(customerNumber, companyNumber, "missed one")
	w.twilio.InboundOffline("+15550001111", secondNumber, "missed two")
	w.twilio.InboundOffline(customerNumber, companyNumber, "START") // not opted out: no chat line
	w.twilio.InboundOffline(customerNumber, companyNumber, "missed three")
	if _, err := w.ch.Send(ctx, customerNumber, text(1, "an answer (outbound, not relayed)")); err != nil {
		t.Fatal(err)
	}
	if err := w.ch.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// In order per conversation; Twilio's dates (whole seconds) cannot order
	// messages to two numbers within one second, nor need they.
	want := map[string][]string{
		customerNumber:                 {"stored", "missed one", "missed three"},
		"+15550001111@" + secondNumber: {"missed two"},
	}
	got := map[string][]string{}
	for _, in := range w.sink.received() {
		got[in.Customer] = append(got[in.Customer], in.Text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("relayed (-want +got):\n%s", diff)
	}
	for _, in := range w.sink.received() {
		if in.SourceID == old {
			t.Errorf("a message older than the stored one was relayed")
		}
	}
}

// At start the channel catches up by itself, and again when API calls get
// through after failing.
func TestCatchUpAtStartAndAfterRecovery(t *testing.T) {
	rc := &fakeReceipts{}
	w := newWorld(t, setup{receipts: rc, extra: `catch_up_interval = "0s"` + "\n"})
	ctx := context.Background()
	sid, _, _ := w.twilio.Inbound(ctx, w.public+"/sms/main", customerNumber, companyNumber, "stored")
	rc.set(sid, time.Now())
	w.twilio.InboundOffline(customerNumber, companyNumber, "while down")
	ch, err := New(w.env) // a restart
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ch.Stop(ctx)
	eventually(t, "the catch-up at start", func() bool { return len(w.sink.received()) == 2 })
	w.twilio.InboundOffline(customerNumber, companyNumber, "while cut off")
	ch.noteAPI("dial tcp: connection refused")
	ch.noteAPI("") // through again
	eventually(t, "the catch-up after recovery", func() bool { return len(w.sink.received()) >= 3 })
	if got := w.texts(); got[len(got)-1] != customerNumber+" while cut off" {
		t.Errorf("relayed %q", got)
	}
}

func TestCatchUpPagesAndStoreErrors(t *testing.T) {
	rc := &fakeReceipts{}
	w := newWorld(t, setup{receipts: rc, extra: `catch_up_interval = "0s"` + "\n"})
	ctx := context.Background()
	sid, _, _ := w.twilio.Inbound(ctx, w.public+"/sms/main", customerNumber, companyNumber, "stored")
	rc.set(sid, time.Now())
	const n = catchUpPageSize + 5
	for i := range n {
		w.twilio.InboundOffline(customerNumber, companyNumber, fmt.Sprint("line ", i))
	}
	w.sink.setErr(errors.New("store down"))
	if err := w.ch.catchUp(ctx); err == nil {
		t.Error("a catch-up the core did not store reported no error")
	}
	w.sink.setErr(nil)
	if err := w.ch.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := w.texts()
	if len(got) != n+1 {
		t.Fatalf("relayed %d, want %d", len(got), n+1)
	}
	for i := range n {
		if want := fmt.Sprint(customerNumber, " line ", i); got[i+1] != want {
			t.Fatalf("relayed #%d %q, want %q (oldest first)", i+1, got[i+1], want)
		}
	}
	rc.mu.Lock()
	rc.err = errors.New("the store keeps no receipts")
	rc.mu.Unlock()
	if err := w.ch.catchUp(ctx); err == nil {
		t.Error("no error without receipts")
	}
}
