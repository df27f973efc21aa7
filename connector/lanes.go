package connector

import (
	"context"
	"sync"
)

// Lanes runs functions in order per key and in parallel across keys: one
// ordered queue per conversation (and direction), so a conversation's work
// never overtakes itself while a slow conversation holds up no other. A
// lane's goroutine exits when its queue is empty, so an idle key costs
// nothing. The Router's outbox and the Slack channel's intake both run on it.
//
// What is queued can be bounded, in functions and in bytes the callers say
// each holds: TryGo refuses past the bound and WaitRoom lets a reader stop
// taking work in until the lanes drain. A panic in a function is recovered
// and reported to OnPanic; its lane goes on with the next function.
type Lanes[K comparable] struct {
	opt LanesOptions[K]

	mu     sync.Mutex
	queues map[K][]laneJob
	count  int           // functions queued or running
	bytes  int64         // their sizes
	room   chan struct{} // closed (and replaced) whenever a function finishes
	idle   chan struct{} // closed while no lane exists
	closed bool
	wg     sync.WaitGroup
}

// LanesOptions bound a Lanes; zero values mean no bound.
type LanesOptions[K comparable] struct {
	MaxCount int   // functions queued or running
	MaxBytes int64 // bytes they hold
	// OnPanic is called, on the panicking goroutine, with the key and the
	// value a function panicked with. Nil ignores panics (the lane goes on).
	OnPanic func(key K, v any)
}

type laneJob struct {
	f    func()
	size int64
}

// NewLanes returns empty lanes.
func NewLanes[K comparable](opt LanesOptions[K]) *Lanes[K] {
	return &Lanes[K]{opt: opt, queues: map[K][]laneJob{}, room: make(chan struct{}), idle: closedChan()}
}

// Go queues f, which holds size bytes, on key's lane whatever the bound
// (callers that respect it wait for room first). It reports false, and f
// never runs, once the lanes are closed.
func (l *Lanes[K]) Go(key K, size int64, f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.queueLocked(key, size, f)
	return true
}

// TryGo queues f only when there is room and the lanes are open.
func (l *Lanes[K]) TryGo(key K, size int64, f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.fullLocked() {
		return false
	}
	l.queueLocked(key, size, f)
	return true
}

func (l *Lanes[K]) queueLocked(key K, size int64, f func()) {
	l.count++
	l.bytes += size
	if q, busy := l.queues[key]; busy {
		l.queues[key] = append(q, laneJob{f, size})
		return
	}
	if len(l.queues) == 0 {
		l.idle = make(chan struct{})
	}
	l.queues[key] = []laneJob{{f, size}}
	l.wg.Add(1)
	go l.drain(key)
}

func (l *Lanes[K]) fullLocked() bool {
	return (l.opt.MaxCount > 0 && l.count >= l.opt.MaxCount) || (l.opt.MaxBytes > 0 && l.bytes >= l.opt.MaxBytes)
}

// Full reports whether the bound is reached.
func (l *Lanes[K]) Full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fullLocked()
}

// Pending returns what is queued or running: functions and bytes.
func (l *Lanes[K]) Pending() (int, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count, l.bytes
}

// WaitRoom returns once the lanes are below their bound, or with ctx's error.
func (l *Lanes[K]) WaitRoom(ctx context.Context) error {
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

// WaitIdle returns once no function is queued or running, or with ctx's error.
func (l *Lanes[K]) WaitIdle(ctx context.Context) error {
	l.mu.Lock()
	idle := l.idle
	l.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the lanes: functions queued and not started are dropped and
// later ones refused. Functions running go on; Wait waits for them.
func (l *Lanes[K]) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
}

// Wait returns once every lane's goroutine has exited: every queued function
// has run, or, after Close, the running ones have.
func (l *Lanes[K]) Wait() { l.wg.Wait() }

func (l *Lanes[K]) drain(key K) {
	defer l.wg.Done()
	for {
		job, ok := l.next(key)
		if !ok {
			return
		}
		l.call(key, job.f)
		l.mu.Lock()
		l.count--
		l.bytes -= job.size
		close(l.room)
		l.room = make(chan struct{})
		l.mu.Unlock()
	}
}

// next takes key's next function; false removes the lane (empty or closed).
func (l *Lanes[K]) next(key K) (laneJob, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queues[key]
	if l.closed {
		for _, j := range q {
			l.count--
			l.bytes -= j.size
		}
		q = nil
	}
	if len(q) == 0 {
		delete(l.queues, key)
		if len(l.queues) == 0 {
			close(l.idle)
		}
		return laneJob{}, false
	}
	job := q[0]
	q[0] = laneJob{}
	l.queues[key] = q[1:]
	return job, true
}

// call runs f, turning a panic into a report so that one bad function
// neither kills the daemon nor stalls its lane.
func (l *Lanes[K]) call(key K, f func()) {
	defer func() {
		if v := recover(); v != nil && l.opt.OnPanic != nil {
			l.opt.OnPanic(key, v)
		}
	}()
	f()
}
