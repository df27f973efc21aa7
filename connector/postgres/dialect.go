package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// batchTimeout bounds one batch of the writer's transaction.
const batchTimeout = 30 * time.Second

// dialect is how PostgreSQL differs from the other engine the shared store
// (connector/internal/sqlstore) serves.
func dialect() *sqlstore.Dialect {
	return &sqlstore.Dialect{
		Name:      "connector/postgres",
		ErrClosed: ErrClosed,
		Numbered:  true,
		// The id comes from the messages sequence, which never gives one
		// twice. A repeated source id hits a unique index and inserts
		// nothing (a sequence value is spent: ids have gaps, never repeats).
		NewMessageID: "DEFAULT",
		// A list of ids is one parameter: an array.
		InIDs:          "%s = ANY(?)",
		IDList:         func(ids []int64) (any, error) { return ids, nil },
		WriteProbe:     `UPDATE write_probe SET at = ? WHERE only_row = 1`,
		StorageFailure: storageFailure,
		// pgx keeps prepared statements per connection itself; the writer's
		// batches take any connection of the pool.
		PrepareWrites: false,
		BatchTimeout:  batchTimeout,
		// A batch of lazy writes commits without waiting for the WAL flush:
		// it survives this process dying, and is lost only if the server
		// crashes within wal_writer_delay. SET LOCAL ends with the
		// transaction, so the pooled connection goes back as it came.
		LazyTx: "SET LOCAL synchronous_commit = off",
		// Several instances may write the database: no cache of
		// conversations or opt-outs (CacheConversations, CacheOptOuts)
		// could stay exact.
		MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(migrationLock)),
	}
}

// storageFailure reports whether err is the server refusing to write or
// gone (no space, read-only, shut down, connection lost) rather than one
// request's own failure (a missing row, a constraint).
func storageFailure(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// Not the server's answer: the connection broke, or the batch timed out.
		return errors.Is(err, driver.ErrBadConn) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
			errors.As(err, new(*pgconn.ConnectError)) || errors.Is(err, sql.ErrConnDone) || isNetError(err)
	}
	switch pe.Code[:2] {
	case "08", "53", "57", "58", "XX": // connection, resources, operator intervention, system, internal
		return true
	}
	return pe.Code == "25006" // read_only_sql_transaction
}

// isNetError reports a network failure under err (a reset, a refused dial).
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
