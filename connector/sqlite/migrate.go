package sqlite

import (
	"context"
	"database/sql"
	"embed"

	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// migrationFiles are SQLite's schema steps, migrations/NNNN_description.sql.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int { return sqlstore.SchemaVersion(migrationFiles) }

// migrate brings the database to the binary's schema version in one
// transaction (see sqlstore.Migrate) on the writing connection, whose
// transactions BEGIN IMMEDIATE: another process waits meanwhile.
func migrate(ctx context.Context, conn *sql.Conn) error {
	return sqlstore.Migrate(ctx, conn, dialect(), migrationFiles)
}
