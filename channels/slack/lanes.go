package slack

import (
	"context"
	"sync"
)

// lanes runs functions in order per key and in parallel across keys: the
// events of one conversation are committed in the order Slack sent them,
// while a slow one (a users.info lookup) holds up no other conversation.
// A lane's goroutine exits when its queue is empty.
//
// What is queued is bounded, in functions and in the bytes their callers
// say they hold: waitRoom lets a reader stop taking work in (a Socket Mode
// reader stops reading, so Slack's unacked envelopes wait at Slack) until
// the lanes drain. A panic in one function is recovered and reported; the
// lane goes on with the next.
type lanes struct {
	maxCount int
	maxBytes int64
	onPanic  func(key string, v any) // called in the deferred recover, on the panicking stack

	mu     sync.Mutex
	queues map[string][]queued
	count  int           // functions queued or running
	bytes  int64         // their sizes
	room   chan struct{} // closed (and replaced) whenever a function finishes
	wg     sync.WaitGroup
}

type queued struct {
	f    func()
	size int64
}

func newLanes(maxCount int, maxBytes int64, onPanic func(key string, v any)) *lanes {
	return &lanes{maxCount: maxCount, maxBytes: maxBytes, onPanic: onPanic,
		queues: map[string][]queued{}, room: make(chan struct{})}
}

// run queues f, which holds size bytes, on key's lane, whatever the bound:
// callers that must respect it wait for room first (waitRoom).
func (l *lanes) run(key string, size int64, f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queueLocked(key, size, f)
}

// tryRun queues f only when there is room; false means it was not queued.
func (l *lanes) tryRun(key string, size int64, f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fullLocked() {
		return false
	}
	l.queueLocked(key, size, f)
	return true
}

func (l *lanes) queueLocked(key string, size int64, f func()) {
	l.count++
	l.bytes += size
	if q, busy := l.queues[key]; busy {
		l.queues[key] = append(q, queued{f, size})
		return
	}
	l.queues[key] = []queued{{f, size}}
	l.wg.Add(1)
	go l.drain(key)
}

func (l *lanes) fullLocked() bool { return l.count >= l.maxCount || l.bytes >= l.maxBytes }

// full reports whether the bound is reached.
func (l *lanes) full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fullLocked()
}

// pending returns what is queued or running: functions and bytes.
func (l *lanes) pending() (int, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count, l.bytes
}

// waitRoom returns once fewer than maxCount functions and maxBytes bytes
// are queued, or with ctx's error.
func (l *lanes) waitRoom(ctx context.Context) error {
	for {
		l.mu.Lock()
		full, room := l.fullLocked(), l.room
		l.mu.Unlock()
		if !full {
			return nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *lanes) drain(key string) {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		q := l.queues[key]
		if len(q) == 0 {
			delete(l.queues, key)
			l.mu.Unlock()
			return
		}
		next := q[0]
		q[0] = queued{}
		l.queues[key] = q[1:]
		l.mu.Unlock()
		l.call(key, next.f)
		l.mu.Lock()
		l.count--
		l.bytes -= next.size
		close(l.room)
		l.room = make(chan struct{})
		l.mu.Unlock()
	}
}

// call runs f, turning a panic into a report so that one bad event neither
// kills the daemon nor stalls its lane.
func (l *lanes) call(key string, f func()) {
	defer func() {
		if v := recover(); v != nil && l.onPanic != nil {
			l.onPanic(key, v)
		}
	}()
	f()
}

// wait returns once every queued function has run.
func (l *lanes) wait() { l.wg.Wait() }
