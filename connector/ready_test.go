package connector_test

import (
	"errors"
	"testing"

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
