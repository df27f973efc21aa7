package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Schema is what CheckConnect found: the database's schema version and the
// one this binary writes.
type Schema struct {
	Version int // 0: connectord never ran on this database
	Binary  int
}

// CheckConnect connects to the database dsn names and reads its schema
// version, changing nothing (no migration runs). It fails when the server
// cannot be reached, refuses the login, or holds a schema newer than this
// binary's; an older schema is reported, since run migrates it. No error
// carries the DSN or its password.
func CheckConnect(ctx context.Context, dsn string) (Schema, error) {
	s := Schema{Binary: SchemaVersion()}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return s, redactedError("parse the database DSN", err, dsn)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return s, redactedError("connect to the database", err, dsn)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&s.Version)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: never migrated
		return s, nil
	}
	if err != nil {
		return s, redactedError("read the schema version", err, dsn)
	}
	if s.Version > s.Binary {
		return s, fmt.Errorf("connector/postgres: database schema version %d is newer than this binary's %d: upgrade connectord", s.Version, s.Binary)
	}
	return s, nil
}
