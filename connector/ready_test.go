package connector_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// Resuming counts the stored sessions a start resumes until each has
// resumed or been given up on, so that readiness can wait for them: a
// daemon that says ready while its chats are still being re-attached drops
// what agents write meanwhile.
func TestResumingCountsStoredSessions(t *testing.T) {
	h := newHarness(t, nil)
	h.inbound(customer(1), "SM1", "hello")
	h.inbound(customer(2), "SM2", "hello")
	h.idle()
	release := make(chan struct{})
	h.vendor.mu.Lock()
	h.vendor.resume = func(c *connector.Conversation) error {
		<-release
		if c.Customer == customer(2) {
			return connector.Permanent(errors.New("chat gone for good"))
		}
		return nil
	}
	h.vendor.mu.Unlock()
	h.restart()
	if left, total := h.router.Resuming(); left != 2 || total != 2 {
		t.Fatalf("while resumes wait: left %d of %d, want 2 of 2", left, total)
	}
	close(release)
	h.idle()
	if left, total := h.router.Resuming(); left != 0 || total != 2 {
		t.Errorf("after one resumed and one failed: left %d of %d, want 0 of 2", left, total)
	}
}

// A fresh store has nothing to resume.
func TestResumingNothingStored(t *testing.T) {
	h := newHarness(t, nil)
	if left, total := h.router.Resuming(); left != 0 || total != 0 {
		t.Errorf("left %d of %d", left, total)
	}
}

// A start resumes stored sessions at most 128 at a time (maxResumesAtOnce):
// thousands of chats reconnecting together would only make the vendor's
// server thrash. All of them resume in the end.
func TestResumesAtStartBounded(t *testing.T) {
	const stored, bound = 200, 128
	h := newHarness(t, nil)
	for i := range stored {
		h.inbound(customer(i), fmt.Sprint("SM", i), "hello")
	}
	h.idle()
	var running, most atomic.Int64
	release := make(chan struct{})
	h.vendor.mu.Lock()
	h.vendor.resume = func(*connector.Conversation) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		return nil
	}
	h.vendor.mu.Unlock()
	h.restart()
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < bound {
		if time.Now().After(deadline) {
			t.Fatalf("%d resumes running, want %d waiting at once", running.Load(), bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	h.idle()
	if left, total := h.router.Resuming(); left != 0 || total != stored {
		t.Errorf("left %d of %d, want 0 of %d", left, total, stored)
	}
	if m := most.Load(); m != bound {
		t.Errorf("at most %d resumes ran at once, want %d", m, bound)
	}
}

// Resume slots are per vendor: a vendor whose 128 resumes all hang (a
// server down, retrying) holds up no other vendor's resumes.
func TestResumeSlotsPerVendor(t *testing.T) {
	const hung = 130
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	var route atomic.Pointer[string]
	a, b := "whoson.a", "whoson.b"
	route.Store(&a)
	start := func(va, vb *fakeVendor) (connector.Store, *connector.Router) {
		t.Helper()
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := connector.NewRouter(connector.RouterConfig{Store: st, Logger: zap.NewNop(), Conversation: quickConversation(),
			Notices: connector.Notices{}, VendorFor: func(string) (string, bool) { return *route.Load(), true }})
		if err != nil {
			t.Fatal(err)
		}
		va.sink, vb.sink = r, r
		r.AddChannel(&fakeChannel{name: "sms.main", rec: newRecorder()})
		r.AddVendor(va)
		r.AddVendor(vb)
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return st, r
	}
	stop := func(st connector.Store, r *connector.Router) {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r.Stop(sctx)
		st.Close()
	}
	st, r := start(&fakeVendor{name: a, rec: newRecorder()}, &fakeVendor{name: b, rec: newRecorder()})
	for i := range hung + 1 {
		if i == hung {
			route.Store(&b) // the last conversation goes to the other vendor
		}
		if err := r.Receive(ctx, connector.Inbound{Channel: "sms.main", Customer: customer(i), Text: "hi", SourceID: fmt.Sprint("SM", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	stop(st, r)

	release, resumedB := make(chan struct{}), make(chan struct{})
	va := &fakeVendor{name: a, rec: newRecorder(), resume: func(*connector.Conversation) error { <-release; return nil }}
	vb := &fakeVendor{name: b, rec: newRecorder(), resume: func(*connector.Conversation) error { close(resumedB); return nil }}
	st, r = start(va, vb)
	defer stop(st, r)
	defer close(release)
	select {
	case <-resumedB:
	case <-time.After(10 * time.Second):
		t.Fatal("the other vendor's chat was not resumed while the first vendor's resumes hung")
	}
}
