package connector

import "context"

// maxDeferrals bounds how often one message lets older lines go first: a
// line that cannot be settled must not hold its successors back for ever.
const maxDeferrals = 3

// behindOlder queues the lines of m's conversation to the agent that are
// older than m and still wait, and reports whether there were any: m then
// goes again behind them. A conversation's lane sends in the order messages
// were queued, which is not always the order they were stored: another
// instance's commit wakes this one a moment after it queued a newer line of
// its own, an outbox sweep finds lines a claim brought before the claim's
// own queueing, two webhooks of one customer commit in one order and queue
// in the other. The agent must read the customer's lines as written. A
// context line goes first by design (sendContext) and neither waits nor is
// waited for.
func (r *Router) behindOlder(ctx context.Context, m *Message) bool {
	if m.Direction != ToAgent || m.Kind == KindContext || !r.mayDefer(m.ID) {
		return false
	}
	older, err := r.store.WaitingBefore(ctx, m.ConversationID, m.ID)
	if err != nil {
		return false // sent as it stands: the order is lost only if reading failed
	}
	waiting := false
	for _, o := range older {
		if o.Kind == KindContext {
			continue
		}
		waiting = true
		r.requeue(nil, o) // a no-op for one already on the lane, behind m
	}
	if !waiting {
		r.forgetDeferrals(m.ID)
	}
	return waiting
}

// mayDefer counts a deferral of message id and reports whether it may wait
// once more.
func (r *Router) mayDefer(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deferrals[id] >= maxDeferrals {
		delete(r.deferrals, id)
		return false
	}
	r.deferrals[id]++
	return true
}

func (r *Router) forgetDeferrals(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.deferrals, id)
}
