package sqlstoretest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// syncSetting is a write that reads the engine's commit setting inside its
// transaction into *got, and the transaction it ran in into *tx. The query
// text carries name, which the caller makes unique, so the writer never
// runs it prepared: SQLite computes a PRAGMA's value when it prepares it,
// and a prepared read shows the setting as it was then.
func syncSetting(h Harness, name string, got *string, tx **sqlstore.Tx) sqlstore.Op {
	query := fmt.Sprintf("%s -- read %s", h.SyncQuery, name)
	return func(ctx context.Context, t *sqlstore.Tx) error {
		*tx = t
		if h.SyncQuery == "" {
			return nil // the engine syncs after the commit: see Harness.Syncs
		}
		return t.QueryRowContext(ctx, query).Scan(got)
	}
}

// syncs returns h.Syncs(), or 0 for an engine without.
func syncs(h Harness) uint64 {
	if h.Syncs == nil {
		return 0
	}
	return h.Syncs()
}

// testLazyAloneCommitsWithoutSync: one write at a time, a lazy write's
// batch commits without waiting for the disk and a synced one's with, each
// time the mode changes both ways; the counters count every transaction but
// only the synced ones as synced.
func testLazyAloneCommitsWithoutSync(t *testing.T, h Harness) {
	ctx := context.Background()
	for i, lazy := range []bool{true, true, false, true, false, false, true} {
		tx0, w0, _ := h.Writer.Counts()
		stx0, sw0 := h.Writer.SyncedCounts()
		syncs0 := syncs(h)
		var (
			got string
			tx  *sqlstore.Tx
		)
		do, want, syncedAdd := h.Writer.Do, h.Synced, uint64(1)
		if lazy {
			do, want, syncedAdd = h.Writer.DoLazy, h.Lazy, 0
		}
		if err := do(ctx, syncSetting(h, fmt.Sprint("alone ", i), &got, &tx)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if got != want {
			t.Errorf("write %d (lazy %v): %s = %q, want %q", i, lazy, h.SyncQuery, got, want)
		}
		tx1, w1, _ := h.Writer.Counts()
		stx1, sw1 := h.Writer.SyncedCounts()
		if tx1-tx0 != 1 || w1-w0 != 1 {
			t.Errorf("write %d: %d transactions, %d writes counted, want 1 and 1", i, tx1-tx0, w1-w0)
		}
		if h.Syncs != nil && syncs(h)-syncs0 != syncedAdd {
			t.Errorf("write %d (lazy %v): the engine synced %d times after the commit, want %d", i, lazy, syncs(h)-syncs0, syncedAdd)
		}
		if stx1-stx0 != syncedAdd || sw1-sw0 != syncedAdd {
			t.Errorf("write %d (lazy %v): %d synced transactions, %d synced writes counted, want %d and %d",
				i, lazy, stx1-stx0, sw1-sw0, syncedAdd, syncedAdd)
		}
	}
}

// testLazyBatchedWithSyncedIsSynced runs lazy and synced writes at once:
// every batch with a synced write commits synced, lazy ones riding in it,
// and a batch of lazy writes only commits lazily. It runs rounds until one
// batch held both kinds (the writer takes what is waiting; the first round
// nearly always has one).
func testLazyBatchedWithSyncedIsSynced(t *testing.T, h Harness) {
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		if mixedRound(ctx, t, h, round) {
			return
		}
	}
	t.Fatal("no batch held both lazy and synced writes in 20 rounds")
}

// mixedRound runs one round of 64 concurrent writes, half lazy, and checks
// each against its batch; it reports whether a batch held both kinds.
func mixedRound(ctx context.Context, t *testing.T, h Harness, round int) bool {
	t.Helper()
	const n = 64
	type result struct {
		lazy bool
		got  string
		tx   *sqlstore.Tx
	}
	res := make([]result, n)
	_, synced0 := h.Writer.SyncedCounts()
	syncs0 := syncs(h)
	release, started := holdWriter(h) // let the writes pile up behind it
	<-started
	var wg sync.WaitGroup
	for i := range n {
		res[i].lazy = i%2 == 0
		wg.Go(func() {
			do := h.Writer.Do
			if res[i].lazy {
				do = h.Writer.DoLazy
			}
			if err := do(ctx, syncSetting(h, fmt.Sprint("round ", round, " write ", i), &res[i].got, &res[i].tx)); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	close(release)
	wg.Wait()
	// The writer is sequential: the holding write's batch committed before
	// the others. Lazy writes riding in a synced batch are not counted as
	// synced writes: they did not ask for the disk.
	if _, synced1 := h.Writer.SyncedCounts(); synced1-synced0 != n/2+1 {
		t.Errorf("round %d: %d synced writes counted, want %d (the synced ones and the holder)", round, synced1-synced0, n/2+1)
	}
	hasSynced := map[*sqlstore.Tx]bool{}
	hasLazy := map[*sqlstore.Tx]bool{}
	for _, r := range res {
		if r.lazy {
			hasLazy[r.tx] = true
		} else {
			hasSynced[r.tx] = true
		}
	}
	// One sync per batch that asked for the disk, the holder's included.
	if h.Syncs != nil && syncs(h)-syncs0 != uint64(len(hasSynced)+1) {
		t.Errorf("round %d: the engine synced %d times after commits, want %d (the batches with a synced write, and the holder's)",
			round, syncs(h)-syncs0, len(hasSynced)+1)
	}
	mixed := false
	for i, r := range res {
		want := h.Lazy
		if hasSynced[r.tx] {
			want = h.Synced
		}
		if r.got != want {
			t.Errorf("write %d (lazy %v, its batch synced %v): %s = %q, want %q", i, r.lazy, hasSynced[r.tx], h.SyncQuery, r.got, want)
		}
		mixed = mixed || hasSynced[r.tx] && hasLazy[r.tx]
	}
	return mixed || t.Failed() // after a failure, no point in more rounds
}
