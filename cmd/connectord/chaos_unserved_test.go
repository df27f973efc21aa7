package main

import (
	"testing"
	"time"
)

// The rule that decides which kill a customer's unserved time counts from.
func TestKilledAgain(t *testing.T) {
	cust, other := &trafficCustomer{name: "c1"}, &trafficCustomer{name: "c2"}
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration, owned ...*trafficCustomer) *chaosKill {
		return &chaosKill{at: t0.Add(d), owned: owned}
	}
	for _, tc := range []struct {
		name   string
		later  []*chaosKill
		served time.Duration
		want   bool
	}{
		{"no later kill", nil, 6 * time.Second, false},
		{"owner killed again before serving", []*chaosKill{at(3*time.Second, cust)}, 9 * time.Second, true},
		{"a kill of another instance", []*chaosKill{at(3*time.Second, other)}, 9 * time.Second, false},
		{"killed again after serving", []*chaosKill{at(7*time.Second, cust)}, 6 * time.Second, false},
		{"owner held them past the target", []*chaosKill{at(chaosUnserved+time.Second, cust)}, 20 * time.Second, false},
		{"the second later kill", []*chaosKill{at(2*time.Second, other), at(4*time.Second, cust)}, 9 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := killedAgain(tc.later, cust, t0, t0.Add(tc.served)); got != tc.want {
				t.Errorf("killedAgain = %v, want %v", got, tc.want)
			}
		})
	}
}
