package slack

import (
	"container/list"
	"time"
)

// Bounds of the channel's in-memory caches: each keeps at most this many
// entries and forgets the least recently used one past it, so a daemon
// that meets many users or conversations does not grow without end.
const (
	maxCachedNames = 5000  // users, and channels, whose names are known
	maxRemembered  = 10000 // DMs, typing indicators; send progress without the core
)

// lru is a size-bounded map that evicts the least recently used entry, with
// an optional time to live (0: entries do not expire). It is not safe for
// concurrent use: callers hold their own lock.
type lru[K comparable, V any] struct {
	max   int
	ttl   time.Duration
	order *list.List // of *lruEntry, most recent first
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
	exp time.Time // zero: never
}

func newLRU[K comparable, V any](max int, ttl time.Duration) *lru[K, V] {
	return &lru[K, V]{max: max, ttl: ttl, order: list.New(), items: map[K]*list.Element{}}
}

// get returns k's value and marks it used; an expired entry is removed.
func (c *lru[K, V]) get(k K, now time.Time) (V, bool) {
	el, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	e := el.Value.(*lruEntry[K, V])
	if !e.exp.IsZero() && !now.Before(e.exp) {
		c.order.Remove(el)
		delete(c.items, k)
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// put sets k's value (its time to live starting now) and evicts the least
// recently used entries past the bound.
func (c *lru[K, V]) put(k K, v V, now time.Time) {
	var exp time.Time
	if c.ttl > 0 {
		exp = now.Add(c.ttl)
	}
	if el, ok := c.items[k]; ok {
		e := el.Value.(*lruEntry[K, V])
		e.val, e.exp = v, exp
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v, exp: exp})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry[K, V]).key)
	}
}

// remove forgets k.
func (c *lru[K, V]) remove(k K) {
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}

// len is the number of entries, expired ones not yet noticed included.
func (c *lru[K, V]) len() int { return c.order.Len() }
