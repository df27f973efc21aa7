package bench

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		d    time.Duration
		n    int
		last time.Duration
	}{
		{1000, time.Second, 1000, 999 * time.Millisecond},
		{250, 2 * time.Second, 500, 1996 * time.Millisecond},
		{0.5, 4 * time.Second, 2, 2 * time.Second},
		{0, time.Second, 0, 0},
	} {
		offs := schedule(tc.rate, tc.d)
		if len(offs) != tc.n {
			t.Fatalf("schedule(%v, %v): %d arrivals, want %d", tc.rate, tc.d, len(offs), tc.n)
		}
		if tc.n == 0 {
			continue
		}
		if offs[0] != 0 || offs[len(offs)-1] != tc.last {
			t.Errorf("schedule(%v, %v): first %v last %v, want 0 and %v", tc.rate, tc.d, offs[0], offs[len(offs)-1], tc.last)
		}
		gap := time.Duration(float64(time.Second) / tc.rate)
		for i := 1; i < len(offs); i++ {
			if d := offs[i] - offs[i-1]; d < gap-time.Microsecond || d > gap+time.Microsecond {
				t.Fatalf("schedule(%v, %v): gap %d is %v, want %v", tc.rate, tc.d, i, d, gap)
			}
		}
	}
}

// The schedule is open loop: every arrival starts at its due time while
// the ones before it are still running (a closed loop would wait for them),
// and each is told its scheduled time, not the time it started.
func TestDispatchIsOpenLoop(t *testing.T) {
	offs := schedule(1000, 50*time.Millisecond)
	release := make(chan struct{})
	var mu sync.Mutex
	got := make(map[int]time.Time)
	var started sync.WaitGroup
	started.Add(len(offs))
	start := time.Now()
	go func() {
		started.Wait() // every call started while none has returned
		close(release)
	}()
	var dues []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		dues = dispatch(context.Background(), start, offs, func(i int, due time.Time) {
			mu.Lock()
			got[i] = due
			mu.Unlock()
			started.Done()
			<-release // an answer that never comes until all were sent
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("dispatch still sending after 10s: it waits for answers (closed loop)")
	}
	<-release
	if len(dues) != len(offs) {
		t.Fatalf("%d dispatched, want %d", len(dues), len(offs))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, off := range offs {
		if want := start.Add(off); !got[i].Equal(want) || !dues[i].Equal(want) {
			t.Errorf("arrival %d: told due %v, returned %v, want %v", i, got[i], dues[i], want)
		}
	}
}

func TestDispatchStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	dues := dispatch(ctx, time.Now().Add(time.Hour), schedule(10, time.Second), func(int, time.Time) { calls++ })
	if len(dues) != 0 || calls != 0 {
		t.Errorf("after cancel: %d dispatched, %d calls; want none", len(dues), calls)
	}
}
