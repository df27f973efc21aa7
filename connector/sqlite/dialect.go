package sqlite

import (
	"encoding/json"
	"errors"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// dialect is how SQLite differs from the other engine the shared store
// (connector/internal/sqlstore) serves.
func dialect() *sqlstore.Dialect {
	return &sqlstore.Dialect{
		Name:      "connector/sqlite",
		ErrClosed: ErrClosed,
		// SQLite has no statistics here (nothing runs ANALYZE): without
		// INDEXED BY it may scan every conversation ever kept where a partial
		// index holds only what the query wants, and with it a plan that
		// would scan is an error instead.
		IndexedBy: func(index string) string { return " INDEXED BY " + index },
		// The id is above every id given before, deleted ones included (see
		// message_id_floor in migration 0006); both lookups are one index seek.
		NewMessageID: "max(coalesce((SELECT max(id) FROM messages), 0), (SELECT id FROM message_id_floor)) + 1",
		// A list of ids is one parameter: a JSON array.
		InIDs:          "%s IN (SELECT value FROM json_each(?))",
		IDList:         jsonIDs,
		WriteProbe:     `UPDATE write_probe SET at = ? WHERE only = 1`,
		StorageFailure: storageFailure,
		// The one writing connection keeps its statements prepared.
		PrepareWrites: true,
		// The writer's connection commits with synchronous=NORMAL: in WAL
		// mode a commit is written to the WAL (the OS page cache, which
		// outlives a killed process) without a sync. A batch of lazy writes
		// stops there; the next synced batch, or a checkpoint, makes it
		// durable. A synced batch is then made durable by walSync (set by
		// Open: it needs the file's path).
		// Only this process writes the file (the writer is its one writing
		// connection), so the writer can keep a cache of conversations exact.
		CacheConversations: true,
		// Likewise its copy of opt_outs, read for every relayed SMS.
		CacheOptOuts: true,
		// And its set of the lines to the agent still stored, asked about
		// before every line the router sends to an agent.
		CacheWaiting: true,
	}
}

func jsonIDs(ids []int64) (any, error) {
	b, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// storageFailure reports whether err is SQLite refusing to write (a full or
// read-only disk, an I/O error, a damaged file) rather than one request's own
// failure (a missing row, a constraint).
func storageFailure(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code, without the extended part
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOMEM:
		return true
	}
	return false
}
