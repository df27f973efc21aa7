// Package postgres is the connector.Store on a PostgreSQL server: the same
// semantics as connector/sqlite (the reference), for deployments that keep
// their state in a database server. Every write goes through one writer
// goroutine that commits concurrent writes together (group commit); reads use
// the connection pool directly.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("connector/postgres: store is closed")

// Store is the PostgreSQL connector.Store. Open it with Open; it is safe for
// concurrent use.
type Store struct {
	db     *sql.DB
	rdb    *sql.DB // the same pool; named apart so that reads read as reads
	w      *writer
	closed atomic.Bool
}

var _ connector.Store = (*Store)(nil)

// maxConns bounds the pool: one connection for the writer's transaction and
// a few for readers.
const maxConns = 8

// Open connects to the database dsn names (a postgres:// URL or a key=value
// string), brings its schema up to date under an advisory lock (so that
// several connectord starting at once migrate it once), and starts the
// writer. A database written by a newer connectord is refused.
//
// No error carries dsn or its password: errors end up in logs.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, redactedError("parse the database DSN", err, dsn)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, redactedError("connect to the database", err, dsn)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, redactedError("migrate the database", err, dsn)
	}
	s := &Store{db: db, rdb: db, w: newWriter(db)}
	go s.w.run()
	return s, nil
}

// Close finishes the writes already handed to the writer, then closes the
// pool. Every later call, Close included, returns ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	s.w.stop()
	return s.db.Close()
}

// Ping commits a write: it rewrites the one row of write_probe through the
// writer, in the next batch like any write, so a server that refuses writes
// (read-only, disk full, gone) fails Ping and counts in Stats.WriteErrors.
func (s *Store) Ping(ctx context.Context) error {
	err := s.write(ctx, func(ctx context.Context, tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE write_probe SET at = $1 WHERE only_row = 1`, sqlrow.NowNanos())
		return err
	})
	if err != nil {
		return fmt.Errorf("connector/postgres: write probe: %w", err)
	}
	return nil
}

// write runs op in the writer's next batch; see writer.do.
func (s *Store) write(ctx context.Context, op func(ctx context.Context, tx *txn) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.w.do(ctx, op)
}

// reader returns the pool for reads, or ErrClosed.
func (s *Store) reader() (*sql.DB, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.rdb, nil
}

// redactedError describes err without the DSN: pgx's connection errors name
// the host, user and database, and a parse error may quote the DSN. Every URL
// in the text loses its userinfo and query, and the password itself, wherever
// it still stands, is blotted out. The cause is not wrapped: whoever unwraps
// it would find the unredacted text again.
func redactedError(what string, err error, dsn string) error {
	msg := connector.RedactText(err.Error())
	for _, secret := range dsnSecrets(dsn) {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	return fmt.Errorf("connector/postgres: %s: %s", what, msg)
}

// dsnSecrets returns what in dsn must never be shown: the whole DSN and its
// password as pgx reads it (from a URL, a query parameter or a key=value
// string, quoted or not), raw and URL-escaped.
func dsnSecrets(dsn string) []string {
	out := []string{dsn}
	if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
		p := cfg.Password
		out = append(out, p, url.PathEscape(p), url.QueryEscape(p), url.UserPassword("", p).String()[1:])
	}
	return out
}
