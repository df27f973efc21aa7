package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// testTTL is the lease of the stores tests open: long, so that no lease
// lapses on a slow machine unless a test means it to. Tests expire a lease by
// hand (expireLease), or open a store with shortTTL and wait for it to lapse.
const (
	testTTL  = time.Minute
	shortTTL = time.Second
)

// member opens a store on dsn as instance id and joins; it is closed when
// the test ends.
func member(t testing.TB, dsn, id string) *Store { return memberWith(t, dsn, id, testTTL) }

func memberWith(t testing.TB, dsn, id string, ttl time.Duration) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), dsn, Options{Instance: id, LeaseTTL: ttl})
	if err != nil {
		t.Fatalf("OpenWith %s: %v", id, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close %s: %v", id, err)
		}
	})
	if err := s.Join(context.Background()); err != nil {
		t.Fatalf("Join %s: %v", id, err)
	}
	return s
}

// expireLease makes a lease expired on the database's clock, as if its
// holder had stopped renewing it a while ago.
func expireLease(t testing.TB, dsn, kind, name string) {
	t.Helper()
	inSchema(t, dsn, `UPDATE $schema.leases SET expires_at = now() - interval '1 second' WHERE kind = $1 AND name = $2`,
		kind, name).Close()
}

// inbound records a customer line of customer through s and returns the result.
func inbound(t testing.TB, s *Store, customer, sourceID string) connector.InboundResult {
	t.Helper()
	res, err := s.RecordInbound(context.Background(), connector.Inbound{Channel: "sms.main", Customer: customer,
		SourceID: sourceID, Text: "hello " + sourceID}, "whoson.sales")
	if err != nil {
		t.Fatalf("RecordInbound %s as %s: %v", sourceID, s.Instance(), err)
	}
	return res
}

// ownerOf reads a conversation's owner through s.
func ownerOf(t testing.TB, s *Store, id int64) string {
	t.Helper()
	c, err := s.Conversation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Owner
}

func ids(cs []*connector.Conversation) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// listener runs s.Listen until the test ends and records what it reports.
type listener struct {
	wakes  chan int64
	claims chan struct{}
	done   chan error
	cancel context.CancelFunc
}

// listen starts s.Listen and returns once LISTEN is in effect, so that what
// the test commits next is reported, and once Listen's first sweep came
// (the contract's: what was committed before listening was not notified),
// which the returned listener does not count. The test's end cancels it and
// requires that it returned nil.
func listen(t testing.TB, s *Store) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{wakes: make(chan int64, 100), claims: make(chan struct{}, 100), done: make(chan error, 1), cancel: cancel}
	ready := make(chan struct{})
	s.onListen = func() { close(ready) }
	go func() {
		l.done <- s.Listen(ctx, func(id int64) { l.wakes <- id }, func() { l.claims <- struct{}{} })
	}()
	select {
	case <-ready:
	case err := <-l.done:
		cancel()
		t.Fatalf("Listen %s returned before listening: %v", s.Instance(), err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("Listen %s: not listening after 10s", s.Instance())
	}
	select {
	case <-l.claims:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("Listen %s did not sweep once it listened", s.Instance())
	}
	t.Cleanup(func() {
		l.cancel()
		select {
		case err := <-l.done:
			if err != nil {
				t.Errorf("Listen %s after cancel: %v, want nil", s.Instance(), err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Listen %s did not return after cancel", s.Instance())
		}
	})
	return l
}

// nextWake returns the next conversation woken, failing after a deadline.
func (l *listener) nextWake(t testing.TB) int64 {
	t.Helper()
	select {
	case id := <-l.wakes:
		return id
	case err := <-l.done:
		t.Fatalf("Listen returned: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no wake within 10s")
	}
	return 0
}

// nextClaimable waits for a claimable notice, failing after a deadline.
func (l *listener) nextClaimable(t testing.TB) {
	t.Helper()
	select {
	case <-l.claims:
	case err := <-l.done:
		t.Fatalf("Listen returned: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no claimable notice within 10s")
	}
}

// notify sends payload on the channel of dsn's schema, as another
// instance's transaction would: a marker that a test waits for, knowing
// that everything committed before it was delivered before it.
func notify(t testing.TB, dsn, payload string) {
	t.Helper()
	inSchema(t, dsn, `SELECT pg_notify(left('connectord.' || '$schema', 63), $1)`, payload).Close()
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count runs a one-number query in dsn's schema.
func count(t testing.TB, dsn, query string, args ...any) int {
	t.Helper()
	rows := inSchema(t, dsn, query, args...)
	defer rows.Close()
	var n int
	if !rows.Next() {
		t.Fatalf("%s: no row", query)
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func customer(i int) string { return fmt.Sprintf("+1555%07d", i) }
