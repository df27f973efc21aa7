package postgres

import (
	"context"
	"database/sql"
	"embed"

	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// migrationFiles are PostgreSQL's schema steps, migrations/NNNN_description.sql.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key every connectord takes while it
// migrates: two instances starting at once on a fresh database would
// otherwise both create the tables, and one would fail.
const migrationLock = 0x636f6e6e6563 // "connec"

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int { return sqlstore.SchemaVersion(migrationFiles) }

// migrate brings the database to the binary's schema version in one
// transaction (see sqlstore.Migrate), holding a transaction-scoped advisory
// lock: a second instance waits for the first to commit, then finds nothing
// left to do (each statement after the lock starts once it is granted, so
// under READ COMMITTED it sees what the first committed).
func migrate(ctx context.Context, db *sql.DB) error {
	return sqlstore.Migrate(ctx, db, dialect(), migrationFiles)
}
