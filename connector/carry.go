package connector

import (
	"context"
	"errors"
)

// carry makes sure the vendor carries c's chat before m is sent on it. A
// chat opened by another process (an earlier run of this instance, or an
// instance that died and whose conversations this one claimed) is resumed
// here first, on m's lane, however m was queued: Start and Adopt schedule
// the resume ahead of the outbox, but an outbox sweep or a wake-up may
// queue a line first, and a vendor that does not carry the chat cannot
// send it. done reports that m was settled here: its conversation ended
// and the vendor no longer has the chat, so there is nothing to end and
// no agent to read it.
func (r *Router) carry(ctx context.Context, v Vendor, c *Conversation, m *Message) (done bool, err error) {
	rs, ok := v.(Resumer)
	if !ok || len(c.Session) == 0 || c.State == StatePending || r.isCarried(c.ID) {
		return false, nil
	}
	if !c.Open() && m.Kind != KindEnd && !sendsAfterEnd(c, m) {
		return false, nil // failed by attempt: nothing goes to an ended chat
	}
	err = rs.Resume(ctx, c)
	switch {
	case err == nil:
		r.setCarried(c.ID, true)
		r.convLog(c).Info("vendor session resumed before a send")
		return false, nil
	case errors.Is(err, ErrChatLost) && !c.Open():
		r.setCarried(c.ID, true) // nothing to carry: the vendor forgot an ended chat
		if m.Kind == KindEnd {
			return true, r.markSent(ctx, c, m, "")
		}
		return true, r.markFailed(ctx, m, "the vendor no longer has the ended chat")
	}
	return false, err // ErrChatLost on an open chat: deliver opens a new one
}

func (r *Router) isCarried(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.carried[id]
}

func (r *Router) setCarried(id int64, carried bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if carried {
		r.carried[id] = true
	} else {
		delete(r.carried, id)
	}
}

// forgetCarried keeps only the open conversations among those carried: an
// ended one needs no resume any more.
func (r *Router) forgetCarried(open []*Conversation) {
	ids := make(map[int64]bool, len(open))
	for _, c := range open {
		ids[c.ID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.carried {
		if !ids[id] {
			delete(r.carried, id)
		}
	}
}
