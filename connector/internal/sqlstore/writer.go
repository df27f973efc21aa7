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
	lazy bool // committed without waiting for the disk, unless batched with one that waits
	done chan error
}

// Writer is the single goroutine that performs every write of a store.
// Concurrent writes are batched: each turn it takes every request already
// waiting, runs them in one transaction and commits once, so callers share
// one fsync. A request that fails undoes only its own changes (see commit).
//
// A batch with at least one write from Do is synced: its commit waits for
// the disk. A batch of DoLazy writes only is committed without waiting for
// the disk (see Dialect.LazySession and Dialect.LazyTx); a lazy write that
// shares a batch with a synced one is synced with it, for free.
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

	// lazyConn is whether the writer's connection is switched to lazy
	// commits (Dialect.LazySession); only run touches it.
	lazyConn connMode
	// cache serves Conversation from memory, nil unless
	// Dialect.CacheConversations; the writer keeps it exact.
	cache *convCache
	// openOf maps a customer to the conversation last found open for it, a
	// hint for RecordInbound checked against cache (txOpenConversationOf);
	// nil without cache. Only run touches it.
	openOf map[convKey]int64
	// optOuts serves OptedOut from memory, nil unless Dialect.CacheOptOuts;
	// the writer keeps it exact.
	optOuts *optOutSet
	// waiting serves WaitingBefore from memory, nil unless
	// Dialect.CacheWaiting; the writer keeps it exact.
	waiting *waitingSet

	transactions       atomic.Uint64
	writes             atomic.Uint64
	syncedTransactions atomic.Uint64 // committed batches that waited for the disk
	syncedWrites       atomic.Uint64 // the writes those batches carried
	writeErrors        atomic.Uint64 // batches whose transaction failed
}

// connMode is what the writer knows of its connection's commit mode.
type connMode int

const (
	connSynced  connMode = iota // as opened: commits wait for the disk
	connLazy                    // switched to commits that do not
	connUnknown                 // a switch failed: set it again before relying on it
)

// NewWriter starts the writer of db; Stop ends it. With d.PrepareWrites, db
// must have at most one connection, on which the statements stay prepared.
func NewWriter(db *sql.DB, d *Dialect) *Writer {
	w := &Writer{db: db, d: d, reqs: make(chan *request), quit: make(chan struct{}), done: make(chan struct{})}
	if d.PrepareWrites {
		w.stmts = make(map[string]*sql.Stmt)
	}
	if d.CacheConversations {
		w.cache = newConvCache(convCacheSize)
		w.openOf = make(map[convKey]int64)
	}
	if d.CacheOptOuts {
		w.optOuts = newOptOutSet()
	}
	if d.CacheWaiting {
		w.waiting = newWaitingSet()
	}
	go w.run()
	return w
}

// Do hands op to the writer and waits for its outcome: committed and on the
// disk. It gives up when ctx is done; the request may still commit, but never
// partly. After Stop it returns the dialect's ErrClosed.
func (w *Writer) Do(ctx context.Context, op Op) error { return w.do(ctx, op, false) }

// DoLazy is Do for a write that may be lost to a power loss or an operating
// system crash (never to the process dying): when it returns nil, op is
// committed, visible to every read and survives the process being killed,
// but it may not be on the disk yet. It is made durable by the next synced
// commit (the WAL is appended in order) or checkpoint. Only writes whose
// loss costs at most a repeated send that the outbox reconciles are lazy.
// It never waits for company: a lazy write alone is committed at once.
func (w *Writer) DoLazy(ctx context.Context, op Op) error { return w.do(ctx, op, true) }

