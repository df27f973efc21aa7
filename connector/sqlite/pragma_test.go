package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// TestPragmas checks the settings durability and concurrency rely on, on the
// writer's connection and on a reader's.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "busy_timeout": "10000", "foreign_keys": "1"}
	for pragma, value := range want {
		var got string
		if err := s.wdb.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		// The writer commits with NORMAL and syncs the WAL itself (walSync).
		if wantW := map[string]string{"synchronous": "1"}[pragma]; wantW != "" && got != wantW || wantW == "" && got != value {
			t.Errorf("writer: PRAGMA %s = %s", pragma, got)
		}
		if err := s.rdb.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != value {
			t.Errorf("reader: PRAGMA %s = %s, want %s", pragma, got, value)
		}
	}
	if _, err := s.rdb.DB.ExecContext(ctx, `DELETE FROM messages`); err == nil {
		t.Errorf("a reader connection could write")
	}
}
