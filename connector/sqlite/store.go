// Package sqlite is the embedded connector.Store: one SQLite file in WAL mode,
// written by a single goroutine that commits concurrent writes together
// (group commit) and read through a pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("connector/sqlite: store is closed")

// Store is the SQLite connector.Store. Open it with Open; it is safe for
// concurrent use.
type Store struct {
	// Store is every method but Close, shared with connector/postgres.
	*sqlstore.Store
	wdb *sql.DB               // one connection, used only by the writer
	rdb *sqlstore.CachedReads // read-only pool; WAL lets readers run beside the writer
	w   *sqlstore.Writer
	ckp *checkpointer // WAL checkpoints, off the writer's commits
	wal *walSync      // makes the writer's synced commits durable
}

var _ connector.Store = (*Store)(nil)

// pragmas apply to every connection. synchronous=FULL makes a returned commit
// survive power loss, not only a crash of the process; the writer's own
// connection overrides it with NORMAL and syncs the WAL itself (walSync).
// Group commit is what keeps that affordable. busy_timeout covers another
// process (an operator command) holding the file briefly.
var pragmas = []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"}

// Open opens (creating it and its directory if needed) the database at path,
// brings its schema up to date, and starts the writer. A database written by a
// newer connectord is refused.
//
// No error names path: a DSN may carry a password (a server database's does),
// and errors end up in logs. They say "the database file" instead; the caller
// knows which configuration key gave the path.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.Contains(path, "://") {
		return nil, errors.New("connector/sqlite: invalid database path: empty, a URL, or with a '?' (parameters are not accepted)")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("connector/sqlite: create the database file's directory: %w", withoutPath(err))
	}
	wdb, err := openWriter(ctx, path)
	if err != nil {
		return nil, err
	}
	rdb, err := openReaders(ctx, path)
	if err != nil {
		wdb.Close()
		return nil, err
	}
	ckp, err := startCheckpointer(ctx, path)
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, err
	}
	d := dialect()
	wal := &walSync{path: path + "-wal"}
	d.SyncCommit = wal.sync
	s := &Store{wdb: wdb, rdb: sqlstore.NewCachedReads(rdb), w: sqlstore.NewWriter(wdb, d), ckp: ckp, wal: wal}
	s.Store = sqlstore.New(d, s.w, s.rdb, "")
	if err := sqlstore.Load(ctx, s.Store); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// dsn builds a modernc.org/sqlite DSN for path with the common pragmas and extra parameters.
func dsn(path string, extra ...string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		q.Add(k, v)
	}
	return path + "?" + q.Encode()
}

// openWriter opens the single writing connection and migrates through it.
// Its transactions BEGIN IMMEDIATE, so that a write never has to upgrade a
// read lock (which could fail with SQLITE_BUSY against another process). The
// connection is kept for the life of the store, so that the statements the
// writer prepares on it stay prepared.
func openWriter(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, "_txlock=immediate", "_pragma=wal_autocheckpoint(0)", "_pragma=synchronous(NORMAL)"))
	if err != nil {
		return nil, fmt.Errorf("connector/sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err == nil {
		err = checkWAL(ctx, conn)
	}
	if err == nil {
		err = migrate(ctx, conn)
	}
	if conn != nil {
		err = errors.Join(err, conn.Close()) // back to the pool, for the writer
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connector/sqlite: open the database file: %w", withoutPath(err))
	}
	return db, nil
}

// checkWAL verifies that the journal mode really is WAL: on a file system
// without shared memory support SQLite silently keeps the old mode, and
// readers would then block the writer.
func checkWAL(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

func openReaders(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		return nil, fmt.Errorf("connector/sqlite: open readers: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connector/sqlite: open readers: %w", withoutPath(err))
	}
	return db, nil
}

// Close finishes the writes already handed to the writer, then closes the
// database. Every later call, Close included, returns ErrClosed.
func (s *Store) Close() error {
	if !s.w.Stop() {
		return ErrClosed
	}
	// The checkpointer first, the writer's connection last: the last
	// connection to close checkpoints what is left and removes the WAL.
	return errors.Join(s.ckp.close(), s.rdb.Close(), s.wdb.Close(), s.wal.close())
}

// withoutPath keeps the file's name out of err: an os function's
// *fs.PathError is replaced by its operation and cause (which errors.Is and
// errors.As still find). SQLite's own errors do not name the file.
func withoutPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok { //nolint:errorlint // only an os function's own error, not one wrapped with context
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