func (w *Writer) do(ctx context.Context, op Op, lazy bool) error {
	if w.closed.Load() {
		return w.d.ErrClosed
	}
	r := &request{ctx: ctx, op: op, lazy: lazy, done: make(chan error, 1)}
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

// SyncedCounts returns the committed transactions that waited for the disk
// and the writes in them that asked to (lazy ones that rode along are not
// counted: they would have committed without), since
// the writer started.
func (w *Writer) SyncedCounts() (transactions, writes uint64) {
	return w.syncedTransactions.Load(), w.syncedWrites.Load()
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
	synced := isSynced(batch)
	// Requests rarely fail, so a batch first runs without the three savepoint
	// statements per request. If one fails, that attempt is rolled back whole
	// and the batch runs again with savepoints, so the failure undoes only its
	// own request.
	errs, failed, err := w.runBatch(ctx, batch, synced, false)
	if failed {
		errs, _, err = w.runBatch(ctx, batch, synced, true)
	}
	if err != nil {
		w.writeErrors.Add(1)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	var ok, durable uint64
	for i, r := range batch {
		if errs[i] == nil {
			ok++
			if !r.lazy {
				durable++
			}
		}
	}
	// Counted before any caller hears back: a caller that reads Stats right
	// after its write returns must find the write counted.
	if ok > 0 { // a batch whose every request failed wrote nothing to count
		w.transactions.Add(1)
		w.writes.Add(ok)
		if synced {
			w.syncedTransactions.Add(1)
			w.syncedWrites.Add(durable) // a lazy write riding along did not ask for the disk
		}
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

// isSynced reports whether batch must wait for the disk: whether a caller
// still waiting asked for that. Lazy requests ride along with it.
func isSynced(batch []*request) bool {
	for _, r := range batch {
		if !r.lazy && r.ctx.Err() == nil {
			return true
		}
	}
	return false
}

// runBatch runs batch in one transaction and commits it, synced or not,
// returning each request's outcome. Without savepoints, the first request
// that fails rolls the transaction back and runBatch reports failed. err is a
// failure of the transaction itself.
func (w *Writer) runBatch(ctx context.Context, batch []*request, synced, savepoints bool) (errs []error, failed bool, err error) {
	if err := w.setConnMode(ctx, synced); err != nil {
		return nil, false, err
	}
	sqlTx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("begin write transaction: %w", err)
	}
	tx := w.newTx(sqlTx)
	if !synced && w.d.LazyTx != "" {
		if _, err := sqlTx.ExecContext(ctx, w.d.LazyTx); err != nil {
			sqlTx.Rollback() //nolint:errcheck // the batch failed already
			return nil, false, fmt.Errorf("lazy commit: %w", err)
		}
	}
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
		n, m, k := len(tx.touched), len(tx.optOuts), len(tx.waits)
		if errs[i], err = runSavepoint(ctx, tx, r.op); err == nil && w.d.StorageFailure(errs[i]) {
			err = errs[i]
		}
		if errs[i] != nil {
			tx.touched, tx.optOuts, tx.waits = tx.touched[:n], tx.optOuts[:m], tx.waits[:k] // undone with its savepoint
		}
		if err != nil {
			sqlTx.Rollback() //nolint:errcheck // the batch failed already
			return nil, false, err
		}
	}
	// The conversations the batch changed leave the cache before the commit
	// and are put back as committed after it, before any caller hears back
	// (read-your-writes); no read may put one back from before the commit
	// (see convCache).
	w.cache.hold(tx.touched)
	err = sqlTx.Commit()
	w.cache.release(tx.touched, err == nil)
	if err != nil {
		return nil, false, fmt.Errorf("commit: %w", err)
	}
	w.optOuts.apply(tx.optOuts) // committed: before any caller hears back
	w.waiting.apply(tx.waits)
	if synced && w.d.SyncCommit != nil {
		if err := w.d.SyncCommit(); err != nil {
			// Committed and visible, but not known to be on the disk.
			return nil, false, fmt.Errorf("commit: %w", err)
		}
	}
	return errs, false, nil
}

// setConnMode switches the writer's connection to synced or lazy commits
// (Dialect.LazySession) when it is not that already. A failed switch fails
// the batch: a synced batch must not commit lazily, and the mode is set
// again before the next batch relies on it.
func (w *Writer) setConnMode(ctx context.Context, synced bool) error {
	want, stmt := connSynced, w.d.LazySession[0]
	if !synced {
		want, stmt = connLazy, w.d.LazySession[1]
	}
	if stmt == "" || w.lazyConn == want {
		return nil
	}
	// Never prepared: SQLite applies (and reads) a PRAGMA's setting when it
	// prepares the statement, so a prepared one run again may do nothing.
	if _, err := w.db.ExecContext(ctx, stmt); err != nil {
		w.lazyConn = connUnknown
		return fmt.Errorf("set commit mode: %w", err)
	}
	w.lazyConn = want
	return nil
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
