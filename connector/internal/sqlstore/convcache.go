package sqlstore

import (
	"slices"
	"sync"

	"github.com/connectord/connectord/connector"
)

// convCacheSize bounds the conversations kept in memory. An entry costs
// about 430 bytes (the struct, its strings, a small session and the map's
// share; BenchmarkConvCacheEntry measures it), so a full cache holds about
// 14 MB. The router reads the conversations it delivers for, which are the
// open ones, and a starting router reads every open one to resume it: the
// bound is above the open conversations one process serves (each holds a
// vendor socket, and the open-files limit is commonly 20,000 to 65,536), so
// that they all stay in memory, while a backlog of many more still cannot
// grow it without end.
const convCacheSize = 32_768

// convCache serves Store.Conversation from memory for an engine whose
// database only this process writes (Dialect.CacheConversations). The
// writer keeps it exact:
//
//   - every statement that changes a conversation row records its id in
//     the batch's Tx, with the row as it left it when the op knows it
//     (Tx.touch, Tx.touchRow);
//   - right before the commit, hold drops those ids and bars them from the
//     cache; right after the commit, and before any caller of the batch
//     hears back, release puts in the rows the batch left (the last one of
//     each id; an id without one is dropped), or drops them all when the
//     commit failed, and lifts the bar;
//   - a read that misses notes seq and counts itself in flight, reads the
//     row, and caches it only if its id was neither held nor released since
//     the read started. So a read that saw the row from before a commit
//     never caches it after, and no cached row is older than the last
//     commit that a caller was told about.
//
// recent remembers the seq of each id's last release only while some read
// is in flight, and is emptied when none is: it stays as small as the
// writes of the time one read takes.
type convCache struct {
	mu      sync.Mutex
	max     int
	entries map[int64]*connector.Conversation // never changed once stored: replaced or dropped

	seq      uint64             // releases so far
	inFlight int                // reads that missed and are reading the row
	recent   map[int64]uint64   // id -> seq of its last release, while reads are in flight
	held     map[int64]struct{} // ids the batch being committed changed
}

func newConvCache(max int) *convCache {
	return &convCache{max: max, entries: make(map[int64]*connector.Conversation),
		recent: make(map[int64]uint64), held: make(map[int64]struct{})}
}

// get returns a copy of the cached conversation id, or false.
func (c *convCache) get(id int64) (*connector.Conversation, bool) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return cloneConversation(e), true
}

// startRead counts a read of the database in flight and returns the ticket
// that endRead takes.
func (c *convCache) startRead() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight++
	return c.seq
}

// endRead ends the read that startRead's ticket began, and caches conv
// (nil when the read failed) unless id changed since the read started.
func (c *convCache) endRead(id int64, ticket uint64, conv *connector.Conversation) {
	if conv != nil {
		conv = cloneConversation(conv) // the caller may change its own copy
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if conv != nil && c.fresh(id, ticket) {
		if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
			c.evictOne()
		}
		c.entries[id] = conv
	}
	if c.inFlight--; c.inFlight == 0 {
		clear(c.recent)
	}
}

// endListRead is endRead for a read of many rows: it caches each of convs
// that did not change since the read started, while there is room (a list
// evicts nothing: the reads of delivery decide what stays), and ends the
// read.
func (c *convCache) endListRead(ticket uint64, convs []*connector.Conversation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conv := range convs {
		if _, ok := c.entries[conv.ID]; !ok && len(c.entries) >= c.max {
			break
		}
		if c.fresh(conv.ID, ticket) {
			c.entries[conv.ID] = cloneConversation(conv)
		}
	}
	if c.inFlight--; c.inFlight == 0 {
		clear(c.recent)
	}
}

// fresh reports whether a read of id that started at ticket may be cached:
// no commit changed id since. Called with mu held.
func (c *convCache) fresh(id int64, ticket uint64) bool {
	if c.recent[id] > ticket {
		return false
	}
	_, held := c.held[id]
	return !held
}

// evictOne drops an arbitrary entry (map order is random enough to serve
// as random eviction). Called with mu held.
func (c *convCache) evictOne() {
	for id := range c.entries {
		delete(c.entries, id)
		return
	}
}

// hold drops ids and bars them from the cache until release: the writer
// calls it right before a commit that changes them. A nil cache does
// nothing.
func (c *convCache) hold(ts []touched) {
	if c == nil || len(ts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range ts {
		c.held[t.id] = struct{}{}
		delete(c.entries, t.id)
	}
}

// release ends hold once the commit is over, before its callers hear back:
// when it committed, each id gets the last row the batch left for it, or
// none; when it failed, every id is dropped. It marks the ids changed for
// the reads still in flight. A nil cache does nothing.
func (c *convCache) release(ts []touched, committed bool) {
	if c == nil || len(ts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	for _, t := range ts {
		delete(c.held, t.id)
		if c.inFlight > 0 {
			c.recent[t.id] = c.seq
		}
		if !committed || t.row == nil {
			delete(c.entries, t.id)
			continue
		}
		if _, ok := c.entries[t.id]; !ok && len(c.entries) >= c.max {
			c.evictOne()
		}
		c.entries[t.id] = t.row // a clone of its own (Tx.touchRow), never changed
	}
}

// len returns how many conversations are cached.
func (c *convCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// cloneConversation copies c deeply enough that neither copy's changes
// reach the other: the session is the one slice a Conversation holds.
func cloneConversation(c *connector.Conversation) *connector.Conversation {
	cp := *c
	cp.Session = slices.Clone(c.Session)
	return &cp
}
