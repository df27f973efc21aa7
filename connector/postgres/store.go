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
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("connector/postgres: store is closed")

// Store is the PostgreSQL connector.Store. Open it with Open, or with
// OpenWith to share the database with other instances (connector.Cluster); it
// is safe for concurrent use.
type Store struct {
	// Store is every method but Close, shared with connector/sqlite; it
	// sees what this instance owns when the store is shared.
	*sqlstore.Store
	db  *sql.DB
	rdb *sql.DB // the same pool; named apart so that reads read as reads
	w   *sqlstore.Writer

	// What OpenWith adds; all zero for a store that is not shared.
	instance string
	ttl      time.Duration
	epoch    atomic.Int64    // this process's lease epoch, set by Join; 0 before
	cdb      *sql.DB         // a small pool of its own for leases and claims
	listen   *pgx.ConnConfig // what Listen connects with
	channel  string          // the NOTIFY channel of this store's schema
	dsn      string          // only to redact it from errors

	// Test hooks, nil in production: claimLocked runs inside Claim once the
	// dead instances' leases are locked, onListen once LISTEN is in effect.
	claimLocked func()
	onListen    func()
}

var (
	_ connector.Store   = (*Store)(nil)
	_ connector.Cluster = (*Store)(nil)
)

// maxConns bounds the pool: one connection for the writer's transaction and
// a few for readers.
const maxConns = 8

// Open connects to the database dsn names (a postgres:// URL or a key=value
// string), brings its schema up to date under an advisory lock (so that
// several connectord starting at once migrate it once), and starts the
// writer. A database written by a newer connectord is refused.
//
// The store is not shared: it serves every conversation, as OpenWith with no
// Instance does.
//
// No error carries dsn or its password: errors end up in logs.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// Options say how a store is shared.
type Options struct {
	// Instance is this connectord's id among those sharing the database: 1
	// to 63 characters of A-Z, a-z, 0-9, '.', '_' and '-'. Empty: the store is
	// not shared (one instance serves everything) and the Cluster methods
	// other than Instance and LeaseTTL fail.
	Instance string
	// LeaseTTL is how long the instance's lease and the roles it leads last
	// after each renewal; DefaultLeaseTTL when zero. Another instance takes
	// over a dead one's conversations about this long after its last renewal.
	LeaseTTL time.Duration
}

// DefaultLeaseTTL is the lease length when Options.LeaseTTL is zero.
const DefaultLeaseTTL = 5 * time.Second

// clusterConns bounds the pool for leases and claims: a renewal, a claim and
// a role's lead at once. It is apart from the main pool so that a renewal
// never waits for a connection behind slow reads or a long write batch.
const clusterConns = 3

// OpenWith is Open for a store that may be shared by several instances (see
// Options and connector.Cluster). With an Instance, every connection the
// store opens carries it as the session setting connectord.instance, which
// the database's notification trigger reads to tell whose write it is.
func OpenWith(ctx context.Context, dsn string, o Options) (*Store, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, redactedError("parse the database DSN", err, dsn)
	}
	if o.Instance != "" {
		cfg.RuntimeParams["connectord.instance"] = o.Instance
		if cfg.RuntimeParams["application_name"] == "" {
			cfg.RuntimeParams["application_name"] = "connectord/" + o.Instance
		}
	}
	db := openPool(cfg, maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, redactedError("connect to the database", err, dsn)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, redactedError("migrate the database", err, dsn)
	}
	s := &Store{db: db, rdb: db}
	if o.Instance != "" {
		s.instance, s.ttl, s.listen, s.dsn = o.Instance, o.LeaseTTL, cfg.Copy(), dsn
		if s.ttl == 0 {
			s.ttl = DefaultLeaseTTL
		}
		if s.channel, err = notifyChannel(ctx, db); err != nil {
			db.Close()
			return nil, redactedError("read the notification channel", err, dsn)
		}
		s.cdb = openPool(cfg, clusterConns)
	}
	d := dialect()
	s.w = sqlstore.NewWriter(db, d)
	s.Store = sqlstore.New(d, s.w, s.rdb, s.instance)
	return s, nil
}

func openPool(cfg *pgx.ConnConfig, conns int) *sql.DB {
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db
}

// check validates o.
func (o Options) check() error {
	if o.Instance != "" && !validInstance(o.Instance) {
		return fmt.Errorf("connector/postgres: instance id %q: want 1 to 63 characters of A-Z, a-z, 0-9, '.', '_', '-'", o.Instance)
	}
	if o.LeaseTTL < 0 {
		return fmt.Errorf("connector/postgres: lease TTL %v: must be positive", o.LeaseTTL)
	}
	return nil
}

// validInstance reports whether id may name an instance. The characters
// keep it one word in a notification's payload, and 63 bytes is
// PostgreSQL's identifier length (application_name is cut there).
func validInstance(id string) bool {
	if len(id) == 0 || len(id) > 63 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Close finishes the writes already handed to the writer, then closes the
// pools. Listen has a connection of its own, which Close leaves alone:
// cancel Listen's context. Every later call, Close included, returns
// ErrClosed.
func (s *Store) Close() error {
	if !s.w.Stop() {
		return ErrClosed
	}
	var cerr error
	if s.cdb != nil {
		cerr = s.cdb.Close()
	}
	return errors.Join(s.db.Close(), cerr)
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
