package connector

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// poisonLimit is how many times a message's send may crash before it is
// failed: a panic recovered in this process, or a process that died while
// sending it (counted in the store, so it survives the crash loop it causes).
const poisonLimit = 3

// errPanicked marks an attempt that panicked; deliver retries it like any
// transient error until poisonLimit.
var errPanicked = errors.New("send panicked")

// safeAttempt is attempt with a panic turned into an error, so that one bad
// message can never take the daemon, and every conversation with it, down.
func (r *Router) safeAttempt(ctx context.Context, c *Conversation, m *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("send panicked; the message is retried and failed if it keeps doing so",
				zap.Int64("conversation", m.ConversationID), zap.Int64("message", m.ID),
				zap.String("panic", fmt.Sprint(p)), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanicked, p)
		}
	}()
	return r.attempt(ctx, c, m)
}

// recoverAsError turns a panic in an adapter's call into the core (Receive,
// Event) into an error for that call: the adapter answers its source as for
// any failure (Twilio and Slack retry; a frame is logged and skipped)
// instead of the panic ending the process.
func (r *Router) recoverAsError(what string, err *error) {
	if p := recover(); p != nil {
		r.log.Error(what+" panicked", zap.String("panic", fmt.Sprint(p)), zap.ByteString("stack", debug.Stack()))
		*err = fmt.Errorf("%s: %w: %v", what, errPanicked, p)
	}
}

// admitRecovered is called before the first attempt at a message that was in
// the outbox when this process started: if earlier processes died while
// sending it poisonLimit times, it reports the reason to fail it with.
// Messages stored by this process need no count: if they crash it, the next
// process finds them in the outbox.
func (r *Router) admitRecovered(ctx context.Context, m *Message) (string, error) {
	n, err := r.store.CountAttempt(ctx, m.ID)
	if err != nil {
		return "", fmt.Errorf("count attempt: %w", err)
	}
	if n > poisonLimit {
		return fmt.Sprintf("connectord stopped while sending this message %d times", n-1), nil
	}
	return "", nil
}

// settleAttempts clears a recovered message's crash count once a send of it
// has returned: it did not crash the process. It runs even while stopping,
// so that a drain does not count as a crash.
func (r *Router) settleAttempts(m *Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.runCtx), 2*time.Second)
	defer cancel()
	if err := r.store.ClearAttempts(ctx, m.ID); err != nil {
		r.log.Warn("clear attempt count", zap.Int64("message", m.ID), zap.Error(err))
	}
}

// takeRecovered reports whether m was in the outbox at start and not yet
// admitted, and marks it admitted.
func (r *Router) takeRecovered(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.recovered[id] {
		return false
	}
	delete(r.recovered, id)
	return true
}

// markRecovered puts back a recovered message's mark: it goes again later,
// and its crash count is checked then.
func (r *Router) markRecovered(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recovered[id] = true
}

// admit runs a recovered message's crash check before its first attempt and
// reports whether to send it; a message that crashed the process too often
// is failed here.
func (r *Router) admit(ctx context.Context, m *Message) bool {
	reason, err := r.admitRecovered(ctx, m)
	if err != nil {
		r.log.Warn("poison check failed; sending anyway", zap.Int64("message", m.ID), zap.Error(err))
	}
	if reason != "" {
		r.poisoned(ctx, m, reason)
		return false
	}
	return true
}
