// Package sqlstore is the one implementation of connector.Store on
// database/sql that connector/sqlite and connector/postgres share: every
// Store method, the group-commit writer and the migration runner. What
// differs between the engines is described by a Dialect; each engine package
// opens its connections, owns its schema (the embedded migrations) and its
// engine-only features, and hands the rest to this package.
//
// Queries are written here once, with '?' placeholders, and bound to the
// dialect (rewritten to $1, $2... where the engine wants them) once per store
// when it opens, never per call.
package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect is what an engine tells the shared store about itself. Every field
// is read only; one Dialect may serve many stores.
type Dialect struct {
	// Name prefixes the store's own errors ("connector/sqlite").
	Name string
	// ErrClosed is what every method of a closed store returns.
	ErrClosed error
	// Numbered placeholders: the engine wants $1, $2... where the queries
	// here write '?'.
	Numbered bool
	// IndexedBy returns what follows a table name to make the engine read it
	// through the named index ("" when the engine's planner needs no hint).
	// The index names are those both schemas give.
	IndexedBy func(index string) string
	// NewMessageID is the value expression a new message's id gets in its
	// INSERT: an engine whose ids come from the column's default says
	// DEFAULT. Either way the id is never one given before, deleted ids
	// included.
	NewMessageID string
	// InIDs is the condition that column %s is one of the ids in the one
	// parameter IDList makes.
	InIDs  string
	IDList func(ids []int64) (any, error)
	// WriteProbe is the statement Ping runs: it rewrites the one row of
	// write_probe to the time given as its one parameter.
	WriteProbe string
	// StorageFailure reports whether err is the engine refusing to write or
	// gone (a full or read-only disk, an I/O error, a lost connection) rather
	// than one request's own failure (a missing row, a constraint). A batch
	// cannot commit then: every request in it fails and WriteErrors counts it.
	StorageFailure func(err error) bool
	// PrepareWrites makes the writer prepare each statement once on its one
	// connection and reuse it; for an engine whose parser costs as much as
	// the statement runs and whose driver keeps no cache of its own.
	PrepareWrites bool
	// MigrationLock is a statement the migration transaction runs first,
	// so that processes starting at once on a fresh database migrate it
	// once ("" when the engine's own locking does that).
	MigrationLock string
	// LazySession switches the writer's connection, outside any transaction,
	// to commits that wait for the disk ([0]) and to commits that do not
	// ([1]); for an engine whose setting is per connection and cannot change
	// inside a transaction (SQLite's synchronous). Empty: no switch. The
	// writer runs [1] before a batch of lazy writes only, [0] before the next
	// synced one. The connection must be the writer's alone.
	LazySession [2]string
	// SyncCommit, when set, is called after the commit of a batch that must
	// reach the disk, before any caller hears back: for an engine whose
	// writer commits without waiting for the disk and makes the commit
	// durable itself (SQLite: synchronous=NORMAL and a data sync of the
	// WAL). Its failure fails the batch: the writes are committed and
	// visible, but not known to be on the disk.
	SyncCommit func() error
	// LazyTx is run first in a transaction of lazy writes only, so that its
	// commit does not wait for the disk (PostgreSQL's SET LOCAL
	// synchronous_commit); "" when the engine needs none.
	LazyTx string
	// CacheConversations serves Store.Conversation from memory, kept exact
	// by the writer: only for an engine whose database no other process
	// writes (not a server that several instances share).
	CacheConversations bool
	// CacheOptOuts serves Store.OptedOut from a copy of opt_outs in memory,
	// which Store.Load fills when the store opens and the writer keeps
	// exact: only for an engine whose database no other process writes.
	// Its memory grows with the opted-out rows, not with the customers.
	CacheOptOuts bool
	// CacheWaiting answers Store.WaitingBefore from a set in memory of the
	// lines to the agent still stored, which Store.Load fills when the
	// store opens and the writer keeps exact: only for an engine whose
	// database no other process writes. Its memory grows with that backlog.
	CacheWaiting bool
	// BatchTimeout bounds one batch's transaction (0: unbounded), so that a
	// server that stops answering fails the batch instead of holding every
	// writer's caller forever.
	BatchTimeout time.Duration
}

// Bind rewrites query's '?' placeholders for d and applies its index hints:
// each "{index NAME}" becomes IndexedBy(NAME). A '?' inside a quoted literal
// is left alone. The store binds its queries once, when it opens.
func (d *Dialect) Bind(query string) string {
	for {
		i := strings.Index(query, "{index ")
		if i < 0 {
			break
		}
		j := strings.IndexByte(query[i:], '}')
		if j < 0 {
			panic("sqlstore: unterminated {index} in " + query)
		}
		hint := ""
		if d.IndexedBy != nil {
			hint = d.IndexedBy(query[i+len("{index ") : i+j])
		}
		query = query[:i] + hint + query[i+j+1:]
	}
	if !d.Numbered {
		return query
	}
	return Rebind(query)
}

// Rebind rewrites each '?' placeholder of query, in order, as $1, $2...,
// leaving alone those inside single-quoted literals and double-quoted names.
func Rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// errorf is an error of the store itself, named after the engine.
func (d *Dialect) errorf(format string, args ...any) error {
	return fmt.Errorf(d.Name+": "+format, args...)
}
