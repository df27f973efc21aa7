package connector

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Reconnect is the one reconnect policy of every connection an adapter
// keeps (a vendor's socket, Slack's Socket Mode): the wait after a failure
// starts at Initial, doubles up to Max, with jitter, and goes back to
// Initial only once a connection has stayed up for Stable. A server that
// accepts and then drops at once therefore meets a growing wait, not a
// redial loop.
//
// An adapter's block carries it as three keys, reconnect_initial,
// reconnect_max and reconnect_stable: three duration fields of the
// adapter's config struct (not an embedded Reconnect: the configuration
// loader reports bad values key by key only for a struct's own fields),
// made into a Reconnect and validated with Check.
type Reconnect struct {
	Initial time.Duration
	Max     time.Duration
	Stable  time.Duration
}

// Check reports what is wrong with the policy as inst's keys.
func (p Reconnect) Check(inst Instance) []error {
	var errs []error
	p.CheckKeys(func(key, format string, args ...any) { errs = append(errs, inst.Errorf(key, format, args...)) })
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// DefaultReconnect is the policy an adapter uses unless its configuration
// says otherwise.
func DefaultReconnect() Reconnect {
	return Reconnect{Initial: 500 * time.Millisecond, Max: time.Minute, Stable: 30 * time.Second}
}

// wait is the pause before attempt n (0 for the first retry): exponential
// with jitter over its upper half, and at least what the remote side asked
// for (RetryAfter).
func (p Reconnect) wait(n int, err error) time.Duration {
	d := p.Initial << min(n, 30)
	if d <= 0 || d > p.Max {
		d = p.Max
	}
	d = d/2 + rand.N(d/2+1)
	if after, ok := RetryDelay(err); ok && after > d {
		d = after
	}
	return d
}

// ConnFunc connects and serves one connection until it fails or ctx is
// done. It calls up once the connection really works (the remote side said
// hello); an error it returns says why the connection ended. A Permanent
// error means no later attempt can work (credentials refused): Supervise
// stops there.
type ConnFunc func(ctx context.Context, up func()) error

// Supervise runs conn again and again, with p's waits between attempts,
// until ctx is done (it then returns nil) or conn returns a Permanent error
// (returned). st follows the connection for /readyz; log gets one line per
// failure. It is synchronous: run it in a goroutine the adapter's Stop
// waits for.
func Supervise(ctx context.Context, p Reconnect, st *Status, log *zap.Logger, conn ConnFunc) error {
	for attempt := 0; ; attempt++ {
		var upAt atomic.Int64 // unix nanos; up may run on the connection's own goroutine
		st.set(false, "connecting")
		err := conn(ctx, func() { upAt.Store(time.Now().UnixNano()); st.set(true, "") })
		if ctx.Err() != nil {
			st.set(false, "stopped")
			return nil
		}
		if err == nil {
			err = errors.New("connection closed")
		}
		st.set(false, RedactError(err))
		if IsPermanent(err) {
			return err
		}
		if at := upAt.Load(); at != 0 && time.Since(time.Unix(0, at)) >= p.Stable {
			attempt = 0 // it worked for a while: this is a new trouble
		}
		d := p.wait(attempt, err)
		log.Warn("connection lost; reconnecting", zap.Duration("in", d), zap.Int("attempt", attempt+1),
			zap.String("error", RedactError(err)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			st.set(false, "stopped")
			return nil
		case <-t.C:
		}
	}
}

// Status is the health of one supervised connection. Its zero value is
// "not connected yet"; it is safe for concurrent use and Health never
// blocks, so an adapter can return it (or combine several) as its Checker.
type Status struct {
	mu sync.Mutex
	h  Health
}

var _ Checker = (*Status)(nil)

func (s *Status) set(ready bool, detail string) {
	s.mu.Lock()
	s.h = Health{Ready: ready, Detail: detail}
	s.mu.Unlock()
}

// Health implements Checker.
func (s *Status) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.h.Ready && s.h.Detail == "" {
		return Health{Detail: "not connected yet"}
	}
	return s.h
}
