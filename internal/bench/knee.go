package bench

import "time"

// kneeP99 is the acknowledgement p99 a rate must stay under to count as
// sustained.
const kneeP99 = 50 * time.Millisecond

// knee returns the highest offered rate whose acknowledgement p99 stayed
// under kneeP99 with no errors, or 0 when none did.
func knee(steps []stepResult) float64 {
	best := 0.0
	for _, s := range steps {
		if s.Errors == 0 && s.Acked > 0 && s.AckP99 < kneeP99 && s.Rate > best {
			best = s.Rate
		}
	}
	return best
}
