package postgres

import (
	"testing"

	"github.com/connectord/connectord/connector/internal/sqlstore/sqlstoretest"
)

// TestWriter runs the shared writer's tests (batching, savepoint replay,
// callers giving up, counters) on PostgreSQL.
func TestWriter(t *testing.T) {
	sqlstoretest.TestWriter(t, func(t *testing.T) sqlstoretest.Harness {
		s := open(t, freshDSN(t))
		return sqlstoretest.Harness{Dialect: dialect(), Writer: s.w, Read: s.rdb, Ping: s.Ping,
			SyncQuery: "SHOW synchronous_commit", Synced: "on", Lazy: "off"}
	})
}

// TestReads runs the shared read-after-write tests on PostgreSQL.
func TestReads(t *testing.T) {
	sqlstoretest.TestReads(t, func(t *testing.T) sqlstoretest.ReadsHarness {
		s := open(t, freshDSN(t))
		return sqlstoretest.ReadsHarness{Store: s, Uncached: s.Conversation} // no cache here
	})
}
