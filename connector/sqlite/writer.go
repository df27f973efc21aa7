package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// maxBatch caps how many requests share one transaction, so that one commit
// never holds the callers at the front of the queue for long.
const maxBatch = 256

// request is one write waiting for the writer. op runs inside the batch's
// transaction and stores its own result in variables the caller reads after
// done reports nil; done is buffered so the writer never waits for a caller
// that gave up.
type request struct {
	ctx  context.Context
	op   func(ctx context.Context, tx *txn) error
	done chan error
}

// writer is the single goroutine that performs every write. Concurrent
// writes are batched: each turn it takes every request already waiting, runs
// them in one transaction, each inside its own savepoint, and commits once, so
// callers share one fsync.
type writer struct {
	db *sql.DB // at most one connection: only the writer uses it
	// stmts and missed are the statement cache (stmts.go); only run touches them.
	stmts  map[string]*sql.Stmt
	missed []string
	reqs   chan *request
	quit   chan struct{} // closed by stop: take no new requests
	done   chan struct{} // closed when run returns

	transactions atomic.Uint64
	writes       atomic.Uint64
	writeErrors  atomic.Uint64 // batches whose transaction failed
}

func newWriter(db *sql.DB) *writer {
	return &writer{db: db, stmts: make(map[string]*sql.Stmt), reqs: make(chan *request), quit: make(chan struct{}), done: make(chan struct{})}
}

// do hands op to the writer and waits for its outcome. It gives up when ctx
// is done; the request may still commit, but never partly.
func (w *writer) do(ctx context.Context, op func(ctx context.Context, tx *txn) error) error {
	r := &request{ctx: ctx, op: op, done: make(chan error, 1)}
	// reqs is unbuffered: a request is either taken by the writer or not
	// queued at all, so nothing is stranded when the writer stops.
	select {
	case w.reqs <- r:
	case <-w.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop lets the writer finish the requests already handed over and waits for it.
func (w *writer) stop() {
	close(w.quit)
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	defer w.closeStmts()
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = w.gather(append(batch[:0], r))
			w.commit(batch)
			clear(batch) // drop references to finished requests
		case <-w.quit:
			// Callers blocked in do may still win their send against quit;
			// serve them so that none waits forever.
			if batch = w.gather(batch[:0]); len(batch) > 0 {
				w.commit(batch)
				clear(batch)
				continue
			}
			return
		}
	}
}

// gather adds every request already waiting, up to maxBatch.
func (w *writer) gather(batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction and answers every request.
func (w *writer) commit(batch []*request) {
	// The batch runs to completion whatever its callers do meanwhile: a
	// caller's cancellation must not cut a shared transaction short.
	ctx := context.Background()
	defer w.prepareMissed(ctx) // once the transaction has let go of the connection
	// Requests rarely fail, so a batch first runs without the three savepoint
	// statements per request. If one fails, that attempt is rolled back whole
	// and the batch runs again with savepoints, so the failure undoes only its
	// own request.
	errs, failed, err := w.runBatch(ctx, batch, false)
	if failed {
		errs, _, err = w.runBatch(ctx, batch, true)
	}
	if err != nil {
		w.writeErrors.Add(1)
		answerAll(batch, err)
		return
	}
	var ok uint64
	for i := range batch {
		if errs[i] == nil {
			ok++
		}
	}
	// Counted before the callers are answered, so that Stats read right
	// after a write sees it.
	if ok > 0 { // a batch whose every request failed wrote nothing to count
		w.transactions.Add(1)
		w.writes.Add(ok)
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

// runBatch runs batch in one transaction and commits it, returning each
// request's outcome. Without savepoints, the first request that fails rolls
// the transaction back and runBatch reports failed. err is a failure of the
// transaction itself.
func (w *writer) runBatch(ctx context.Context, batch []*request, savepoints bool) (errs []error, failed bool, err error) {
	sqlTx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("begin write transaction: %w", err)
	}
	tx := newTxn(sqlTx, w)
	errs = make([]error, len(batch))
	for i, r := range batch {
		if errs[i] = r.ctx.Err(); errs[i] != nil {
			continue // its caller is gone: do not write for it
		}
		if !savepoints {
			if errs[i] = r.op(ctx, tx); errs[i] != nil {
				sqlTx.Rollback() //nolint:errcheck // the batch runs again or fails
				if storageFailure(errs[i]) {
					return nil, false, errs[i]
				}
				return nil, true, nil
			}
			continue
		}
		if errs[i], err = runSavepoint(ctx, tx, r.op); err == nil && storageFailure(errs[i]) {
			err = errs[i]
		}
		if err != nil {
			sqlTx.Rollback() //nolint:errcheck // the batch failed already
			return nil, false, err
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, false, fmt.Errorf("commit: %w", err)
	}
	return errs, false, nil
}

// storageFailure reports whether err is SQLite refusing to write (a full or
// read-only disk, an I/O error, a damaged file) rather than one request's own
// failure (a missing row, a constraint). The batch's transaction cannot commit
// then: every request in it fails with err and WriteErrors counts it.
func storageFailure(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code, without the extended part
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOMEM:
		return true
	}
	return false
}

// runSavepoint runs op inside a savepoint, so that a failing op undoes only
// its own changes. opErr is op's failure; err is a failure of the savepoint
// machinery itself, which leaves the transaction unusable.
func runSavepoint(ctx context.Context, tx *txn, op func(ctx context.Context, tx *txn) error) (opErr, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT request"); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	if opErr = op(ctx, tx); opErr != nil {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO request"); err != nil {
			return nil, fmt.Errorf("rollback to savepoint: %w (after %v)", err, opErr)
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE request"); err != nil {
		return nil, fmt.Errorf("release savepoint: %w", err)
	}
	return opErr, nil
}

func answerAll(batch []*request, err error) {
	for _, r := range batch {
		r.done <- err
	}
}
