package connector

import "sync"

// recentIDs is a set of the last max message ids added, oldest out. The
// Router keeps the messages it sent in one: a message it sent that is
// handed to a lane again lost its sent mark in the store (a PostgreSQL
// server that crashed with synchronous_commit off, while this process
// lived), and goes to its adapter as Recovered.
type recentIDs struct {
	mu   sync.Mutex
	max  int
	ring []int64
	head int
	ids  map[int64]struct{}
}

func newRecentIDs(max int) *recentIDs {
	return &recentIDs{max: max, ids: make(map[int64]struct{})}
}

func (r *recentIDs) add(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return
	}
	if len(r.ring) < r.max {
		r.ring = append(r.ring, id)
	} else {
		delete(r.ids, r.ring[r.head])
		r.ring[r.head] = id
		r.head = (r.head + 1) % r.max
	}
	r.ids[id] = struct{}{}
}

func (r *recentIDs) has(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}

// maxSentRemembered bounds the Router's memory of the messages it sent.
const maxSentRemembered = 4096
