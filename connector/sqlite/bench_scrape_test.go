package sqlite_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// scrapeConversations is the history BenchmarkScrape builds: what 30 days of
// retention hold on a busy deployment.
const scrapeConversations = 500_000

// buildHistory fills the database at path, closed, with n conversations
// through one INSERT ... SELECT each for conversations and messages (the API
// would take minutes): two channels, 3 in 1000 open, the rest ended, one
// sent message each, and 200 messages still in the outbox.
func buildHistory(b *testing.B, path string, n int) {
	b.Helper()
	db := raw(b, path)
	start := time.Now()
	for _, q := range []string{
		`WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO conversations (channel, customer, vendor, state, end_reason, created_at, updated_at, last_activity)
		SELECT CASE i % 2 WHEN 0 THEN 'sms.main' ELSE 'slack.support' END, '+1555' || i, 'whoson.sales',
			CASE i % 1000 WHEN 0 THEN 'pending' WHEN 1 THEN 'queued' WHEN 2 THEN 'active' ELSE 'ended' END,
			CASE WHEN i % 1000 > 2 THEN 'agent' ELSE '' END, i * 1000000, i * 1000000, i * 1000000
		FROM seq`,
		`INSERT INTO messages (conversation_id, channel, direction, kind, text, source_id, state, created_at, updated_at)
		SELECT id, channel, 'to_agent', 'text', 'Hello, I would like to know when my order will arrive, it has been a week.',
			'SM' || id, CASE WHEN id % 2500 = 0 THEN 'stored' ELSE 'sent' END, created_at, created_at
		FROM conversations WHERE id <= ?`,
		// The index the old count had, so that the old query runs on the old schema.
		`CREATE INDEX conversations_state ON conversations (state)`,
	} {
		if _, err := db.Exec(q, n); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d conversations in %v", n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkScrape measures what a /metrics scrape reads at 500k conversations:
// the old Stats queries (a count over every conversation) against the new
// Stats (conversation_counts) in the same binary and database, OpenCounts,
// OpenConversations with and without the partial index forced, and a Purge
// of 500 conversations. Stats/new reports old/new, the ratio of the two.
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	path := dbPath(b)
	if err := open(b, path).Close(); err != nil {
		b.Fatal(err)
	}
	buildHistory(b, path, scrapeConversations)
	s := open(b, path)
	old := readOnly(b, path)
	oldCount := prepare(b, old, `SELECT state, count(*) FROM conversations GROUP BY state`)
	oldOutbox := prepare(b, old, `SELECT count(*), min(created_at) FROM messages WHERE state = 'stored'`)

	var oldNs float64
	b.Run("Stats/old", func(b *testing.B) {
		for b.Loop() {
			if err := oldStats(ctx, oldCount, oldOutbox); err != nil {
				b.Fatal(err)
			}
		}
		oldNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("Stats/new", func(b *testing.B) {
		var st connector.Stats
		var err error
		for b.Loop() {
			if st, err = s.Stats(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if st.Conversations[connector.StateEnded] != scrapeConversations-3*scrapeConversations/1000 {
			b.Fatalf("Stats counted %v", st.Conversations)
		}
		if oldNs > 0 {
			b.ReportMetric(oldNs/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "old/new")
		}
	})
	b.Run("OpenCounts", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.OpenCounts(ctx, "sms.main"); err != nil {
				b.Fatal(err)
			}
		}
	})
	oldOpen := prepare(b, old, `SELECT id FROM conversations WHERE state != 'ended' ORDER BY id`)
	b.Run("OpenConversations/old", func(b *testing.B) {
		for b.Loop() {
			if err := drain(ctx, oldOpen); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OpenConversations/new", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.OpenConversations(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Purge500", func(b *testing.B) {
		cutoff := time.Now()
		for b.Loop() {
			if n, err := s.Purge(ctx, cutoff, 500); err != nil || n != 500 {
				b.Fatalf("Purge = %d, %v", n, err)
			}
		}
	})
}

func readOnly(b *testing.B, path string) *sql.DB {
	b.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func prepare(b *testing.B, db *sql.DB, query string) *sql.Stmt {
	b.Helper()
	st, err := db.Prepare(query)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// oldStats runs what Stats ran before conversation_counts.
func oldStats(ctx context.Context, count, outbox *sql.Stmt) error {
	if err := drain(ctx, count); err != nil {
		return err
	}
	var (
		depth  int
		oldest sql.NullInt64
	)
	return outbox.QueryRowContext(ctx).Scan(&depth, &oldest)
}

// drain reads every row of st's query.
func drain(ctx context.Context, st *sql.Stmt) error {
	rows, err := st.QueryContext(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
