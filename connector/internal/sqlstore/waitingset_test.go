package sqlstore

import (
	"regexp"
	"testing"
)

// TestWaitingWritesAreKnown: every statement that inserts or deletes
// messages, or changes their state or conversation, records what it did for
// the waiting set, or is known not to touch lines to the agent; a new one
// must be added to one list or the other.
func TestWaitingWritesAreKnown(t *testing.T) {
	q := newQueries(&Dialect{})
	known := map[string]bool{
		// Recorded (waitingAdded, waitingDone, waitingPurged).
		q.insertMessage: true, q.markSent: true, q.markFailed: true, q.moveWaiting: true,
		q.failPending: true, q.retryMessage: true, q.purgeMessages: true,
		// Not a line to the agent's state: delivery reports name lines to the
		// customer; progress and attempts leave the state as it is.
		q.setDelivery: true, q.saveProgress: true, q.countAttempt: true, q.clearAttempts: true,
	}
	writes := regexp.MustCompile(`(?i)\b(UPDATE|INSERT INTO|DELETE FROM)\s+messages\b`)
	for _, p := range q.all() {
		if writes.MatchString(*p) && !known[*p] {
			t.Errorf("a statement writes messages without recording it for the waiting set: %s", *p)
		}
	}
}

func TestWaitingSet(t *testing.T) {
	w := newWaitingSet()
	w.apply([]waitingChange{{msg: 5, conv: 1}, {msg: 7, conv: 1}, {msg: 9, conv: 2}})
	for _, tc := range []struct {
		conv, before int64
		want         bool
	}{
		{1, 5, false}, {1, 6, true}, {2, 9, false}, {2, 10, true}, {3, 100, false},
	} {
		if got := w.anyBefore(tc.conv, tc.before); got != tc.want {
			t.Errorf("anyBefore(%d, %d) = %v, want %v", tc.conv, tc.before, got, tc.want)
		}
	}
	w.apply([]waitingChange{{msg: 5}, {msg: 7, conv: 2}}) // 5 sent, 7 moved to 2
	if w.anyBefore(1, 100) || !w.anyBefore(2, 8) {
		t.Errorf("after a send and a move: conversation 1 %v (want none), 2 below 8 %v (want 7)",
			w.anyBefore(1, 100), w.anyBefore(2, 8))
	}
	w.apply([]waitingChange{{msg: 12345}}) // never waited: nothing to drop
	w.apply([]waitingChange{{conv: 2, purged: true}})
	if n := w.len(); n != 0 || len(w.byConv) != 0 {
		t.Errorf("after the purge %d messages, %d conversations left, want none", n, len(w.byConv))
	}
	var nilSet *waitingSet
	nilSet.apply([]waitingChange{{msg: 1, conv: 1}}) // a dialect without the set
}
