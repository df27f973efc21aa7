package connectortest

import (
	"testing"

	"go.uber.org/goleak"
)

// clause is one subtest of an adapter suite, run on the state R that the
// suite's begin makes.
type clause[R any] struct {
	name string
	fn   func(R)
}

// runClauses runs each clause as a subtest on what begin starts. end stops
// it, also when the clause failed; then, unless the subtest failed, no
// goroutine the subtest started may be left, beyond what ignore names.
func runClauses[R any](t *testing.T, ignore []goleak.Option, clauses []clause[R], begin func(*testing.T) R, end func(R)) {
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]goleak.Option{goleak.IgnoreCurrent()}, ignore...)
			var r R
			started := false
			defer func() {
				if started {
					end(r)
				}
				if !t.Failed() {
					goleak.VerifyNone(t, opts...)
				}
			}()
			r, started = begin(t), true
			c.fn(r)
		})
	}
}
