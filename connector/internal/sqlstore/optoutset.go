package sqlstore

import "sync"

// optOutSet serves Store.OptedOut from memory for an engine whose database
// only this process writes (Dialect.CacheOptOuts). It holds every row of
// opt_outs, so a lookup never reads the database and the set's size is the
// table's, whatever the number of customers:
//
//   - Store.Load fills it from the table when the store opens, before the
//     store is handed out (nothing writes yet);
//   - every statement that changes opt_outs records its change in the
//     batch's Tx (Tx.optOutChanged); a request that fails drops its own
//     with its savepoint;
//   - right after the batch commits, and before any caller of the batch
//     hears back, the writer applies the changes in order; a batch that
//     fails to commit applies none.
//
// So a SetOptOut that returned nil is seen by every OptedOut after it, and
// one that failed changes nothing. A lookup that runs while the commit is
// applied may see either side of it, as a read of the database would.
type optOutSet struct {
	mu sync.RWMutex
	// customers by (channel, sender): a deployment has a handful of pairs,
	// so each opted-out row costs its customer's string and a map slot.
	pairs map[optOutPair]map[string]struct{}
}

// optOutPair is a channel and the sender (our number or messaging service)
// a customer opted out of.
type optOutPair struct{ channel, sender string }

// optOutChange is one row of opt_outs written (out) or deleted.
type optOutChange struct {
	pair     optOutPair
	customer string
	out      bool
}

func newOptOutSet() *optOutSet {
	return &optOutSet{pairs: make(map[optOutPair]map[string]struct{})}
}

// has reports whether customer opted out of sender on channel.
func (o *optOutSet) has(channel, sender, customer string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	_, ok := o.pairs[optOutPair{channel, sender}][customer]
	return ok
}

// apply makes the changes, in order, once their batch committed. A nil set
// does nothing.
func (o *optOutSet) apply(changes []optOutChange) {
	if o == nil || len(changes) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range changes {
		o.set(c)
	}
}

// set makes one change. Called with mu held.
func (o *optOutSet) set(c optOutChange) {
	customers := o.pairs[c.pair]
	if !c.out {
		delete(customers, c.customer)
		if len(customers) == 0 {
			delete(o.pairs, c.pair) // a pair whose customers all opted back in costs nothing
		}
		return
	}
	if customers == nil {
		customers = make(map[string]struct{})
		o.pairs[c.pair] = customers
	}
	customers[c.customer] = struct{}{}
}

// len returns how many opt-outs the set holds.
func (o *optOutSet) len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	n := 0
	for _, customers := range o.pairs {
		n += len(customers)
	}
	return n
}
