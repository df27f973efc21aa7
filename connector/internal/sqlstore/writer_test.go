package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/connectord/connectord/connector"
)

// TestFailedOpLeavesNoCachedRow: a write that put a conversation row in
// its batch's cache updates and then failed is undone with its savepoint,
// and so is its row: the cache keeps what the other writes committed.
func TestFailedOpLeavesNoCachedRow(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	w := NewWriter(db, &Dialect{Name: "test", ErrClosed: errors.New("closed"), CacheConversations: true,
		StorageFailure: func(error) bool { return false }})
	defer w.Stop()
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		id   int64
		fail bool
	}{{1, true}, {2, false}} {
		err := w.Do(ctx, func(ctx context.Context, tx *Tx) error {
			tx.touchRow(&connector.Conversation{ID: tc.id, Agent: "written"})
			if tc.fail {
				return errBoom
			}
			return nil
		})
		if tc.fail != errors.Is(err, errBoom) {
			t.Fatalf("write of %d: %v", tc.id, err)
		}
	}
	if c, ok := w.cache.get(1); ok {
		t.Errorf("the failed write's row is cached: %+v", c)
	}
	if c, ok := w.cache.get(2); !ok || c.Agent != "written" {
		t.Errorf("the committed write's row: %+v, %v; want cached", c, ok)
	}
}
