package connector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// One key's functions run in the order queued, one at a time; other keys
// run beside them.
func TestLanesOrderPerKey(t *testing.T) {
	l := NewLanes(LanesOptions[int]{})
	var mu sync.Mutex
	got := map[int][]int{}
	running := map[int]bool{}
	for i := range 200 {
		key := i % 4
		l.Go(key, 0, func() {
			mu.Lock()
			if running[key] {
				t.Errorf("key %d: two functions at once", key)
			}
			running[key] = true
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			mu.Lock()
			running[key] = false
			got[key] = append(got[key], i)
			mu.Unlock()
		})
	}
	l.Wait()
	for key, seq := range got {
		for j := 1; j < len(seq); j++ {
			if seq[j] < seq[j-1] {
				t.Fatalf("key %d ran out of order: %v", key, seq)
			}
		}
		if len(seq) != 50 {
			t.Errorf("key %d ran %d functions, want 50", key, len(seq))
		}
	}
}

// A slow key holds up nobody else.
func TestLanesSlowKeyBlocksNoOther(t *testing.T) {
	l := NewLanes(LanesOptions[string]{})
	release := make(chan struct{})
	l.Go("slow", 0, func() { <-release })
	done := make(chan struct{})
	l.Go("fast", 0, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked key held up another")
	}
	close(release)
	l.Wait()
}

// The bound counts functions and bytes; WaitRoom blocks while it is reached
// and returns once a function finishes.
func TestLanesBound(t *testing.T) {
	l := NewLanes(LanesOptions[string]{MaxCount: 100, MaxBytes: 250})
	release := make(chan struct{})
	for i := range 3 {
		l.Go(fmt.Sprint(i), 100, func() { <-release })
	}
	if !l.Full() {
		t.Fatal("300 bytes queued, bound 250: not full")
	}
	if l.TryGo("typing", 0, func() {}) {
		t.Error("TryGo queued past the bound")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := l.WaitRoom(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRoom while full = %v, want it to block", err)
	}
	close(release)
	if err := l.WaitRoom(t.Context()); err != nil {
		t.Fatal(err)
	}
	l.Wait()
	if n, b := l.Pending(); n != 0 || b != 0 {
		t.Errorf("pending after drain = %d, %d bytes", n, b)
	}
}

// Close drops what has not started, refuses more, and lets the running
// function finish; the bookkeeping ends at zero.
func TestLanesClose(t *testing.T) {
	l := NewLanes(LanesOptions[string]{})
	started, release := make(chan struct{}), make(chan struct{})
	ran := 0
	l.Go("a", 10, func() { close(started); <-release; ran++ })
	l.Go("a", 10, func() { ran++ })
	<-started
	l.Close()
	if l.Go("b", 0, func() { ran++ }) || l.TryGo("b", 0, func() { ran++ }) {
		t.Error("queued after Close")
	}
	close(release)
	l.Wait()
	if ran != 1 {
		t.Errorf("%d functions ran, want only the one running at Close", ran)
	}
	if n, b := l.Pending(); n != 0 || b != 0 {
		t.Errorf("pending after Close = %d, %d bytes", n, b)
	}
	if err := l.WaitIdle(t.Context()); err != nil {
		t.Errorf("not idle after Close and Wait: %v", err)
	}
}

// A panic is reported with its key and the lane goes on.
func TestLanesPanic(t *testing.T) {
	var keys []string
	l := NewLanes(LanesOptions[string]{OnPanic: func(k string, v any) { keys = append(keys, fmt.Sprint(k, ":", v)) }})
	after := false
	l.Go("k", 0, func() { panic("boom") })
	l.Go("k", 0, func() { after = true })
	l.Wait()
	if len(keys) != 1 || keys[0] != "k:boom" || !after {
		t.Errorf("panics %q, next function ran %v", keys, after)
	}
}

// WaitIdle blocks while anything is queued or running.
func TestLanesWaitIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLanes(LanesOptions[int]{})
		if err := l.WaitIdle(t.Context()); err != nil {
			t.Fatalf("empty lanes not idle: %v", err)
		}
		l.Go(1, 0, func() { time.Sleep(time.Minute) })
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := l.WaitIdle(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitIdle with a function running = %v", err)
		}
		if err := l.WaitIdle(t.Context()); err != nil {
			t.Fatal(err)
		}
		l.Wait()
	})
}
