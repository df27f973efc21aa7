package sms

import (
	"sync"
	"time"
)

// recentTimes maps message ids to a time, for the last max ids noted: the
// oldest note goes first once there are more. The channel keeps in one when
// each call whose answer never came began (begun). Forgetting an entry
// costs only a look at Twilio that then does not happen, so the bound is
// safe.
type recentTimes struct {
	mu   sync.Mutex
	max  int
	ring []noted // notes in order; the oldest at head once full
	head int
	at   map[int64]time.Time
}

// maxRecentCalls bounds each recentTimes of a channel: 4,096 messages.
const maxRecentCalls = 4096

type noted struct {
	id int64
	at time.Time
}

func newRecentTimes(max int) *recentTimes {
	return &recentTimes{max: max, at: make(map[int64]time.Time)}
}

// note sets id's time; id 0 (a message the core did not store) is ignored.
func (r *recentTimes) note(id int64, at time.Time) {
	if id == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := noted{id, at}
	if len(r.ring) < r.max {
		r.ring = append(r.ring, n)
	} else {
		// The oldest note goes, unless a later note of its id (or a drop)
		// replaced it.
		if old := r.ring[r.head]; r.at[old.id].Equal(old.at) {
			delete(r.at, old.id)
		}
		r.ring[r.head] = n
		r.head = (r.head + 1) % r.max
	}
	r.at[id] = at
}

// since returns id's time, if it is noted.
func (r *recentTimes) since(id int64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.at[id]
	return t, ok
}

// drop forgets id.
func (r *recentTimes) drop(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.at, id)
}
