package cobrowser

import (
	"context"
	"sync"
)

// inboundQueue bounds the stanzas read ahead of the events they make: a
// sink that blocks stops the reading there.
const inboundQueue = 64

// item is one thing the chat's dispatcher handles, in the order queued: a
// stanza read from st, or (away > 0) the end of the agent's presence
// debounce numbered away.
type item struct {
	st   *stream
	x    inbound
	away uint64
}

// inbox hands what a chat's reader reads to a dispatcher goroutine that
// lives only while there is something to hand over, so that an idle chat
// costs one goroutine (its reader) and the reader's stack does not grow
// with the depth of event delivery. Items are handled one at a time, in
// order. At most inboundQueue stanzas wait; push blocks past that.
type inbox struct {
	slots chan struct{} // one per stanza queued or being handled

	mu      sync.Mutex
	ctx     context.Context // the chat's run context: what handling is bound to
	items   []item
	running chan struct{} // closed when the running dispatcher returns; nil when none runs
	closed  bool
}

func newInbox() *inbox { return &inbox{slots: make(chan struct{}, inboundQueue)} }

// push queues a stanza, waiting for room within ctx; false when ctx ended.
func (s *session) push(ctx context.Context, st *stream, x inbound) bool {
	select {
	case s.in.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if !s.enqueue(item{st: st, x: x}) {
		<-s.in.slots
	}
	return true
}

// pushAway queues the end of the presence debounce numbered gen. It takes
// no slot: at most one is pending.
func (s *session) pushAway(gen uint64) { s.enqueue(item{away: gen}) }

// enqueue adds it and starts a dispatcher when none runs; false when the
// inbox is closed or the vendor stopping (it was dropped).
func (s *session) enqueue(it item) bool {
	in := s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || in.ctx == nil {
		return false
	}
	in.items = append(in.items, it)
	if in.running != nil {
		return true
	}
	done := make(chan struct{})
	ctx := in.ctx
	if !s.v.group.Go(func(context.Context) { defer close(done); s.dispatch(ctx) }) {
		in.items = in.items[:len(in.items)-1]
		return false
	}
	in.running = done
	return true
}

// next takes the first item, or ends the dispatcher (false) when none is
// left or the inbox is closed. The queue's array is let go once empty, so
// that an idle chat holds none.
func (in *inbox) next() (item, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.items) == 0 || in.closed {
		in.drop()
		in.running = nil
		return item{}, false
	}
	it := in.items[0]
	in.items[0] = item{}
	in.items = in.items[1:]
	if len(in.items) == 0 {
		in.items = nil
	}
	return it, true
}

// drop forgets what is queued, giving its slots back. Called with mu held.
func (in *inbox) drop() {
	for _, it := range in.items {
		if it.away == 0 {
			<-in.slots
		}
	}
	in.items = nil
}

// dispatch handles items until none is left. A handler that says the chat
// is over halts the session: the rest is dropped and the stream closed,
// which ends the reader.
func (s *session) dispatch(ctx context.Context) {
	for {
		it, ok := s.in.next()
		if !ok {
			return
		}
		if it.away != 0 {
			s.awayDue(ctx, it.away)
			continue
		}
		ok = s.halted() || s.handle(ctx, it.st, it.x)
		<-s.in.slots
		if !ok {
			s.halt(it.st)
		}
	}
}

// idle waits until no dispatcher runs; with closing, no other starts after.
func (in *inbox) idle(closing bool) {
	in.mu.Lock()
	if closing {
		in.closed = true
		in.drop()
	}
	done := in.running
	in.mu.Unlock()
	if done != nil {
		<-done
	}
}

// open binds handling to the chat's run context and accepts items.
func (in *inbox) open(ctx context.Context) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ctx = ctx
}
