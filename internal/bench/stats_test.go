package bench

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var out []time.Duration
		for _, v := range vs {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted: 100..1
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"median of even is the lower", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestSpreadOf(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{3, 1, 2}, spread{1, 2, 3}},
		{[]float64{4, 1, 3, 2}, spread{1, 2.5, 4}},
		{[]float64{5}, spread{5, 5, 5}},
		{[]float64{nan, 2, 4}, spread{2, 3, 4}},
		{[]float64{nan}, spread{nan, nan, nan}},
	} {
		got := spreadOf(tc.in)
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b float64) bool {
			return a == b || (math.IsNaN(a) && math.IsNaN(b))
		})); diff != "" {
			t.Errorf("spreadOf(%v) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestKnee(t *testing.T) {
	step := func(rate float64, p99 time.Duration, errs int) stepResult {
		return stepResult{Rate: rate, Acked: 100, AckP99: p99, Errors: errs}
	}
	for _, tc := range []struct {
		name  string
		steps []stepResult
		want  float64
	}{
		{"none", nil, 0},
		{"all good", []stepResult{step(250, time.Millisecond, 0), step(1000, 10*time.Millisecond, 0)}, 1000},
		{"p99 at the bound is over", []stepResult{step(250, time.Millisecond, 0), step(1000, kneeP99, 0)}, 250},
		{"errors disqualify", []stepResult{step(250, time.Millisecond, 0), step(1000, time.Millisecond, 1)}, 250},
		{"a good rate above a bad one", []stepResult{step(250, time.Millisecond, 0), step(1000, time.Second, 0), step(2000, time.Millisecond, 0)}, 2000},
		{"nothing acknowledged", []stepResult{{Rate: 250}}, 0},
	} {
		if got := knee(tc.steps); got != tc.want {
			t.Errorf("%s: knee = %v, want %v", tc.name, got, tc.want)
		}
	}
}
