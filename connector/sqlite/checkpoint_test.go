package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// The writer never checkpoints (its commits would stall behind the copy);
// the checkpointer copies the WAL into the database file on its own. About
// 2 MB written stays in the WAL under the writer alone (autocheckpoint off,
// and under SQLite's default of 4 MB too), so the database file growing
// shows the checkpointer at work.
func TestCheckpointerCopiesWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Errorf("writer: wal_autocheckpoint = %d, want 0 (the checkpointer's job)", auto)
	}
	before := fileSize(t, path)
	text := strings.Repeat("x", 2000)
	for i := range 1000 {
		_, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: fmt.Sprint("+1555", i),
			Text: text, SourceID: fmt.Sprint("SM", i)}, "whoson.sales")
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for fileSize(t, path) < before+1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (was %d) 20 s after 2 MB of writes: nothing checkpointed", fileSize(t, path), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
