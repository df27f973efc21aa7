package connector_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

var policy = connector.Reconnect{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Stable: 10 * time.Second}

// A server that accepts and drops at once meets a growing wait, not a
// redial loop: the wait resets only after a connection stayed up.
func TestSuperviseBacksOffFlappingConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var dials atomic.Int32
		st := &connector.Status{}
		connector.Supervise(ctx, policy, st, zap.NewNop(), func(ctx context.Context, up func()) error {
			dials.Add(1)
			up()                     // accepted...
			return errors.New("EOF") // ...and dropped at once
		})
		// 100ms doubling to 2s, jitter over the upper half: at most about
		// 5 short waits, then one per second at least for the rest.
		if n := dials.Load(); n > 65 || n < 25 {
			t.Errorf("%d dials in a minute, want a backed-off count (25-65)", n)
		}
	})
}

// A connection that stayed up for Stable resets the wait to Initial.
func TestSuperviseResetsAfterStable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var starts []time.Time
		done := make(chan struct{})
		go func() {
			defer close(done)
			connector.Supervise(ctx, policy, &connector.Status{}, zap.NewNop(), func(ctx context.Context, up func()) error {
				starts = append(starts, time.Now())
				if len(starts) == 8 {
					up()
					time.Sleep(policy.Stable) // a good long connection
				}
				if len(starts) == 10 {
					cancel()
				}
				return errors.New("refused")
			})
		}()
		<-done
		if len(starts) < 10 {
			t.Fatalf("%d attempts", len(starts))
		}
		before := starts[7].Sub(starts[6])
		after := starts[8].Sub(starts[7]) - policy.Stable
		if after > policy.Initial || before < policy.Max/2 {
			t.Errorf("wait before the stable connection %s (want about Max), after it %s (want at most Initial)", before, after)
		}
	})
}

// Status follows the connection, with no URL query in its detail; a
// Permanent error ends the supervision; a cancelled context ends it at once.
func TestSuperviseStatusAndEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		st := &connector.Status{}
		if h := st.Health(); h.Ready || h.Detail == "" {
			t.Errorf("before any attempt: %+v", h)
		}
		seen := make(chan connector.Health, 10)
		go connector.Supervise(ctx, policy, st, zap.NewNop(), func(ctx context.Context, up func()) error {
			up()
			seen <- st.Health()
			<-ctx.Done()
			return ctx.Err()
		})
		if h := <-seen; !h.Ready {
			t.Errorf("after up: %+v", h)
		}
		cancel()
		synctest.Wait()
		if h := st.Health(); h.Ready || h.Detail != "stopped" {
			t.Errorf("after stop: %+v", h)
		}

		st = &connector.Status{}
		err := connector.Supervise(context.Background(), policy, st, zap.NewNop(), func(ctx context.Context, up func()) error {
			return connector.Permanent(errors.New(`dial "wss://x/socket?ticket=SECRET": invalid_auth`))
		})
		if !connector.IsPermanent(err) {
			t.Errorf("Supervise returned %v, want the permanent error", err)
		}
		if h := st.Health(); h.Ready || strings.Contains(h.Detail, "SECRET") || !strings.Contains(h.Detail, "invalid_auth") {
			t.Errorf("after a permanent failure: %+v", h)
		}
	})
}

func TestReconnectCheck(t *testing.T) {
	inst := connector.NewInstance("vendors.x.y", "x", "y", nil)
	if errs := connector.DefaultReconnect().Check(inst); errs != nil {
		t.Errorf("default policy: %v", errs)
	}
	errs := connector.Reconnect{Initial: time.Second, Max: time.Millisecond}.Check(inst)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{`vendors.x.y.reconnect_max: must not be less than reconnect_initial`,
		`vendors.x.y.reconnect_stable: must be a positive duration like "30s"`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
