package xima

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// keepRig runs a keepalive in a synctest bubble, recording every send.
type keepRig struct {
	k      *keepalive
	wg     sync.WaitGroup
	mu     sync.Mutex
	sends  map[*chat][]time.Time
	fail   map[*chat]int // sends still to fail
	inside int           // sends in flight
	most   int
	block  chan struct{} // when not nil, sends wait for it
	cancel context.CancelFunc
}

func newKeepRig(interval, jitter time.Duration) *keepRig {
	r := &keepRig{sends: map[*chat][]time.Time{}, fail: map[*chat]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	spawn := func(f func(context.Context)) bool {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); f(ctx) }()
		return true
	}
	r.k = newKeepalive(interval, jitter, r.send, spawn)
	spawn(r.k.run)
	return r
}

func (r *keepRig) send(ctx context.Context, c *chat) error {
	r.mu.Lock()
	r.inside++
	r.most = max(r.most, r.inside)
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inside--
	r.sends[c] = append(r.sends[c], time.Now())
	if r.fail[c] > 0 {
		r.fail[c]--
		return errors.New("refused")
	}
	return nil
}

func (r *keepRig) stop() {
	r.cancel()
	r.wg.Wait()
}

func (r *keepRig) times(c *chat) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.sends[c]...)
}

// A hundred chats idle for 70 s: every one gets its still-here within
// interval+jitter of the last, never later, and they spread out rather
// than all firing at once.
func TestKeepaliveSpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval, jitter = 20 * time.Second, 5 * time.Second
		r := newKeepRig(interval, jitter)
		start := time.Now()
		chats := make([]*chat, 100)
		for i := range chats {
			chats[i] = &chat{id: int64(i + 1)}
			r.k.add(chats[i], r.k.next(start))
		}
		time.Sleep(70 * time.Second)
		synctest.Wait()
		r.stop()
		distinct := map[time.Time]bool{}
		for _, c := range chats {
			ts := r.times(c)
			if len(ts) < 2 {
				t.Fatalf("chat %d: %d still-heres in 70s", c.id, len(ts))
			}
			last := start
			for _, at := range ts {
				if gap := at.Sub(last); gap > interval+jitter || gap < interval {
					t.Errorf("chat %d: gap %s, want %s to %s", c.id, gap, interval, interval+jitter)
				}
				last = at
				distinct[at] = true
			}
			if end := start.Add(70 * time.Second); end.Sub(last) > interval+jitter {
				t.Errorf("chat %d: last still-here %s before the end", c.id, end.Sub(last))
			}
		}
		if len(distinct) < 50 {
			t.Errorf("still-heres of 100 chats fell on only %d distinct instants", len(distinct))
		}
	})
}

// After a restart a chat is due at once; a failed send is tried again
// after the retry delay, well before Xima's 30 s; a removed chat gets no
// more.
func TestKeepaliveRestartRetryRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newKeepRig(20*time.Second, 5*time.Second)
		start := time.Now()
		c := &chat{id: 1}
		r.fail[c] = 2
		r.k.add(c, start)
		synctest.Wait()
		if ts := r.times(c); len(ts) != 1 || !ts[0].Equal(start) {
			t.Fatalf("first still-here after a restart at %v, want at once", ts)
		}
		time.Sleep(r.k.retry)
		synctest.Wait()
		time.Sleep(r.k.retry)
		synctest.Wait()
		ts := r.times(c)
		if len(ts) != 3 || ts[2].Sub(start) != 2*r.k.retry {
			t.Fatalf("retries at %v, want two %s apart", ts, r.k.retry)
		}
		r.k.remove(c)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(r.times(c)); n != 3 {
			t.Errorf("%d still-heres after remove, want 3", n)
		}
		if r.k.count() != 0 {
			t.Errorf("%d chats kept alive", r.k.count())
		}
		r.stop()
	})
}

// A slow server holds at most maxSenders calls at once: the loop waits,
// it does not pile goroutines up.
func TestKeepaliveBoundedSenders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newKeepRig(20*time.Second, 0)
		r.block = make(chan struct{})
		for i := range 3 * maxSenders {
			r.k.add(&chat{id: int64(i)}, time.Now())
		}
		synctest.Wait()
		r.mu.Lock()
		inside := r.inside
		r.mu.Unlock()
		if inside != maxSenders {
			t.Errorf("%d sends in flight, want %d", inside, maxSenders)
		}
		close(r.block)
		synctest.Wait()
		r.stop()
		if r.most > maxSenders {
			t.Errorf("%d sends in flight at most, bound %d", r.most, maxSenders)
		}
	})
}
