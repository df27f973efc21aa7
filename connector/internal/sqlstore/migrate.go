package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// SchemaVersion is the schema version the steps in files' "migrations"
// directory (NNNN_description.sql, see sqlrow.Migrations) bring a database
// to; 0 when they are not well numbered, which every test of the engine
// then fails on.
func SchemaVersion(files fs.FS) int {
	ms, err := sqlrow.Migrations(files, "migrations")
	if err != nil {
		return 0
	}
	return len(ms)
}

// Beginner begins a transaction: a *sql.DB, or a *sql.Conn when the
// migration must run on one connection.
type Beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Migrate brings the database to the schema version of the steps in files'
// "migrations" directory in one transaction: either every pending step is
// applied or none. The transaction first runs the dialect's MigrationLock,
// so that processes starting at once migrate once. A database whose version
// is newer than the binary's is refused, because an older binary writing to
// it could break invariants it does not know about.
func Migrate(ctx context.Context, db Beginner, d *Dialect, files fs.FS) error {
	ms, err := sqlrow.Migrations(files, "migrations")
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.MigrationLock); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
	}
	if err := migrate(ctx, tx, d, ms); err != nil {
		return err
	}
	return tx.Commit()
}

func migrate(ctx context.Context, tx *sql.Tx, d *Dialect, ms []sqlrow.Migration) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT  NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d: upgrade connectord", current, len(ms))
	}
	record := d.Bind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`)
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, record, m.Version, sqlrow.NowNanos()); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return nil
}
