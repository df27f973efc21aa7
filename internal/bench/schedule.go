package bench

import (
	"context"
	"time"
)

// schedule returns the arrival times of an open-loop load at rate per
// second for d, as offsets from the start: arrival i is due at i/rate,
// whatever happened to the ones before (no coordinated omission).
func schedule(rate float64, d time.Duration) []time.Duration {
	if rate <= 0 || d <= 0 {
		return nil
	}
	n := int(rate * d.Seconds())
	offs := make([]time.Duration, n)
	for i := range offs {
		offs[i] = time.Duration(float64(i) / rate * float64(time.Second))
	}
	return offs
}

// dispatch calls fire(i, due) in a goroutine of its own for each offset,
// at start+offset, and returns the due times once every call has started.
// A late dispatcher (the machine is busy) starts what is overdue at once:
// the latency fire measures from due then includes the lateness. It stops
// early when ctx ends, returning the due times of the calls it made.
func dispatch(ctx context.Context, start time.Time, offs []time.Duration, fire func(i int, due time.Time)) []time.Time {
	dues := make([]time.Time, 0, len(offs))
	for i, off := range offs {
		due := start.Add(off)
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return dues
			}
		} else if ctx.Err() != nil {
			return dues
		}
		dues = append(dues, due)
		go fire(i, due)
	}
	return dues
}
