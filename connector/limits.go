package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// errStopping ends an attempt that was waiting when the Router stopped; the
// message stays stored for the next start.
var errStopping = errors.New("router stopping")

// pace holds a message to the customer until the conversation's rate limit
// (conversation.customer_rate and customer_burst) lets it go. A vendor that
// loops lines cannot flood a customer's phone: the excess waits in the
// outbox, in order, and nothing is dropped.
func (r *Router) pace(ctx context.Context, c *Conversation) error {
	if r.settings().cfg.CustomerRate <= 0 {
		return nil
	}
	lim := r.limiter(c.ID)
	res := lim.Reserve()
	wait := res.Delay()
	if wait == 0 {
		return nil
	}
	r.metrics.Held.WithLabelValues(c.Channel, "customer_rate").Inc()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		res.Cancel()
		return ctx.Err()
	case <-r.stopCh:
		res.Cancel()
		return errStopping
	}
}

func (r *Router) limiter(conv int64) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	lim, ok := r.limiters[conv]
	if !ok {
		lim = rate.NewLimiter(rate.Every(r.settings().cfg.CustomerRate), max(r.settings().cfg.CustomerBurst, 1))
		r.limiters[conv] = lim
	}
	return lim
}

// dropIdleLimiters forgets the limiters that are full again: a new one
// behaves the same, so the map only holds conversations that sent lately.
func (r *Router) dropIdleLimiters(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, lim := range r.limiters {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(r.limiters, id)
		}
	}
}

// errAtCapacity holds a new conversation while its channel has
// conversation.max_open conversations open at vendors.
type errAtCapacity struct{ open int }

func (e errAtCapacity) Error() string {
	return fmt.Sprintf("channel at capacity (%d conversations open)", e.open)
}

// capacityRecheck is the least wait before a held conversation looks again:
// capacity frees as chats end.
const capacityRecheck = 5 * time.Second

// admitOpen refuses to open one more conversation on c's channel past the
// cap; the customer is told once that they wait for a free line.
func (r *Router) admitOpen(ctx context.Context, c *Conversation) error {
	if r.settings().cfg.MaxOpen <= 0 {
		return nil
	}
	counts, err := r.store.OpenCounts(ctx, c.Channel)
	if err != nil {
		return fmt.Errorf("count open conversations: %w", err)
	}
	open := counts[StateQueued] + counts[StateActive]
	if open < r.settings().cfg.MaxOpen {
		return nil
	}
	r.metrics.Held.WithLabelValues(c.Channel, "max_open").Inc()
	if r.markToldBusy(c.ID) {
		r.convLog(c).Warn("channel at its conversation cap; the new conversation waits", zap.Int("open", open))
		r.tellOnce(ctx, c, "busy")
	}
	return RetryAfter(errAtCapacity{open: open}, capacityRecheck)
}

func (r *Router) markToldBusy(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.toldBusy[id] {
		return false
	}
	r.toldBusy[id] = true
	return true
}

func (r *Router) forgetBusy(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.toldBusy, id)
}

// tellOnce commits a notice for an open conversation; a failure is logged:
// it is only a notice.
func (r *Router) tellOnce(ctx context.Context, c *Conversation, key string) {
	ms := r.notice(c, key, NoticeData{})
	if len(ms) == 0 {
		return
	}
	res, err := r.store.Apply(ctx, Change{ConversationID: c.ID, Messages: ms, RequireOpen: true})
	if err != nil {
		r.convLog(c).Error("record notice", zap.String("notice", key), zap.Error(err))
		return
	}
	r.enqueueAll(res.Conversation, res.Added)
}
