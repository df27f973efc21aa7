package sms

import (
	"testing"
	"time"
)

// recentTimes keeps the newest max notes, oldest out; a note again sets an
// id's time, and its earlier note no longer evicts it; a dropped id is
// gone, and its old note evicts nothing later.
func TestRecentTimes(t *testing.T) {
	r := newRecentTimes(3)
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	r.note(1, at(1))
	r.note(2, at(2))
	r.note(1, at(3)) // 1 noted again: its first note no longer counts
	r.note(3, at(4)) // evicts 1's first note: 1 stays
	if got, ok := r.since(1); !ok || got != at(3) {
		t.Errorf("after its first note was evicted, since(1) = %v, %t; want %v", got, ok, at(3))
	}
	r.note(4, at(5)) // evicts 2
	r.drop(3)
	r.note(5, at(6)) // evicts 1's second note: 1 goes
	r.note(6, at(7)) // evicts 3's note, already dropped: nothing else goes
	want := map[int64]time.Time{4: at(5), 5: at(6), 6: at(7)}
	for id := int64(0); id <= 7; id++ {
		got, ok := r.since(id)
		if w, want := want[id]; ok != want || got != w {
			t.Errorf("since(%d) = %v, %t; want %v, %t", id, got, ok, w, want)
		}
	}
	r.note(0, at(8))
	if _, ok := r.since(0); ok {
		t.Error("id 0 was noted")
	}
	if len(r.at) > 3 {
		t.Errorf("%d kept, at most 3", len(r.at))
	}
}
