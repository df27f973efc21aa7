package sqlite_test

import (
	"context"
	"fmt"
	"testing"
)

// TestOptOutsLoadedAtOpen: the store answers OptedOut from memory, so
// opening it must read every opt-out the file holds (thousands, in several
// pairs), and the changes made since must be there at the next open.
func TestOptOutsLoadedAtOpen(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	if err := open(t, path).Close(); err != nil { // creates the schema
		t.Fatal(err)
	}
	const perPair = 2000
	pairs := [][2]string{{"sms.main", "+15551230000"}, {"sms.main", "MG0123"}, {"sms.other", "+15551230000"}}
	db := raw(t, path)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, pair := range pairs {
		for i := range perPair {
			// Each pair has its own customers: even numbers, offset by the pair.
			_, err := tx.ExecContext(ctx, `INSERT INTO opt_outs (channel, sender, customer, at) VALUES (?, ?, ?, 1)`,
				pair[0], pair[1], customer(p, 2*i))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, path)
	for p, pair := range pairs {
		for _, n := range []int{0, 1, 2, 2*perPair - 2, 2 * perPair} {
			for q := range pairs {
				got, err := s.OptedOut(ctx, pair[0], pair[1], customer(q, n))
				if err != nil {
					t.Fatal(err)
				}
				if want := q == p && n%2 == 0 && n < 2*perPair; got != want {
					t.Errorf("OptedOut(%s, %s, %s) = %v, want %v", pair[0], pair[1], customer(q, n), got, want)
				}
			}
		}
	}
	if err := s.SetOptOut(ctx, pairs[0][0], pairs[0][1], customer(0, 0), false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptOut(ctx, pairs[0][0], pairs[0][1], customer(0, 1), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	for n, want := range map[int]bool{0: false, 1: true, 2: true} {
		if got, err := s.OptedOut(ctx, pairs[0][0], pairs[0][1], customer(0, n)); err != nil || got != want {
			t.Errorf("after reopen, OptedOut(%s) = %v, %v; want %v", customer(0, n), got, err, want)
		}
	}
}

// customer is the n-th customer of pair p in TestOptOutsLoadedAtOpen.
func customer(p, n int) string { return fmt.Sprintf("+1555%d%06d", p, n) }
