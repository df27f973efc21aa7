package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestFailingWriteUndoesOnlyItself runs, in concurrent batches, writes that
// change a row and then fail beside writes that succeed: the failing ones'
// changes must be gone, the others' committed, and the writes must have
// shared transactions (group commit).
func TestFailingWriteUndoesOnlyItself(t *testing.T) {
	ctx := context.Background()
	s := open(t, freshDSN(t))
	errBoom := errors.New("boom")
	const n = 128
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.write(ctx, func(ctx context.Context, tx *txn) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO conversations (channel, customer, vendor, state,
					created_at, updated_at, last_activity) VALUES ('c', $1, 'v', 'pending', 1, 1, 1)`, fmt.Sprint(i))
				if err == nil && i%3 == 0 {
					err = errBoom // after its insert: the savepoint must undo it
				}
				return err
			})
		}()
	}
	wg.Wait()
	var want int
	for i, err := range errs {
		switch {
		case i%3 == 0 && !errors.Is(err, errBoom):
			t.Errorf("write %d: %v, want its own error", i, err)
		case i%3 != 0 && err != nil:
			t.Errorf("write %d: %v", i, err)
		case i%3 != 0:
			want++
		}
	}
	var got int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%d conversations committed, want %d", got, want)
	}
	if tx, w := s.w.transactions.Load(), s.w.writes.Load(); w != uint64(want) || tx >= uint64(n) {
		t.Errorf("counted %d writes in %d transactions, want %d writes in fewer than %d", w, tx, want, n)
	}
}

// TestFailingStatementUndoesOnlyItself: requests whose SQL fails (a unique
// violation, which aborts a whole PostgreSQL transaction) batched with
// requests that succeed: only they fail, the others commit.
func TestFailingStatementUndoesOnlyItself(t *testing.T) {
	ctx := context.Background()
	s := open(t, freshDSN(t))
	insert := func(customer string) func(ctx context.Context, tx *txn) error {
		return func(ctx context.Context, tx *txn) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO conversations (channel, customer, vendor, state,
				created_at, updated_at, last_activity) VALUES ('c', $1, 'v', 'pending', 1, 1, 1)`, customer)
			return err
		}
	}
	if err := s.write(ctx, insert("taken")); err != nil {
		t.Fatal(err)
	}
	const n = 128
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		customer := fmt.Sprint(i)
		if i%3 == 0 {
			customer = "taken" // one open conversation per customer: violates conversations_open
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.write(ctx, insert(customer)) }()
	}
	wg.Wait()
	want := 1
	for i, err := range errs {
		switch {
		case i%3 == 0 && err == nil:
			t.Errorf("write %d of a taken customer succeeded", i)
		case i%3 != 0 && err != nil:
			t.Errorf("write %d: %v", i, err)
		case i%3 != 0:
			want++
		}
	}
	var got int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%d conversations committed, want %d", got, want)
	}
	if tx := s.w.transactions.Load(); tx >= n {
		t.Errorf("%d transactions for %d writes: no batching", tx, n+1)
	}
	if e := s.w.writeErrors.Load(); e != 0 {
		t.Errorf("WriteErrors %d: a request's own failure is not a storage failure", e)
	}
}

// TestCallerGivingUp: a caller whose context ends while its write waits gets
// the context's error, and the writer carries on for everyone else.
func TestCallerGivingUp(t *testing.T) {
	ctx := context.Background()
	s := open(t, freshDSN(t))
	release := make(chan struct{})
	started := make(chan struct{})
	go s.write(ctx, func(context.Context, *txn) error { //nolint:errcheck // holds the writer
		close(started)
		<-release
		return nil
	})
	<-started
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- s.write(cctx, func(context.Context, *txn) error {
			t.Error("a write whose caller gave up before its batch ran")
			return nil
		})
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("write after cancel: %v, want context.Canceled", err)
	}
	close(release)
	if err := s.write(ctx, func(context.Context, *txn) error { return nil }); err != nil {
		t.Errorf("write after a caller gave up: %v", err)
	}
}

// TestWriteCountedBeforeItReturns: Stats read right after a write returns
// counts it (the conformance suite's Stats case found it counted late).
func TestWriteCountedBeforeItReturns(t *testing.T) {
	ctx := context.Background()
	s := open(t, freshDSN(t))
	for i := range 500 {
		if err := s.write(ctx, func(context.Context, *txn) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := s.w.writes.Load(); got != uint64(i+1) {
			t.Fatalf("after write %d returned, Writes is %d", i+1, got)
		}
	}
}
