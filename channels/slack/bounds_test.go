package slack

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

func TestLRUBoundAndOrder(t *testing.T) {
	now := time.Now()
	c := newLRU[int, string](3, time.Hour)
	for i := range 10 {
		c.put(i, fmt.Sprint(i), now)
		if i == 7 {
			c.get(7, now) // most recent anyway
		}
		if i >= 8 {
			c.get(7, now) // keep 7 in use while 8 and 9 arrive
		}
		if c.len() > 3 {
			t.Fatalf("after %d puts: %d entries, bound 3", i+1, c.len())
		}
	}
	for k, want := range map[int]bool{7: true, 8: true, 9: true, 6: false, 0: false} {
		if _, ok := c.get(k, now); ok != want {
			t.Errorf("get(%d) present %v, want %v", k, ok, want)
		}
	}
	if _, ok := c.get(9, now.Add(time.Hour)); ok {
		t.Error("an entry outlived its time to live")
	}
	if c.len() != 2 {
		t.Errorf("expired entry still counted: %d", c.len())
	}
}

// The channel's caches stay under their bounds however many users and
// conversations pass through.
func TestChannelCachesStayBounded(t *testing.T) {
	e := newEnv(t, true, nil)
	const bound = 3
	e.ch.names = newNameCache(e.ch.api, time.Hour, bound)
	e.ch.dms = newLRU[string, string](bound, 0)
	e.ch.typing = newLRU[address, string](bound, 0)
	e.start()
	ctx := t.Context()
	for i := range 8 {
		id := fmt.Sprintf("U0CACHE%03d", i)
		e.fake.AddUser(slacktest.User{ID: id, Name: "user" + id})
		if _, ok := e.ch.names.user(ctx, id); !ok {
			t.Fatalf("users.info %s failed", id)
		}
		if _, err := e.ch.dmOf(ctx, address{Channel: id}); err != nil {
			t.Fatalf("DM with %s: %v", id, err)
		}
		e.ch.mu.Lock()
		e.ch.typing.put(address{Channel: chSupport, Root: fmt.Sprint(i)}, "1.2", time.Now())
		e.ch.mu.Unlock()
	}
	e.ch.names.mu.Lock()
	users := e.ch.names.users.len()
	e.ch.names.mu.Unlock()
	e.ch.mu.Lock()
	sizes := map[string]int{"users": users, "dms": e.ch.dms.len(), "typing": e.ch.typing.len()}
	e.ch.mu.Unlock()
	for name, n := range sizes {
		if n > bound {
			t.Errorf("%s cache has %d entries, bound %d", name, n, bound)
		}
	}
}

// With the store stalled, the Socket Mode reader stops taking envelopes in
// at the bound (they stay unacked at Slack) and resumes when the lanes
// drain; every message is committed once.
func TestSocketModeQueueBoundedWhileStoreStalls(t *testing.T) {
	e := newEnv(t, true, nil)
	e.fake.SetAckTimeout(30 * time.Second) // no redelivery: the reader alone must hold the line
	const bound = 3
	e.ch.lanes = connector.NewLanes(connector.LanesOptions[string]{MaxCount: bound, MaxBytes: maxQueuedBytes, OnPanic: e.ch.lanePanic})
	hold := make(chan struct{})
	e.sink.mu.Lock()
	e.sink.hold = hold
	e.sink.mu.Unlock()
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the lanes' high-water mark
		defer close(done)
		for {
			if n, _ := e.ch.lanes.Pending(); int64(n) > peak.Load() {
				peak.Store(int64(n))
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	e.start()
	const total = 10
	var want []string
	for i := range total {
		m := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: fmt.Sprint("thread ", i)})
		want = append(want, chSupport+"/"+m.TS)
	}
	e.waitFor("the lanes full", func() bool { return e.ch.lanes.Full() })
	time.Sleep(300 * time.Millisecond) // room for a reader that would go on
	e.sink.mu.Lock()
	calls := e.sink.calls
	e.sink.mu.Unlock()
	if n, _ := e.ch.lanes.Pending(); n > bound || calls > bound {
		t.Errorf("while stalled: %d queued, %d commits begun; bound %d", n, calls, bound)
	}
	if acks := len(e.fake.Acks()); acks != 0 {
		t.Errorf("%d acks while nothing was committed", acks)
	}
	close(hold)
	got := e.waitInbound(total)
	close(stop)
	<-done
	if p := peak.Load(); p > bound {
		t.Errorf("queue peaked at %d, bound %d", p, bound)
	}
	seen := map[string]int{}
	for _, in := range got {
		seen[in.SourceID]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s committed %d times, want once", id, seen[id])
		}
	}
	e.waitFor("every event acked", func() bool { return len(e.fake.Acks()) >= total })
}
