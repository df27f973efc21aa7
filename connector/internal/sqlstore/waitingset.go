package sqlstore

import "sync"

// waitingSet answers Store.WaitingBefore's common question, whether any line
// to the agent older than a given one still waits in its conversation, from
// memory, for an engine whose database only this process writes
// (Dialect.CacheWaiting). The router asks before every line it sends to an
// agent, and nearly always none waits: the database is read only when one
// does. The set holds the ids of every message to the agent in state
// stored, which is the outbox's share of such lines: it is as small as the
// backlog, whatever the number of conversations.
//
// It is kept exact the way optOutSet is:
//
//   - Load fills it from the database before the store is handed out;
//   - every statement that makes a message to the agent stored, makes it
//     anything else, moves it to another conversation or deletes it records
//     that in the batch's Tx (Tx.waitingAdded, Tx.waitingDone,
//     Tx.waitingPurged); a request that fails drops its own records with
//     its savepoint;
//   - right after the batch commits, and before any caller of the batch
//     hears back, the writer applies them in order; a batch that fails to
//     commit applies none.
//
// Statements that cannot change whether a line to the agent waits record
// nothing: delivery reports name lines to the customer only, and progress
// and attempt counts leave the state alone.
type waitingSet struct {
	mu     sync.RWMutex
	convOf map[int64]int64              // waiting message id -> its conversation
	byConv map[int64]map[int64]struct{} // conversation -> its waiting message ids
}

// waitingChange is one change to the set: message msg waits in conv
// (conv > 0), no longer waits (conv == 0), or, with purged, every message
// of conversation conv is gone.
type waitingChange struct {
	msg, conv int64
	purged    bool
}

func newWaitingSet() *waitingSet {
	return &waitingSet{convOf: make(map[int64]int64), byConv: make(map[int64]map[int64]struct{})}
}

// anyBefore reports whether a message of conversation conv with an id
// below before waits.
func (w *waitingSet) anyBefore(conv, before int64) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for id := range w.byConv[conv] {
		if id < before {
			return true
		}
	}
	return false
}

// apply makes the changes, in order, once their batch committed. A nil set
// does nothing.
func (w *waitingSet) apply(changes []waitingChange) {
	if w == nil || len(changes) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range changes {
		w.set(c)
	}
}

// set makes one change. Called with mu held.
func (w *waitingSet) set(c waitingChange) {
	if c.purged {
		for id := range w.byConv[c.conv] {
			delete(w.convOf, id)
		}
		delete(w.byConv, c.conv)
		return
	}
	if old, ok := w.convOf[c.msg]; ok {
		w.drop(old, c.msg)
	}
	if c.conv == 0 {
		return
	}
	w.convOf[c.msg] = c.conv
	ids := w.byConv[c.conv]
	if ids == nil {
		ids = make(map[int64]struct{}, 1)
		w.byConv[c.conv] = ids
	}
	ids[c.msg] = struct{}{}
}

// drop removes msg from conv's ids. Called with mu held.
func (w *waitingSet) drop(conv, msg int64) {
	delete(w.convOf, msg)
	ids := w.byConv[conv]
	delete(ids, msg)
	if len(ids) == 0 {
		delete(w.byConv, conv) // a conversation with nothing waiting costs nothing
	}
}

// len returns how many messages the set holds.
func (w *waitingSet) len() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.convOf)
}
