package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"

	"github.com/connectord/connectord/connector"
)

// Statements can be prepared once and reused (Dialect.PrepareWrites, and
// CachedReads for a read pool). On SQLite the statements here are short, so
// parsing one costs about as much as running it, and the writer is the one
// goroutine every write waits for: without the caches half of its time went
// to the parser.

// Tx is a batch's write transaction as the operations see it. With a
// statement cache, its statements come from the writer's. It is used only
// on the writer's goroutine.
type Tx struct {
	tx *sql.Tx
	w  *Writer
	// bound holds the writer's statements bound to tx, each bound once: a
	// batch runs the same few statements for every request in it.
	bound map[string]*sql.Stmt
	// touched are the conversations the batch changed, in order: the writer
	// updates its cache with them around the commit (see convCache).
	touched []touched
	// optOuts are the changes the batch made to opt_outs, in order: the
	// writer applies them to its set once the batch commits (see optOutSet).
	optOuts []optOutChange
	// waits are the changes the batch made to which lines to the agent
	// wait, in order: the writer applies them to its set once the batch
	// commits (see waitingSet).
	waits []waitingChange
}

// touched is a conversation a batch changed: row is the conversation as
// the change left it, nil when the op does not know it all.
type touched struct {
	id  int64
	row *connector.Conversation
}

// touch records that the transaction changes (creates, updates or deletes)
// the conversation rows ids. Every statement that writes conversations
// calls it, or touchRow, with the ids it changed (a statement that changes
// rows it cannot name would have to clear the cache): a change left out
// would leave a stale row in the writer's cache.
func (t *Tx) touch(ids ...int64) {
	if t.w.cache != nil {
		for _, id := range ids {
			t.touched = append(t.touched, touched{id: id})
		}
	}
}

// touchRow is touch for an op that holds the whole row as its statement
// left it, read in the same transaction: the cache takes that row once the
// batch commits, and the next read of it needs no query. A later touch of
// the same id in the batch wins.
func (t *Tx) touchRow(c *connector.Conversation) {
	if t.w.cache != nil {
		t.touched = append(t.touched, touched{id: c.ID, row: cloneConversation(c)})
	}
}

// optOutChanged records that the transaction wrote (out) or deleted the
// opt_outs row of customer, sender and channel. Every statement that
// changes opt_outs calls it: a change left out would leave the writer's set
// wrong until the store is opened again.
func (t *Tx) optOutChanged(channel, sender, customer string, out bool) {
	if t.w.optOuts == nil {
		return
	}
	if out { // the set may keep them: not a caller's substrings of a larger buffer
		channel, sender, customer = strings.Clone(channel), strings.Clone(sender), strings.Clone(customer)
	}
	t.optOuts = append(t.optOuts, optOutChange{pair: optOutPair{channel, sender}, customer: customer, out: out})
}

// waitingAdded records that the transaction made message msg of
// conversation conv a line to the agent in state stored: inserted it,
// moved it to conv, or stored it again for a retry.
func (t *Tx) waitingAdded(msg, conv int64) {
	if t.w.waiting != nil {
		t.waits = append(t.waits, waitingChange{msg: msg, conv: conv})
	}
}

// waitingDone records that message msg, whatever it was, is no longer
// stored: sent or failed. Every statement that moves a message out of
// state stored calls it (or waitingPurged).
func (t *Tx) waitingDone(msg int64) {
	if t.w.waiting != nil {
		t.waits = append(t.waits, waitingChange{msg: msg})
	}
}

// waitingPurged records that the transaction deleted every message of the
// conversations convs.
func (t *Tx) waitingPurged(convs ...int64) {
	if t.w.waiting != nil {
		for _, c := range convs {
			t.waits = append(t.waits, waitingChange{conv: c, purged: true})
		}
	}
}

func (w *Writer) newTx(tx *sql.Tx) *Tx {
	t := &Tx{tx: tx, w: w}
	if w.stmts != nil {
		t.bound = make(map[string]*sql.Stmt)
	}
	return t
}

// stmt returns query's statement bound to the transaction, or nil when the
// writer caches none or has not prepared it yet.
func (t *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if t.bound == nil {
		return nil
	}
	if st, ok := t.bound[query]; ok {
		return st
	}
	st := t.w.stmt(query)
	if st != nil {
		st = t.tx.StmtContext(ctx, st)
		t.bound[query] = st
	}
	return st
}

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// stmt returns the prepared statement for query, or nil when it has not been
// prepared yet; the writer then prepares it after the running transaction,
// when its one connection is free (see prepareMissed).
func (w *Writer) stmt(query string) *sql.Stmt {
	st, ok := w.stmts[query]
	if !ok {
		w.stmts[query] = nil
		w.missed = append(w.missed, query)
	}
	return st
}

// prepareMissed prepares the statements the last transaction ran unprepared.
// Preparing on the database (not on a Conn or Tx) is what lets Tx.StmtContext
// reuse the statement on the same connection later. A statement that fails to
// prepare stays nil and keeps running unprepared, which reports its error.
func (w *Writer) prepareMissed(ctx context.Context) {
	for _, q := range w.missed {
		if st, err := w.db.PrepareContext(ctx, q); err == nil {
			w.stmts[q] = st
		}
	}
	w.missed = w.missed[:0]
}

func (w *Writer) closeStmts() {
	for q, st := range w.stmts {
		if st != nil {
			st.Close()
		}
		delete(w.stmts, q)
	}
}

// CachedReads is a read pool with a statement cache of its own; database/sql
// prepares a cached statement again on each pool connection that runs it.
type CachedReads struct {
	DB    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// NewCachedReads caches the statements run on db; Close closes both.
func NewCachedReads(db *sql.DB) *CachedReads {
	return &CachedReads{DB: db, stmts: make(map[string]*sql.Stmt)}
}

func (r *CachedReads) stmt(ctx context.Context, query string) *sql.Stmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.stmts[query]; ok {
		return st
	}
	st, err := r.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil // run unprepared, which reports the error
	}
	r.stmts[query] = st
	return st
}

func (r *CachedReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.DB.QueryRowContext(ctx, query, args...)
}

func (r *CachedReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.DB.QueryContext(ctx, query, args...)
}

// Close closes the cached statements and the pool.
func (r *CachedReads) Close() error {
	r.mu.Lock()
	for _, st := range r.stmts {
		st.Close()
	}
	clear(r.stmts)
	r.mu.Unlock()
	return r.DB.Close()
}
