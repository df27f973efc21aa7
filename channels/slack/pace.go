package slack

import (
	"context"
	"sync"
	"time"
)

// pacer spaces posts per Slack channel: Slack allows about one message per
// second in a channel and answers 429 past it. A 429's Retry-After holds the
// whole channel back, not only the message that met it.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  map[string]time.Time // channel -> earliest time of its next post
}

func newPacer(every time.Duration) *pacer {
	return &pacer{every: every, next: map[string]time.Time{}}
}

// wait blocks until channel may be posted to and reserves that slot.
func (p *pacer) wait(ctx context.Context, channel string) error {
	p.mu.Lock()
	now := time.Now()
	slot := now
	if next := p.next[channel]; next.After(now) {
		slot = next
	}
	p.next[channel] = slot.Add(p.every)
	p.prune(now)
	p.mu.Unlock()
	if d := slot.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// try reserves a slot for channel only if one is free now.
func (p *pacer) try(channel string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.next[channel].After(now) {
		return false
	}
	p.next[channel] = now.Add(p.every)
	return true
}

// hold keeps channel quiet for d (a 429's Retry-After).
func (p *pacer) hold(channel string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(p.next[channel]) {
		p.next[channel] = until
	}
}

// prune forgets channels idle for a while, so the map does not grow with
// every DM ever answered.
func (p *pacer) prune(now time.Time) {
	if len(p.next) < 1024 {
		return
	}
	for ch, t := range p.next {
		if now.Sub(t) > time.Minute {
			delete(p.next, ch)
		}
	}
}
