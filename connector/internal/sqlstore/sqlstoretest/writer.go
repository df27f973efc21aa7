// Package sqlstoretest holds the tests of the shared SQL store
// (connector/internal/sqlstore) that need a real engine: each engine's tests
// run them against their own database.
package sqlstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/connector/internal/sqlrow"
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// Harness is a freshly opened, empty store as the writer tests see it. The
// engine's test closes the store when the test ends.
type Harness struct {
	Dialect *sqlstore.Dialect
	Writer  *sqlstore.Writer
	// Read reads what the writer committed.
	Read sqlrow.Queryer
	// Ping is the store's Ping.
	Ping func(ctx context.Context) error
	// SyncQuery reads, inside a write transaction, the engine's setting that
	// makes a commit wait for the disk; Synced and Lazy are its values in a
	// synced batch and in a batch of lazy writes only.
	SyncQuery    string
	Synced, Lazy string
	// Syncs, for an engine that makes a synced batch durable itself after
	// its commit (Dialect.SyncCommit), counts those syncs; nil otherwise.
	// With it, SyncQuery may be empty: the setting is the same for both.
	Syncs func() uint64
}

// TestWriter runs the group-commit writer's tests, each on a store open
// gives it.
func TestWriter(t *testing.T, open func(t *testing.T) Harness) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, h Harness)
	}{
		{"FailingWriteUndoesOnlyItself", testFailingWriteUndoesOnlyItself},
		{"FailingStatementUndoesOnlyItself", testFailingStatementUndoesOnlyItself},
		{"CallerGivingUp", testCallerGivingUp},
		{"WriteCountedBeforeItReturns", testWriteCountedBeforeItReturns},
		{"PingRespectsContext", testPingRespectsContext},
		{"LazyAloneCommitsWithoutSync", testLazyAloneCommitsWithoutSync},
		{"LazyBatchedWithSyncedIsSynced", testLazyBatchedWithSyncedIsSynced},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
}

// insertConversation is a write that opens a conversation of customer.
func insertConversation(h Harness, customer string) sqlstore.Op {
	q := h.Dialect.Bind(`INSERT INTO conversations (channel, customer, vendor, state,
		created_at, updated_at, last_activity) VALUES ('c', ?, 'v', 'pending', 1, 1, 1)`)
	return func(ctx context.Context, tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, q, customer)
		return err
	}
}

func countConversations(t *testing.T, h Harness) int {
	t.Helper()
	var n int
	if err := h.Read.QueryRowContext(context.Background(), `SELECT count(*) FROM conversations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// testFailingWriteUndoesOnlyItself runs, in concurrent batches, writes that
// change a row and then fail beside writes that succeed: the failing ones'
// changes must be gone, the others' committed, and the writes must have
// shared transactions (group commit).
func testFailingWriteUndoesOnlyItself(t *testing.T, h Harness) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	const n = 128
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		insert := insertConversation(h, fmt.Sprint(i))
		wg.Go(func() {
			errs[i] = h.Writer.Do(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
				err := insert(ctx, tx)
				if err == nil && i%3 == 0 {
					err = errBoom // after its insert: the savepoint must undo it
				}
				return err
			})
		})
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
	if got := countConversations(t, h); got != want {
		t.Errorf("%d conversations committed, want %d", got, want)
	}
	if tx, w, _ := h.Writer.Counts(); w != uint64(want) || tx >= uint64(n) {
		t.Errorf("counted %d writes in %d transactions, want %d writes in fewer than %d", w, tx, want, n)
	}
}

// testFailingStatementUndoesOnlyItself: requests whose SQL fails (a unique
// violation, which on PostgreSQL aborts the whole transaction) batched with
// requests that succeed: only they fail, the others commit, and no write
// error is counted.
func testFailingStatementUndoesOnlyItself(t *testing.T, h Harness) {
	ctx := context.Background()
	if err := h.Writer.Do(ctx, insertConversation(h, "taken")); err != nil {
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
		insert := insertConversation(h, customer)
		wg.Go(func() { errs[i] = h.Writer.Do(ctx, insert) })
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
	if got := countConversations(t, h); got != want {
		t.Errorf("%d conversations committed, want %d", got, want)
	}
	tx, _, writeErrors := h.Writer.Counts()
	if tx >= n {
		t.Errorf("%d transactions for %d writes: no batching", tx, n+1)
	}
	if writeErrors != 0 {
		t.Errorf("WriteErrors %d: a request's own failure is not a storage failure", writeErrors)
	}
}

// testCallerGivingUp: a caller whose context ends while its write waits gets
// the context's error, and the writer carries on for everyone else.
func testCallerGivingUp(t *testing.T, h Harness) {
	ctx := context.Background()
	release, started := holdWriter(h)
	<-started
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- h.Writer.Do(cctx, func(context.Context, *sqlstore.Tx) error {
			t.Error("a write whose caller gave up before its batch ran")
			return nil
		})
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("write after cancel: %v, want context.Canceled", err)
	}
	close(release)
	if err := h.Writer.Do(ctx, func(context.Context, *sqlstore.Tx) error { return nil }); err != nil {
		t.Errorf("write after a caller gave up: %v", err)
	}
}

// holdWriter makes the writer run a request that returns only once release
// is closed; started is closed when it runs.
func holdWriter(h Harness) (release, started chan struct{}) {
	release, started = make(chan struct{}), make(chan struct{})
	go h.Writer.Do(context.Background(), func(context.Context, *sqlstore.Tx) error { //nolint:errcheck // only holds the writer
		close(started)
		<-release
		return nil
	})
	return release, started
}

// testWriteCountedBeforeItReturns: Stats read right after a write returns
// counts it (the conformance suite's Stats case found it counted late).
func testWriteCountedBeforeItReturns(t *testing.T, h Harness) {
	ctx := context.Background()
	for i := range 500 {
		if err := h.Writer.Do(ctx, func(context.Context, *sqlstore.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if _, got, _ := h.Writer.Counts(); got != uint64(i+1) {
			t.Fatalf("after write %d returned, Writes is %d", i+1, got)
		}
	}
}

// testPingRespectsContext: a writer stuck (as on a frozen disk, or behind a
// server that does not answer) must not keep Ping past its context.
func testPingRespectsContext(t *testing.T, h Harness) {
	release, started := holdWriter(h)
	defer close(release)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping with the writer stuck = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Ping returned after %v, its context ended after 50ms", d)
	}
}
