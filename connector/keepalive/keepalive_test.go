package keepalive

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// socket is a Socket whose pong comes after answer (never when negative).
type socket struct {
	k       *Keepalive
	answer  time.Duration
	reads   atomic.Uint64
	pings   atomic.Int64
	dropped atomic.Bool
	once    sync.Once
	closed  atomic.Bool
}

func (s *socket) Ping(ctx context.Context) error {
	s.pings.Add(1)
	if s.answer < 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	select {
	case <-time.After(s.answer):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (s *socket) Reads() uint64       { return s.reads.Load() }
func (s *socket) Drop()               { s.dropped.Store(true) }
func (s *socket) Closing() bool       { return s.closed.Load() }
func (s *socket) Logger() *zap.Logger { return zap.NewNop() }
func (s *socket) Close() {
	s.once.Do(func() {
		s.closed.Store(true)
		s.k.Remove(s)
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stop(t *testing.T, g *connector.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// An answering socket is pinged again and again and kept; one whose reader
// waits in its read and gets no pong is dropped; one whose reader is busy
// elsewhere is kept, and the unanswered ping counted.
func TestPingOutcomes(t *testing.T) {
	g := connector.NewGroup()
	defer stop(t, g)
	k := New(40*time.Millisecond, g)
	healthy := &socket{k: k}
	dead := &socket{k: k, answer: -1}
	dead.reads.Store(1) // waiting in its read
	busy := &socket{k: k, answer: -1}
	busy.reads.Store(2) // handling a frame, not reading
	for _, s := range []*socket{healthy, dead, busy} {
		if !k.Add(s) {
			t.Fatal("Add refused a socket before Stop")
		}
	}
	waitFor(t, "three pings of the healthy socket", func() bool { return healthy.pings.Load() >= 3 })
	waitFor(t, "the dead socket dropped", dead.dropped.Load)
	waitFor(t, "an unanswered ping counted", func() bool { return k.Unread() > 0 })
	if healthy.dropped.Load() || busy.dropped.Load() {
		t.Errorf("dropped: healthy %v, busy %v; want neither", healthy.dropped.Load(), busy.dropped.Load())
	}
}

// Stopping the group closes every socket, also when it stops just as pings
// are due (the group then refuses their goroutines), frees their slots, and
// the keepalive takes no socket after.
func TestStopClosesEverySocket(t *testing.T) {
	g := connector.NewGroup()
	k := New(10*time.Millisecond, g)
	s := &socket{k: k, answer: time.Hour}
	if !k.Add(s) {
		t.Fatal("Add refused a socket before Stop")
	}
	k.mu.Lock()
	k.sockets[s].due = time.Time{} // due at once
	k.mu.Unlock()
	stop(t, g)
	if !s.closed.Load() {
		t.Error("the socket is still open after Stop")
	}
	if n := len(k.slots); n != 0 {
		t.Errorf("%d ping slots still taken", n)
	}
	if k.Add(&socket{k: k}) {
		t.Error("a socket was taken after the keepalive ended")
	}
}

// With NewTimeout an answer may take longer than the interval between pings.
func TestTimeoutLongerThanInterval(t *testing.T) {
	g := connector.NewGroup()
	defer stop(t, g)
	k := NewTimeout(20*time.Millisecond, 2*time.Second, g)
	slow := &socket{k: k, answer: 100 * time.Millisecond}
	slow.reads.Store(1) // waiting in its read: a ping past the timeout would drop it
	if !k.Add(slow) {
		t.Fatal("Add refused a socket before Stop")
	}
	waitFor(t, "two answered pings", func() bool { return slow.pings.Load() >= 3 })
	if slow.dropped.Load() {
		t.Error("a socket answering within the timeout, after the interval, was dropped")
	}
}
