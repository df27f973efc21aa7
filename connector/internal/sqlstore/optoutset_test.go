package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"regexp"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// TestOptOutsOnlyWhatCommitted: the writer's set takes the opt-out changes
// of a batch that committed, not those of a request that failed (undone
// with its savepoint) nor those of a batch whose commit failed.
func TestOptOutsOnlyWhatCommitted(t *testing.T) {
	ctx := context.Background()
	// A deferred foreign key is checked at the commit: a row that breaks it
	// makes the commit fail after every statement succeeded.
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "c.db")+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE parent (id INTEGER PRIMARY KEY);
		CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, &Dialect{Name: "test", ErrClosed: errors.New("closed"), CacheOptOuts: true,
		StorageFailure: func(error) bool { return false }})
	defer w.Stop()

	errBoom := errors.New("boom")
	optOut := func(customer string, failure func(ctx context.Context, tx *Tx) error) error {
		return w.Do(ctx, func(ctx context.Context, tx *Tx) error {
			tx.optOutChanged("sms.main", "+15551230000", customer, true)
			return failure(ctx, tx)
		})
	}
	if err := optOut("failed-op", func(context.Context, *Tx) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Fatalf("failing op: %v", err)
	}
	err = optOut("failed-commit", func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO child (parent) VALUES (42)`)
		return err
	})
	if err == nil {
		t.Fatal("a commit that breaks a deferred foreign key succeeded")
	}
	if err := optOut("committed", func(context.Context, *Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for customer, want := range map[string]bool{"failed-op": false, "failed-commit": false, "committed": true} {
		if got := w.optOuts.has("sms.main", "+15551230000", customer); got != want {
			t.Errorf("opted out %s: %v, want %v", customer, got, want)
		}
	}
	if n := w.optOuts.len(); n != 1 {
		t.Errorf("the set holds %d opt-outs, want 1", n)
	}
}

// TestOptOutSetForgetsEmptyPairs: opting back in removes what opting out
// added, the (channel, sender) pair included, so the set's size follows
// the opted-out rows.
func TestOptOutSetForgetsEmptyPairs(t *testing.T) {
	o := newOptOutSet()
	pair := optOutPair{"sms.main", "+15551230000"}
	o.apply([]optOutChange{{pair, "a", true}, {pair, "b", true}, {pair, "a", false}})
	if !o.has(pair.channel, pair.sender, "b") || o.has(pair.channel, pair.sender, "a") || o.len() != 1 {
		t.Fatalf("after a, b out and a in: a %v, b %v, len %d", o.has(pair.channel, pair.sender, "a"),
			o.has(pair.channel, pair.sender, "b"), o.len())
	}
	o.apply([]optOutChange{{pair, "b", false}, {pair, "never", false}})
	if len(o.pairs) != 0 {
		t.Errorf("pairs left after every customer opted back in: %v", o.pairs)
	}
}

// TestOptOutWritesAreKnown lists every statement that writes opt_outs.
// Each one's op must record its change (Tx.optOutChanged) or the SQLite
// store's set goes wrong: a new one fails here until it is added, with
// its record, to this list.
func TestOptOutWritesAreKnown(t *testing.T) {
	q := newQueries(&Dialect{})
	recorded := map[string]bool{q.optOut: true, q.optIn: true}
	writes := regexp.MustCompile(`(?i)\b(UPDATE|INSERT INTO|DELETE FROM)\s+opt_outs\b`)
	for _, p := range q.all() {
		if writes.MatchString(*p) && !recorded[*p] {
			t.Errorf("a statement writes opt_outs without recording it for the set: %s", *p)
		}
	}
}
