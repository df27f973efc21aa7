package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

func openInternal(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func writeErrors(t *testing.T, s *Store) uint64 {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.WriteErrors
}

// TestPingFailsWhenWritesAreRefused makes SQLite refuse every write on the
// writer's connection (query_only gives the same SQLITE_READONLY as a file
// system remounted read-only, and works as root, which chmod does not stop):
// Ping must fail and WriteErrors count it, while a request's own failure
// (an unknown message) is not a write error.
func TestPingFailsWhenWritesAreRefused(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a healthy store: %v", err)
	}
	if err := s.MarkSent(ctx, 4242, ""); !errors.Is(err, connector.ErrNotFound) {
		t.Fatalf("MarkSent(unknown) = %v", err)
	}
	if n := writeErrors(t, s); n != 0 {
		t.Fatalf("WriteErrors = %d on a healthy store", n)
	}

	setQueryOnly(t, s, true)
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded on a store that cannot write")
	} else {
		t.Logf("Ping: %v", err)
	}
	if _, err := s.RecordInbound(ctx, connector.Inbound{Channel: "c", Customer: "u", SourceID: "1"}, "v"); err == nil {
		t.Error("RecordInbound succeeded on a store that cannot write")
	}
	if n := writeErrors(t, s); n != 2 {
		t.Errorf("WriteErrors = %d after two refused writes, want 2", n)
	}

	setQueryOnly(t, s, false)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after writes are allowed again: %v", err)
	}
}

// setQueryOnly sets query_only on the writer's one connection.
func setQueryOnly(t *testing.T, s *Store, on bool) {
	t.Helper()
	if on {
		setPragma(t, s, "query_only = 1")
	} else {
		setPragma(t, s, "query_only = 0")
	}
}

// setPragma runs a PRAGMA on the writer's one connection, which is idle
// between batches.
func setPragma(t *testing.T, s *Store, pragma string) {
	t.Helper()
	if _, err := s.wdb.ExecContext(context.Background(), "PRAGMA "+pragma); err != nil {
		t.Fatal(err)
	}
}

// TestPingFailsOnImmutableFile is the real thing: the database and its WAL
// made immutable (chattr +i, which stops root too) under an open store, so
// that the commit's write(2) fails. It needs chattr and a file system that
// supports the flag, and is skipped, saying so, where they are missing;
// TestPingFailsWhenWritesAreRefused covers the same path everywhere.
func TestPingFailsOnImmutableFile(t *testing.T) {
	ctx := context.Background()
	s, path := openInternal(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	files := []string{path, path + "-wal"}
	for i, f := range files {
		if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
			chattr(t, files[:i], "-i")
			t.Skipf("chattr +i is not available here (%v: %s)", err, strings.TrimSpace(string(out)))
		}
	}
	t.Cleanup(func() { chattr(t, files, "-i") }) // before TempDir's removal: cleanups run last first

	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded on an immutable database")
	} else {
		t.Logf("Ping: %v", err)
	}
	if n := writeErrors(t, s); n != 1 {
		t.Errorf("WriteErrors = %d, want 1", n)
	}
	chattr(t, files, "-i")
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once the file is writable again: %v", err)
	}
}

func chattr(t *testing.T, files []string, flag string) {
	t.Helper()
	for _, f := range files {
		if out, err := exec.Command("chattr", flag, f).CombinedOutput(); err != nil {
			t.Errorf("chattr %s %s: %v: %s", flag, f, err, out)
		}
	}
}

// TestWriteErrorsCountsAFullDatabase: a write that fails inside its request
// because the disk is full (max_page_count caps the file at its current
// size) fails the batch's transaction and counts as a write error, unlike a
// request's own failure.
func TestWriteErrorsCountsAFullDatabase(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	var pages int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setPragma(t, s, fmt.Sprintf("max_page_count = %d", pages))
	big := connector.Inbound{Channel: "c", Customer: "u", SourceID: "1", Text: strings.Repeat("x", 64<<10)}
	_, err := s.RecordInbound(ctx, big, "v")
	if err == nil {
		t.Fatal("RecordInbound succeeded on a full database")
	}
	t.Logf("RecordInbound: %v", err)
	if n := writeErrors(t, s); n != 1 {
		t.Errorf("WriteErrors = %d after a write the full disk refused, want 1", n)
	}
	setPragma(t, s, "max_page_count = 1073741823")
	if _, err := s.RecordInbound(ctx, big, "v"); err != nil {
		t.Errorf("RecordInbound once there is room: %v", err)
	}
}

// TestStatementRefusedByDiskIsAWriteError: SQLite may keep the transaction
// open after a statement fails for I/O reasons; such a failure is still the
// disk refusing the write, not the request's own error, so it counts.
// query_only, set inside the transaction, refuses just that statement.
func TestStatementRefusedByDiskIsAWriteError(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	err := s.w.Do(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO conversations (channel, customer, vendor, state,
			created_at, updated_at, last_activity) VALUES ('c', 'u', 'v', 'pending', 1, 1, 1)`)
		if _, e := tx.ExecContext(ctx, "PRAGMA query_only = 0"); e != nil {
			t.Fatal(e)
		}
		return err
	})
	if err == nil {
		t.Fatal("the refused insert reported success")
	}
	if n := writeErrors(t, s); n != 1 {
		t.Errorf("WriteErrors = %d, want 1 (%v)", n, err)
	}
}
