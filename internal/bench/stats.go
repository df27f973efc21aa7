package bench

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method: the smallest value at or above p percent of the
// samples. It returns 0 for no samples. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	rank = min(max(rank, 1), len(ds))
	return ds[rank-1]
}

// spread is the minimum, median and maximum of one figure over several runs.
type spread struct {
	Min, Median, Max float64
}

// spreadOf summarises vs; NaN values (a figure a run could not measure) are
// left out, and all-NaN gives NaN throughout. An even count's median is the
// mean of the middle two.
func spreadOf(vs []float64) spread {
	var ok []float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	slices.Sort(ok)
	mid := len(ok) / 2
	med := ok[mid]
	if len(ok)%2 == 0 {
		med = (ok[mid-1] + ok[mid]) / 2
	}
	return spread{ok[0], med, ok[len(ok)-1]}
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
