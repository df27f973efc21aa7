package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

// createV3 writes a database as connectord with schema version 3 left it
// (the migration files themselves, applied by hand), holding conversations
// and messages, and returns the highest message id.
func createV3(t *testing.T, path string) int64 {
	t.Helper()
	db := raw(t, path)
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/000[123]_*.sql")
	if err != nil || len(files) != 3 {
		t.Fatalf("migrations 1-3: %v %v", files, err)
	}
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour).UnixNano()
	for _, c := range []struct{ channel, customer, state string }{
		{"sms.main", "a", "pending"}, {"sms.main", "b", "queued"}, {"sms.main", "c", "ended"},
		{"sms.main", "d", "ended"}, {"slack.support", "e", "active"}, {"slack.support", "f", "ended"},
	} {
		_, err := db.Exec(`INSERT INTO conversations (channel, customer, vendor, state, created_at, updated_at, last_activity)
			VALUES (?, ?, 'v', ?, ?, ?, ?)`, c.channel, c.customer, c.state, old, old, old)
		if err != nil {
			t.Fatal(err)
		}
	}
	// The newest message is in an ended conversation (6, slack f), sent.
	for i, conv := range []int{1, 2, 3, 4, 6} {
		_, err := db.Exec(`INSERT INTO messages (conversation_id, channel, direction, kind, source_id, state, created_at, updated_at)
			SELECT id, channel, 'to_agent', 'text', ?, 'sent', ?, ? FROM conversations WHERE id = ?`, i, old, old, conv)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return 5
}

// TestMigrationBackfills opens a version 3 database with data: the counts
// are backfilled, old messages have no attempts, and purging the newest
// message does not let its id be given again.
func TestMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	newest := createV3(t, path)
	s := open(t, path)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[connector.State]int{connector.StatePending: 1, connector.StateQueued: 1, connector.StateActive: 1, connector.StateEnded: 3}
	if d := diffCounts(want, st.Conversations); d != "" {
		t.Errorf("Stats.Conversations after migrating: %s", d)
	}
	sms, err := s.OpenCounts(ctx, "sms.main")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffCounts(map[connector.State]int{connector.StatePending: 1, connector.StateQueued: 1}, sms); d != "" {
		t.Errorf("OpenCounts(sms.main) after migrating: %s", d)
	}
	if n, err := s.CountAttempt(ctx, 1); n != 1 || err != nil {
		t.Errorf("first CountAttempt of a message from before the migration = %d, %v; want 1", n, err)
	}
	if n, err := s.Purge(ctx, time.Now(), 100); n != 3 || err != nil {
		t.Fatalf("Purge = %d, %v; want the 3 ended conversations", n, err)
	}
	in, err := s.RecordInbound(ctx, connector.Inbound{Channel: "slack.support", Customer: "f", SourceID: "new"}, "v")
	if err != nil {
		t.Fatal(err)
	}
	if in.Message.ID <= newest {
		t.Errorf("message id %d given after purging message %d", in.Message.ID, newest)
	}
}

// diffCounts compares counts, leaving out zeros (a store may report them or not).
func diffCounts(want, got map[connector.State]int) string {
	return cmp.Diff(nonZero(want), nonZero(got))
}

func nonZero(m map[connector.State]int) map[connector.State]int {
	out := map[connector.State]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
