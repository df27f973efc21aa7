package connector

import "testing"

// recentIDs keeps the last max ids added, oldest out; adding one again
// changes nothing.
func TestRecentIDs(t *testing.T) {
	r := newRecentIDs(3)
	for _, id := range []int64{1, 2, 2, 3, 4} { // 4 pushes out 1
		r.add(id)
	}
	for id, want := range map[int64]bool{1: false, 2: true, 3: true, 4: true, 5: false} {
		if got := r.has(id); got != want {
			t.Errorf("has(%d) = %t, want %t", id, got, want)
		}
	}
	if len(r.ids) != 3 {
		t.Errorf("%d kept, want 3", len(r.ids))
	}
}
