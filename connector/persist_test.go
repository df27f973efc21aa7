package connector_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// flakyStore refuses a chosen write a number of times, as a full disk does
// until space frees.
type flakyStore struct {
	connector.Store
	markSent, apply, outbound atomic.Int32 // failures left
}

func (s *flakyStore) RecordOutbound(ctx context.Context, o connector.Outbound) (connector.OutboundResult, error) {
	if s.outbound.Add(-1) >= 0 {
		return connector.OutboundResult{}, errDiskFull
	}
	return s.Store.RecordOutbound(ctx, o)
}

var errDiskFull = errors.New("database or disk is full")

func (s *flakyStore) MarkSent(ctx context.Context, id int64, remote string) error {
	if s.markSent.Add(-1) >= 0 {
		return errDiskFull
	}
	return s.Store.MarkSent(ctx, id, remote)
}

func (s *flakyStore) Apply(ctx context.Context, ch connector.Change) (connector.ChangeResult, error) {
	if s.apply.Add(-1) >= 0 {
		return connector.ChangeResult{}, errDiskFull
	}
	return s.Store.Apply(ctx, ch)
}

func withFlaky(fs *flakyStore) func(h *harness) {
	return func(h *harness) {
		h.wrap = func(st connector.Store) connector.Store { fs.Store = st; return fs }
	}
}

// A send that went out is not repeated because the store could not record
// it: only the record is retried.
func TestSentNotRepeatedWhenRecordFails(t *testing.T) {
	fs := &flakyStore{}
	h := newHarness(t, withFlaky(fs))
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.toUser.wait(t, 1, 5*time.Second) // queued
	fs.markSent.Store(5)
	h.event(alice, connector.Event{Type: connector.EventText, Text: "once", SourceID: "L1"})
	waitFor(t, "the line recorded as sent", func() bool { return findMessage(t, h, "once").State == connector.DeliverySent })
	if n := hasPrefix(texts(h.toUser.all()), "text:once"); n != 1 {
		t.Errorf("agent line sent %d times while its record failed 5 times, want 1", n)
	}
}

// A vendor chat is opened once, however often recording its session fails.
func TestOpenNotRepeatedWhenRecordFails(t *testing.T) {
	fs := &flakyStore{}
	h := newHarness(t, withFlaky(fs))
	fs.apply.Store(4)
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 10*time.Second)
	if n := h.vendor.openCount(); n != 1 {
		t.Errorf("vendor chat opened %d times, want 1", n)
	}
	if c := h.openConversation(alice); len(c.Session) == 0 || c.State != connector.StateQueued {
		t.Errorf("conversation after the record succeeded: %+v", c)
	}
}

// An agent event the store refuses for a moment is retried by the core
// until it is committed, in order; the vendor's call returns nil then.
func TestEventRetriedUntilCommitted(t *testing.T) {
	fs := &flakyStore{}
	h := newHarness(t, withFlaky(fs))
	h.inbound(alice, "SM1", "hello")
	h.toAgent.wait(t, 1, 5*time.Second)
	h.toUser.wait(t, 1, 5*time.Second)
	fs.apply.Store(3)
	h.event(alice, connector.Event{Type: connector.EventText, Text: "first", SourceID: "L1"}) // fails the test unless nil
	h.event(alice, connector.Event{Type: connector.EventText, Text: "second", SourceID: "L2"})
	got := texts(h.toUser.wait(t, 3, 5*time.Second))[1:]
	if got[0] != "text:first" || got[1] != "text:second" {
		t.Errorf("to customer = %q", got)
	}
	// A conversation that does not exist is an error at once, not a retry.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.router.Event(ctx, connector.Event{ConversationID: 999, Type: connector.EventText, Text: "x"})
	if !connector.IsPermanent(err) || ctx.Err() != nil {
		t.Errorf("event for an unknown conversation: %v (ctx %v), want a permanent error at once", err, ctx.Err())
	}
}

// A vendor-started message (a campaign SMS) the store refuses for a moment
// is retried by the core, not lost; a channel that is not configured is a
// permanent error at once.
func TestOutboundRetriedUntilCommitted(t *testing.T) {
	fs := &flakyStore{}
	h := newHarness(t, withFlaky(fs))
	fs.outbound.Store(3)
	ctx := context.Background()
	o := connector.Outbound{Vendor: "whoson.sales", Channel: "sms.main", Customer: alice, Text: "campaign", SourceID: "C1"}
	if err := h.router.Outbound(ctx, o); err != nil {
		t.Fatalf("Outbound: %v", err)
	}
	if got := texts(h.toUser.wait(t, 1, 5*time.Second)); got[0] != "text:campaign" {
		t.Errorf("to customer = %q", got)
	}
	o.Channel = "sms.nope"
	if err := h.router.Outbound(ctx, o); !connector.IsPermanent(err) {
		t.Errorf("Outbound to an unconfigured channel: %v, want permanent", err)
	}
}

// WaitIdle returns while nothing is queued or in flight, and waits while a
// send is.
func TestWaitIdle(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(h *harness) {
		h.vendor.send = func(*connector.Message) error { <-release; return nil }
	})
	h.idle() // nothing to do yet
	h.inbound(alice, "SM1", "held")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.router.WaitIdle(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitIdle with a send in flight: %v, want to wait", err)
	}
	close(release)
	h.idle()
	if n := len(h.toAgent.all()); n != 1 {
		t.Errorf("%d sent once idle, want 1", n)
	}
}

// MemoryProgress keeps at most its bound, the newest record and updates of
// known ones included.
func TestMemoryProgressBounded(t *testing.T) {
	ctx := context.Background()
	p := connector.NewMemoryProgress(3)
	for id := range int64(10) {
		p.SaveProgress(ctx, id, []byte(`{"n":1}`))
		if p.Len() > 3 {
			t.Fatalf("after %d saves: %d records, bound 3", id+1, p.Len())
		}
	}
	if b, _ := p.LoadProgress(ctx, 9); string(b) != `{"n":1}` {
		t.Errorf("the newest record = %q", b)
	}
	p.SaveProgress(ctx, 9, []byte(`{"n":2}`))
	if b, _ := p.LoadProgress(ctx, 9); string(b) != `{"n":2}` || p.Len() != 3 {
		t.Errorf("an update: %q, %d records", b, p.Len())
	}
	p.Drop(9)
	if b, _ := p.LoadProgress(ctx, 9); b != nil {
		t.Errorf("after Drop: %q", b)
	}
}
