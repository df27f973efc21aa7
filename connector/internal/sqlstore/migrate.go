package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// Migrate brings the database to the schema version of ms (the engine's
// embedded steps, in version order) inside tx: either every pending step is
// applied or none, once the caller commits. The caller begins tx, takes
// whatever lock its engine needs so that two processes never migrate at
// once, and commits. A database whose version is newer than the binary's is
// refused, because an older binary writing to it could break invariants it
// does not know about.
func Migrate(ctx context.Context, tx *sql.Tx, d *Dialect, ms []sqlrow.Migration) error {
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
