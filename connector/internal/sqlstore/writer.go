package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
)

// maxBatch caps how many requests share one transaction, so that one commit
// never holds the callers at the front of the queue for long.
const maxBatch = 256

// Op is one write: it runs inside a batch's transaction and stores its own
// result in variables its caller reads once Do reports nil.
type Op func(ctx context.Context, tx *Tx) error

// request is one write waiting for the writer; done is buffered so the
// writer never waits for a caller that gave up.
type request struct {
	ctx  context.Context
	op   Op
	done chan error
}

// Writer is the single goroutine that performs every write of a store.
// Concurrent writes are batched: each turn it takes every request already
// waiting, runs them in one transaction and commits once, so callers share
// one fsync. A request that fails undoes only its own changes (see commit).
type Writer struct {
	db *sql.DB
	d  *Dialect
	// stmts and missed are the statement cache (stmts.go), nil unless the
	// dialect prepares writes; only run touches them.
	stmts  map[string]*sql.Stmt
	missed []string
	reqs   chan *request
	quit   chan struct{} // closed by Stop: take no new requests
	done   chan struct{} // closed when run returns
	closed atomic.Bool

	transactions atomic.Uint64
	writes       atomic.Uint64
	writeErrors  atomic.Uint64 // batches whose transaction failed
}

// NewWriter starts the writer of db; Stop ends it. With d.PrepareWrites, db
// must have at most one connection, on which the statements stay prepared.
func NewWriter(db *sql.DB, d *Dialect) *Writer {
	w := &Writer{db: db, d: d, reqs: make(chan *request), quit: make(chan struct{}), done: make(chan struct{})}
	if d.PrepareWrites {
		w.stmts = make(map[string]*sql.Stmt)
	}
	go w.run()
	return w
}

// Do hands op to the writer and waits for its outcome. It gives up when ctx
// is done; the request may still commit, but never partly. After Stop it
// returns the dialect's ErrClosed.
func (w *Writer) Do(ctx context.Context, op Op) error {
	if w.closed.Load() {
		return w.d.ErrClosed
	}
	r := &request{ctx: ctx, op: op, done: make(chan error, 1)}
	// reqs is unbuffered: a request is either taken by the writer or not
	// queued at all, so nothing is stranded when the writer stops.
	select {
	case w.reqs <- r:
	case <-w.quit:
		return w.d.ErrClosed
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

// Closed reports whether Stop was called.
func (w *Writer) Closed() bool { return w.closed.Load() }

// Stop lets the writer finish the requests already handed over and waits
// for it. It reports false, doing nothing, when the writer was stopped before.
func (w *Writer) Stop() bool {
	if !w.closed.CompareAndSwap(false, true) {
		return false
	}
	close(w.quit)
	<-w.done
	return true
}

// Counts returns the write transactions committed, the writes they carried
// and the batches that failed to commit, since the writer started.
func (w *Writer) Counts() (transactions, writes, writeErrors uint64) {
	return w.transactions.Load(), w.writes.Load(), w.writeErrors.Load()
}

func (w *Writer) run() {
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
			// Callers blocked in Do may still win their send against quit;
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
func (w *Writer) gather(batch []*request) []*request {
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
func (w *Writer) commit(batch []*request) {
	// The batch runs to completion whatever its callers do meanwhile: a
	// caller's cancellation must not cut a shared transaction short.
	ctx := context.Background()
	if w.d.BatchTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.d.BatchTimeout)
		defer cancel()
	}
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
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	var ok uint64
	for i := range batch {
		if errs[i] == nil {
			ok++
		}
	}
	// Counted before any caller hears back: a caller that reads Stats right
	// after its write returns must find the write counted.
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
func (w *Writer) runBatch(ctx context.Context, batch []*request, savepoints bool) (errs []error, failed bool, err error) {
	sqlTx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("begin write transaction: %w", err)
	}
	tx := w.newTx(sqlTx)
	errs = make([]error, len(batch))
	for i, r := range batch {
		if errs[i] = r.ctx.Err(); errs[i] != nil {
			continue // its caller is gone: do not write for it
		}
		if !savepoints {
			if errs[i] = r.op(ctx, tx); errs[i] != nil {
				sqlTx.Rollback() //nolint:errcheck // the batch runs again or fails
				if w.d.StorageFailure(errs[i]) {
					return nil, false, errs[i]
				}
				return nil, true, nil
			}
			continue
		}
		if errs[i], err = runSavepoint(ctx, tx, r.op); err == nil && w.d.StorageFailure(errs[i]) {
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

// runSavepoint runs op inside a savepoint, so that a failing op undoes only
// its own changes (on PostgreSQL a failed statement would otherwise abort
// the whole transaction). opErr is op's failure; err is a failure of the
// savepoint machinery itself, which leaves the transaction unusable.
func runSavepoint(ctx context.Context, tx *Tx, op Op) (opErr, err error) {
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
