package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// countingReads is a read pool that counts the queries run on it.
type countingReads struct {
	sqlrow.Queryer
	n atomic.Int64
}

func (c *countingReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	c.n.Add(1)
	return c.Queryer.QueryRowContext(ctx, query, args...)
}

func (c *countingReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.n.Add(1)
	return c.Queryer.QueryContext(ctx, query, args...)
}

// TestOptedOutReadsNoDatabase: the SMS channel asks OptedOut for every
// message it relays, both ways; SQLite answers from the writer's set, never
// from the read pool, and still sees each write on return.
func TestOptedOutReadsNoDatabase(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	reads := &countingReads{Queryer: s.rdb}
	s.Store = sqlstore.New(dialect(), s.w, reads, "")
	const ch, us, alice, bob = "sms.main", "+15551230000", "+15550000001", "+15550000002"
	for _, out := range []bool{true, false, true} {
		if err := s.SetOptOut(ctx, ch, us, alice, out); err != nil {
			t.Fatal(err)
		}
		for customer, want := range map[string]bool{alice: out, bob: false} {
			if got, err := s.OptedOut(ctx, ch, us, customer); err != nil || got != want {
				t.Errorf("OptedOut(%s) after SetOptOut(alice, %v) = %v, %v; want %v", customer, out, got, err, want)
			}
		}
	}
	if n := reads.n.Load(); n != 0 {
		t.Errorf("OptedOut ran %d queries on the read pool, want none", n)
	}
}

// TestOpenConversationsWarmCache: a starting router lists the open
// conversations and then reads each one again to resume its chat; the list
// leaves them cached, so those reads cost no query.
func TestOpenConversationsWarmCache(t *testing.T) {
	ctx := context.Background()
	s, path := openInternal(t)
	const n = 5
	for i := range n {
		in := connector.Inbound{Channel: "sms.main", Customer: fmt.Sprint("+1555000000", i), SourceID: fmt.Sprint("SM", i), Text: "hi"}
		if _, err := s.RecordInbound(ctx, in, "whoson.main"); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reads := &countingReads{Queryer: s.rdb}
	s.Store = sqlstore.New(dialect(), s.w, reads, "")
	open, err := s.OpenConversations(ctx)
	if err != nil || len(open) != n {
		t.Fatalf("OpenConversations: %d, %v; want %d", len(open), err, n)
	}
	listed := reads.n.Load()
	for _, c := range open {
		got, err := s.Conversation(ctx, c.ID)
		if err != nil || got.Customer != c.Customer {
			t.Errorf("Conversation(%d) = %+v, %v; want %s's", c.ID, got, err, c.Customer)
		}
	}
	if q := reads.n.Load() - listed; q != 0 {
		t.Errorf("reading the %d listed conversations ran %d queries, want none", n, q)
	}
}
