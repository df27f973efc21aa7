package cobrowser

import (
	"sync"
	"time"
)

// maxBlocks bounds the customers remembered as blocked. Past it the block
// that ends first is forgotten first.
const maxBlocks = 10000

// blockList remembers, in memory, the customers an agent blocked and until
// when. A restart forgets them: CoBrowser's own block is on the agent's
// side, and this one only spares the agents a chat they refused.
type blockList struct {
	mu    sync.Mutex
	max   int
	until map[string]time.Time
}

func newBlockList(max int) *blockList {
	return &blockList{max: max, until: map[string]time.Time{}}
}

// add blocks key until t.
func (b *blockList) add(key string, t time.Time, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, known := b.until[key]; !known && len(b.until) >= b.max {
		b.evictLocked(now)
	}
	b.until[key] = t
}

// evictLocked drops every block that has ended, or else the one that ends
// first.
func (b *blockList) evictLocked(now time.Time) {
	var first string
	var firstT time.Time
	for k, t := range b.until {
		if !t.After(now) {
			delete(b.until, k)
			continue
		}
		if first == "" || t.Before(firstT) {
			first, firstT = k, t
		}
	}
	if len(b.until) >= b.max && first != "" {
		delete(b.until, first)
	}
}

// blocked reports whether key is blocked at now.
func (b *blockList) blocked(key string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[key]
	if ok && !t.After(now) {
		delete(b.until, key)
		return false
	}
	return ok
}

func (b *blockList) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.until)
}
