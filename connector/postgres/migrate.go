package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/connectord/connectord/connector/internal/sqlrow"
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key every connectord takes while it
// migrates: two instances starting at once on a fresh database would
// otherwise both create the tables, and one would fail.
const migrationLock = 0x636f6e6e6563 // "connec"

// migrations returns the embedded steps in version order.
func migrations() ([]sqlrow.Migration, error) { return sqlrow.Migrations(migrationFiles, "migrations") }

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the database to the binary's schema version in one
// transaction (see sqlstore.Migrate), holding a transaction-scoped advisory
// lock: a second instance waits for the first to commit, then finds nothing
// left to do.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Each statement after this one starts once the lock is granted, so
	// under READ COMMITTED it sees what the instance that held the lock
	// committed.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if err := sqlstore.Migrate(ctx, tx, dialect(), ms); err != nil {
		return err
	}
	return tx.Commit()
}
