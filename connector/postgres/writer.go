package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// batchTimeout bounds one batch's transaction.
const batchTimeout = 30 * time.Second

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
	db   *sql.DB // the pool; a batch's transaction holds one connection
	reqs chan *request
	quit chan struct{} // closed by stop: take no new requests
	done chan struct{} // closed when run returns

	transactions atomic.Uint64
	writes       atomic.Uint64
	writeErrors  atomic.Uint64 // batches whose transaction failed
}

func newWriter(db *sql.DB) *writer {
	return &writer{db: db, reqs: make(chan *request), quit: make(chan struct{}), done: make(chan struct{})}
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
	// caller's cancellation must not cut a shared transaction short. A server
	// that stops answering fails the batch after batchTimeout instead of
	// holding every writer's caller forever.
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
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
	// Counted before any caller hears back: a caller that reads Stats right
	// after its write returns must find the write counted.
	var ok uint64
	for i := range batch {
		if errs[i] == nil {
			ok++
		}
	}
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
	tx := &txn{sqlTx}
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

// storageFailure reports whether err is the server refusing to write or
// gone (no space, read-only, shut down, connection lost) rather than one
// request's own failure (a missing row, a constraint). The batch's
// transaction cannot commit then: every request in it fails with err and
// WriteErrors counts it.
func storageFailure(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// Not the server's answer: the connection broke, or the batch timed out.
		return errors.Is(err, driver.ErrBadConn) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
			errors.As(err, new(*pgconn.ConnectError)) || errors.Is(err, sql.ErrConnDone) || isNetError(err)
	}
	switch pe.Code[:2] {
	case "08", "53", "57", "58", "XX": // connection, resources, operator intervention, system, internal
		return true
	}
	return pe.Code == "25006" // read_only_sql_transaction
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

// txn is the batch's transaction as the operations see it.
type txn struct{ tx *sql.Tx }

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, query, args...)
}

// isNetError reports a network failure under err (a reset, a refused dial).
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
