package connector_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
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
