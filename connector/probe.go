package connector

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// writeProbe follows whether the store can still commit. Reads keep working
// on a full or read-only disk, so readiness and the watchdog must not rest on
// one: the probe commits a small write (Store.Ping) every interval, in a
// goroutine of its own, and Health reads its last outcome without blocking.
// A probe that has not returned within budget (a frozen disk) counts as a
// failure at once, however long the write itself stays stuck.
type writeProbe struct {
	store    Store
	interval time.Duration
	budget   time.Duration
	failures func() // counts a failed or stalled probe (a metric)

	mu       sync.Mutex
	started  time.Time // when the probe in flight began; zero when none is
	lastErr  error
	lastDone time.Time
	stalled  bool // the probe in flight was already counted as stalled
}

func newWriteProbe(s Store, interval, budget time.Duration, failures func()) *writeProbe {
	if failures == nil {
		failures = func() {}
	}
	return &writeProbe{store: s, interval: interval, budget: budget, failures: failures}
}

// run probes every interval until ctx is done. A probe still in flight
// delays the next one rather than piling writes onto a stuck disk.
func (p *writeProbe) run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.probe(ctx)
		}
	}
}

// probe makes one write and records its outcome.
func (p *writeProbe) probe(ctx context.Context) error {
	p.mu.Lock()
	p.started, p.stalled = time.Now(), false
	p.mu.Unlock()
	// The write is not bounded by budget: a slow commit that does finish
	// still tells us the disk works. Health reports the stall meanwhile.
	pctx, cancel := context.WithTimeout(ctx, max(10*p.budget, time.Minute))
	err := p.store.Ping(pctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && !p.stalled {
		p.failures()
	}
	p.started, p.lastErr, p.lastDone = time.Time{}, err, time.Now()
	return err
}

// Health is the store's write health: the last probe's outcome, or a stall
// once a probe has run past its budget. It never blocks.
func (p *writeProbe) Health() Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started.IsZero() {
		if since := time.Since(p.started); since > p.budget {
			if !p.stalled {
				p.stalled = true
				p.failures()
			}
			return Health{Detail: fmt.Sprintf("a write has not committed for %s", since.Round(time.Millisecond))}
		}
	}
	switch {
	case p.lastDone.IsZero():
		return Health{Detail: "no write probed yet"}
	case p.lastErr != nil:
		return Health{Detail: "cannot write: " + RedactError(p.lastErr)}
	default:
		return Health{Ready: true}
	}
}
