package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestFailingWriteUndoesOnlyItself runs, in concurrent batches, writes that
// change a row and then fail beside writes that succeed: the failing ones'
// changes must be gone, the others' committed.
func TestFailingWriteUndoesOnlyItself(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
					created_at, updated_at, last_activity) VALUES ('c', ?, 'v', 'pending', 1, 1, 1)`, fmt.Sprint(i))
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

// TestCallerGivingUp: a caller whose context ends while its write waits gets
// the context's error, and the writer carries on for everyone else.
func TestCallerGivingUp(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := make(chan struct{})
	started := make(chan struct{})
	go s.write(ctx, func(context.Context, *txn) error { // holds the writer
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
