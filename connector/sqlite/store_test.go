package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/connector/sqlite"
)

// TestMain fails the package when a goroutine outlives its test: every Store
// was closed by then, so the writer and the database handles must be gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	connectortest.TestStore(t, func(t *testing.T) connector.Store { return open(t, dbPath(t)) })
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "c.db") }

// open opens a store that is closed when the test ends (unless it was already).
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, sqlite.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// raw opens the database file directly, to look at or tamper with the schema.
func raw(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func appliedVersions(t *testing.T, path string) []int {
	t.Helper()
	rows, err := raw(t, path).Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsAppliedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "c.db") // Open creates the directories
	want := make([]int, sqlite.SchemaVersion())
	for i := range want {
		want[i] = i + 1
	}
	if len(want) == 0 {
		t.Fatal("no migrations embedded")
	}
	for range 3 {
		s := open(t, path)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, appliedVersions(t, path)); d != "" {
			t.Fatalf("schema_migrations (-want +got):\n%s", d)
		}
	}
	info, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("created directory has mode %o, want 700", perm)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := dbPath(t)
	if err := open(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	future := sqlite.SchemaVersion() + 1
	if _, err := raw(t, path).Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, future); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a database newer than the binary")
	}
	if !strings.Contains(err.Error(), fmt.Sprint(future)) || !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer (version %d)", err, future)
	}
}

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	s := open(t, path)
	in, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "+1555", SourceID: "SM1",
		Text: "kept", Profile: connector.Profile{Name: "Kim"}}, "v")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply(ctx, connector.Change{ConversationID: in.Conversation.ID, State: connector.StateQueued,
		Session: []byte(`{"chat":7}`), Messages: []*connector.Message{{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "queued"}}})
	if err != nil {
		t.Fatal(err)
	}
	wantMsgs, err := s.Messages(ctx, in.Conversation.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	got, err := s.Conversation(ctx, in.Conversation.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(res.Conversation, got); d != "" {
		t.Errorf("conversation after reopen (-before +after):\n%s", d)
	}
	msgs, err := s.Messages(ctx, in.Conversation.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantMsgs, msgs); d != "" {
		t.Errorf("messages after reopen (-before +after):\n%s", d)
	}
	dup, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "+1555", SourceID: "SM1"}, "v")
	if err != nil || !dup.Duplicate {
		t.Errorf("de-duplication key lost on reopen: Duplicate=%v err=%v", dup.Duplicate, err)
	}
}

// TestCloseDrainsQueuedWrites closes the store under concurrent writes:
// every write either fails with ErrClosed or is acknowledged and then found
// in the file.
func TestCloseDrainsQueuedWrites(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	s := open(t, path)
	const n = 1000
	var ok atomic.Int64
	done := make(chan struct{}, n)
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			_, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: fmt.Sprint(i % 7),
				SourceID: fmt.Sprint("SM", i)}, "v")
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, sqlite.ErrClosed):
				t.Errorf("write %d: %v", i, err)
			}
		}()
	}
	for ok.Load() < 100 { // let writes pile up in the writer's queue
		runtime.Gosched()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		<-done
	}
	outbox, err := open(t, path).Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(outbox)) != ok.Load() {
		t.Errorf("%d writes acknowledged, %d in the file", ok.Load(), len(outbox))
	}
	t.Logf("%d of %d writes acknowledged before Close", ok.Load(), n)
}
