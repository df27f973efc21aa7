package connectortest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/connectord/connectord/connector"
)

var loadTests = []storeTest{
	{"ConcurrentInboundGroupCommit", testGroupCommit},
	{"ConcurrentDuplicates", testConcurrentDuplicates},
	{"ConcurrentApply", testConcurrentApply},
	{"CanceledContext", testCanceledContext},
	{"Closed", testClosed},
}

// Writers is how many goroutines the concurrency subtests run.
const writers = 64

// parallel runs fn(i) for i in [0, n) on n goroutines released together, and
// returns the errors they report.
func parallel(n int, fn func(i int) error) []error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func (f *fixture) noErrors(what string, errs []error) {
	f.t.Helper()
	if err := errors.Join(errs...); err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

func testGroupCommit(f *fixture) {
	const perWriter = 20
	before := f.stats()
	var mu sync.Mutex
	seen := map[int64]bool{}
	errs := parallel(writers, func(w int) error {
		for i := range perWriter {
			in := connector.Inbound{Channel: chSMS, Customer: fmt.Sprintf("+1555%07d", w),
				SourceID: fmt.Sprintf("SM-%d-%d", w, i), Text: fmt.Sprint(i)}
			res, err := f.s.RecordInbound(f.ctx, in, vendor)
			if err != nil {
				return err
			}
			if res.Duplicate || res.Message == nil || res.Created != (i == 0) {
				return fmt.Errorf("%s: Duplicate=%v Created=%v Message=%v", in.SourceID, res.Duplicate, res.Created, res.Message)
			}
			mu.Lock()
			if seen[res.Message.ID] {
				err = fmt.Errorf("message id %d given twice", res.Message.ID)
			}
			seen[res.Message.ID] = true
			mu.Unlock()
			if err != nil {
				return err
			}
		}
		return nil
	})
	f.noErrors("concurrent RecordInbound", errs)

	after := f.stats()
	if n := len(f.outbox()); n != writers*perWriter {
		f.t.Errorf("outbox has %d messages, want %d", n, writers*perWriter)
	}
	if n := after.Conversations[connector.StatePending]; n != writers {
		f.t.Errorf("%d pending conversations, want %d", n, writers)
	}
	writes, txs := after.Writes-before.Writes, after.Transactions-before.Transactions
	if writes != writers*perWriter {
		f.t.Errorf("Stats.Writes grew by %d, want %d", writes, writers*perWriter)
	}
	// Group commit: 64 writers at once must share transactions.
	if txs == 0 || txs >= writes {
		f.t.Fatalf("%d writes took %d transactions: no group commit", writes, txs)
	}
	f.t.Logf("%d writes in %d transactions (%.1f writes/transaction)", writes, txs, float64(writes)/float64(txs))
}

func testConcurrentDuplicates(f *fixture) {
	results := make([]connector.InboundResult, writers)
	errs := parallel(writers, func(i int) error {
		var err error
		results[i], err = f.s.RecordInbound(f.ctx, connector.Inbound{Channel: chSMS,
			Customer: alice, SourceID: "SM-retried", Text: "hello"}, vendor)
		return err
	})
	f.noErrors("concurrent RecordInbound of one message", errs)
	var fresh, dups int
	for _, r := range results {
		if r.Duplicate {
			dups++
		} else {
			fresh++
		}
	}
	if fresh != 1 || dups != writers-1 {
		f.t.Errorf("%d recorded, %d duplicates; want 1 and %d", fresh, dups, writers-1)
	}
	if n := len(f.outbox()); n != 1 {
		f.t.Errorf("outbox has %d messages, want 1", n)
	}
}

func testConcurrentApply(f *fixture) {
	id := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	errs := parallel(writers, func(i int) error {
		// Every writer sends V-even twice (one is skipped) and its own V-i.
		_, err := f.s.Apply(f.ctx, connector.Change{ConversationID: id, Touch: true, Messages: []*connector.Message{
			{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "shared", SourceID: fmt.Sprintf("V-%d", i/2*2)},
			{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "own", SourceID: fmt.Sprintf("own-%d", i)},
		}})
		return err
	})
	f.noErrors("concurrent Apply", errs)
	if n := len(f.messages(id)); n != 1+writers/2+writers {
		f.t.Errorf("conversation has %d messages, want %d", n, 1+writers/2+writers)
	}
	// One failing change in a batch must not take the others down.
	errs = parallel(writers, func(i int) error {
		ch := connector.Change{ConversationID: id, Messages: []*connector.Message{
			{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "x", SourceID: fmt.Sprintf("B-%d", i)}}}
		if i%8 == 0 {
			ch.ConversationID = -1 // unknown: ErrNotFound
		}
		_, err := f.s.Apply(f.ctx, ch)
		if i%8 == 0 {
			if !errors.Is(err, connector.ErrNotFound) {
				return fmt.Errorf("change %d to an unknown conversation: %v, want ErrNotFound", i, err)
			}
			return nil
		}
		return err
	})
	f.noErrors("concurrent Apply with failures", errs)
	if n := len(f.messages(id)); n != 1+writers/2+writers+writers*7/8 {
		f.t.Errorf("conversation has %d messages, want %d", n, 1+writers/2+writers+writers*7/8)
	}
}

func testCanceledContext(f *fixture) {
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	_, err := f.s.RecordInbound(ctx, connector.Inbound{Channel: chSMS, Customer: alice, SourceID: "SM1"}, vendor)
	if !errors.Is(err, context.Canceled) {
		f.t.Errorf("RecordInbound with a canceled context: %v, want context.Canceled", err)
	}
	// The store is still usable.
	f.inbound(chSMS, alice, "SM2", "after")
}

func testClosed(f *fixture) {
	m := f.inbound(chSMS, alice, "SM1", "hi").Message
	if err := f.s.Close(); err != nil {
		f.t.Fatalf("Close: %v", err)
	}
	ctx := f.ctx
	calls := map[string]func() error{
		"RecordInbound": func() error {
			_, err := f.s.RecordInbound(ctx, connector.Inbound{Channel: chSMS, Customer: alice, SourceID: "SM2"}, vendor)
			return err
		},
		"Apply": func() error {
			_, err := f.s.Apply(ctx, connector.Change{ConversationID: m.ConversationID, Touch: true})
			return err
		},
		"Conversation": func() error { _, err := f.s.Conversation(ctx, m.ConversationID); return err },
		"OpenConversations": func() error {
			_, err := f.s.OpenConversations(ctx)
			return err
		},
		"Messages":   func() error { _, err := f.s.Messages(ctx, m.ConversationID); return err },
		"Outbox":     func() error { _, err := f.s.Outbox(ctx); return err },
		"MarkSent":   func() error { return f.s.MarkSent(ctx, m.ID, "x") },
		"MarkFailed": func() error { return f.s.MarkFailed(ctx, m.ID, "x") },
		"UpdateDelivery": func() error {
			_, err := f.s.UpdateDelivery(ctx, chSMS, "x", connector.DeliveryDelivered, "")
			return err
		},
		"Stats": func() error { _, err := f.s.Stats(ctx); return err },
		"Ping":  func() error { return f.s.Ping(ctx) },
		"CountAttempt": func() error {
			_, err := f.s.CountAttempt(ctx, m.ID)
			return err
		},
		"ClearAttempts": func() error { return f.s.ClearAttempts(ctx, m.ID) },
		"Purge": func() error {
			_, err := f.s.Purge(ctx, time.Now(), 10)
			return err
		},
		"OpenCounts": func() error {
			_, err := f.s.OpenCounts(ctx, chSMS)
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err == nil {
			f.t.Errorf("%s on a closed store: no error", name)
		}
	}
}
