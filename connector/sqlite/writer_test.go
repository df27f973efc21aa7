package sqlite

import (
	"context"
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"

	"github.com/connectord/connectord/connector/internal/sqlstore/sqlstoretest"
)

// TestWriter runs the shared writer's tests (batching, savepoint replay,
// callers giving up, counters) on SQLite.
func TestWriter(t *testing.T) {
	sqlstoretest.TestWriter(t, func(t *testing.T) sqlstoretest.Harness {
		s, _ := openInternal(t)
		// The writer's connection stays at NORMAL ("1"); a synced batch is
		// made durable by syncing the WAL after its commit.
		return sqlstoretest.Harness{Dialect: dialect(), Writer: s.w, Read: s.rdb, Ping: s.Ping,
			SyncQuery: "PRAGMA synchronous", Synced: "1", Lazy: "1", Syncs: s.wal.syncs.Load}
	})
}

// TestReads runs the shared read-after-write tests on SQLite, whose
// Conversation reads come from the writer's cache.
func TestReads(t *testing.T) {
	sqlstoretest.TestReads(t, func(t *testing.T) sqlstoretest.ReadsHarness {
		s, _ := openInternal(t)
		uncached := func(ctx context.Context, id int64) (*connector.Conversation, error) {
			return sqlrow.ScanConversation(s.rdb.DB.QueryRowContext(ctx,
				`SELECT `+sqlrow.ConversationColumns+` FROM conversations WHERE id = ?`, id))
		}
		return sqlstoretest.ReadsHarness{Store: s, Uncached: uncached}
	})
}
