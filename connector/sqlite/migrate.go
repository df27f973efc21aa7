package sqlite

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
// transaction (see sqlstore.Migrate). The one writing connection is the
// only one that migrates, and BEGIN IMMEDIATE (its transactions' mode) keeps
// another process out meanwhile.
func migrate(ctx context.Context, conn *sql.Conn) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := sqlstore.Migrate(ctx, tx, dialect(), ms); err != nil {
		return err
	}
	return tx.Commit()
}
