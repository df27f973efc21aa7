package sqlite

import (
	"testing"

	"github.com/connectord/connectord/connector/internal/sqlstore/sqlstoretest"
)

// TestWriter runs the shared writer's tests (batching, savepoint replay,
// callers giving up, counters) on SQLite.
func TestWriter(t *testing.T) {
	sqlstoretest.TestWriter(t, func(t *testing.T) sqlstoretest.Harness {
		s, _ := openInternal(t)
		return sqlstoretest.Harness{Dialect: dialect(), Writer: s.w, Read: s.rdb, Ping: s.Ping}
	})
}
