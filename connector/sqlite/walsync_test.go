package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/connectord/connectord/connector"
)

// A synced write returns only once the WAL was synced after its commit; when
// the sync fails the write fails (its caller does not acknowledge it) and
// counts as a write error, and a lazy write, which needs no sync, still
// works.
func TestSyncedWriteNeedsWALSync(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	in := func(i int) connector.Inbound {
		return connector.Inbound{Channel: "sms.main", Customer: "+15550000001", SourceID: "SM" + string(rune('a'+i)), Text: "hi"}
	}
	before := s.wal.syncs.Load()
	if _, err := s.RecordInbound(ctx, in(0), "whoson.main"); err != nil {
		t.Fatal(err)
	}
	if n := s.wal.syncs.Load() - before; n != 1 {
		t.Errorf("one synced write: %d WAL syncs, want 1", n)
	}

	s.wal.mu.Lock()
	s.wal.path = filepath.Join(t.TempDir(), "no-such-wal") // the sync now fails
	s.wal.mu.Unlock()
	errs := writeErrors(t, s)
	if _, err := s.RecordInbound(ctx, in(1), "whoson.main"); err == nil {
		t.Error("a synced write whose WAL sync failed reported success")
	}
	if writeErrors(t, s) != errs+1 {
		t.Error("the failed sync is not counted as a write error")
	}
	open, err := s.OpenConversations(ctx)
	if err != nil || len(open) != 1 {
		t.Fatalf("open conversations %d, %v", len(open), err)
	}
	if err := s.NoteSendProgress(ctx, 1, []byte(`{}`)); err != nil {
		t.Errorf("a lazy write failed with the WAL sync failing: %v", err)
	}
}
