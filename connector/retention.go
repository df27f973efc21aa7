package connector

import (
	"context"
	"time"

	"go.uber.org/zap"
)

const (
	// probeInterval and probeBudget pace the store's write probe: a probe
	// every few seconds costs nothing next to real traffic, and /readyz must
	// answer within 2s even on a frozen disk.
	probeInterval = 3 * time.Second
	probeBudget   = 2 * time.Second

	// Retention deletes in small batches with a pause between them, so that
	// a first run over a large history never holds the writer for long.
	purgeBatch = 500
	purgePause = 100 * time.Millisecond
	purgeEvery = 10 * time.Minute
)

// retain deletes ended conversations older than store.retention, at start
// and every purgeEvery, until ctx is done.
func (d *Daemon) retain(ctx context.Context) {
	keep := d.cfg.Store.Retention
	if keep <= 0 {
		return
	}
	for {
		d.PurgeEnded(ctx, time.Now().Add(-keep))
		select {
		case <-ctx.Done():
			return
		case <-time.After(purgeEvery):
		}
	}
}

// PurgeEnded deletes every conversation that ended before cutoff with its
// messages, a batch at a time, and returns how many it deleted. A failure is
// logged: the next run tries again.
func (d *Daemon) PurgeEnded(ctx context.Context, cutoff time.Time) int {
	total := 0
	for ctx.Err() == nil {
		n, err := d.store.Purge(ctx, cutoff, purgeBatch)
		total += n // what committed before a failure is gone too
		d.metrics.Purged.Add(float64(n))
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("retention: purge failed; will try again later", zap.Error(err))
			}
			break
		}
		if n < purgeBatch {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(purgePause):
		}
	}
	if total > 0 {
		d.log.Info("retention: ended conversations deleted", zap.Int("conversations", total), zap.Time("ended_before", cutoff))
	}
	return total
}
