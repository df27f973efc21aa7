package sio

import (
	"sync"
	"sync/atomic"
)

// core holds what both implementations share: the bounded event buffer and
// the end state.
//
// The buffer sits between the connection's reader and the consumer. deliver
// blocks the reader while the buffer is at its bounds, so that a server
// sending faster than the consumer commits is slowed down by the network
// (back-pressure) rather than held in memory or cut off. A goroutine (pump)
// hands the buffered events to the consumer one at a time over an unbuffered
// channel: that is how the buffer learns that an event has left it.
type core struct {
	out     chan Event    // unbuffered; closed by pump
	done    chan struct{} // closed by end
	abandon chan struct{} // closed by discard: pump stops at once

	maxEvents int
	maxBytes  int64

	// closing is set by the owner's Close before it says goodbye: whatever
	// ends the connection from then on (the server hanging up on our
	// disconnect packet, say) is the owner's close, not an error.
	closing atomic.Bool

	mu          sync.Mutex
	cond        *sync.Cond // signalled on every change of buf or the end state
	buf         []Event
	bufBytes    int64
	peakEvents  int   // high-water marks, for the tests
	peakBytes   int64 //
	ended       bool
	discarded   bool
	err         error
	discardOnce sync.Once

	onEnd func() // called once, outside mu, after the end state is set
}

func newCore(o Options) *core {
	c := &core{out: make(chan Event), done: make(chan struct{}), abandon: make(chan struct{}),
		maxEvents: o.MaxBufferedEvents, maxBytes: o.MaxBufferedBytes}
	if c.maxEvents <= 0 {
		c.maxEvents = DefaultMaxBufferedEvents
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBufferedBytes
	}
	c.cond = sync.NewCond(&c.mu)
	go c.pump()
	return c
}

func (c *core) Events() <-chan Event  { return c.out }
func (c *core) Done() <-chan struct{} { return c.done }

func (c *core) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// eventSize is what an event counts against MaxBufferedBytes: its JSON text.
func eventSize(ev Event) int64 {
	n := int64(len(ev.Name))
	for _, a := range ev.Args {
		n += int64(len(a))
	}
	return n
}

// deliver appends ev to the buffer, waiting while the buffer is at its
// bounds (an empty buffer takes any event). It returns false, without
// buffering, once the connection has ended.
func (c *core) deliver(ev Event) bool {
	n := eventSize(ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.ended && len(c.buf) > 0 && (len(c.buf) >= c.maxEvents || c.bufBytes+n > c.maxBytes) {
		c.cond.Wait()
	}
	if c.ended {
		return false
	}
	c.buf = append(c.buf, ev)
	c.bufBytes += n
	c.peakEvents = max(c.peakEvents, len(c.buf))
	c.peakBytes = max(c.peakBytes, c.bufBytes)
	c.cond.Broadcast()
	return true
}

// pump hands buffered events to the consumer in order. After the end it
// drains what is buffered, then closes Events; after discard it stops at once.
func (c *core) pump() {
	defer close(c.out)
	for {
		c.mu.Lock()
		for len(c.buf) == 0 && !c.ended {
			c.cond.Wait()
		}
		if len(c.buf) == 0 || c.discarded {
			c.mu.Unlock()
			return
		}
		ev := c.buf[0]
		c.mu.Unlock()
		select {
		case c.out <- ev:
		case <-c.abandon:
			return
		}
		c.mu.Lock()
		if c.discarded {
			c.mu.Unlock()
			return
		}
		c.buf[0] = Event{}
		c.buf = c.buf[1:]
		c.bufBytes -= eventSize(ev)
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// end records why the connection ended (the first call wins), closes Done,
// wakes a reader waiting in deliver, and runs onEnd. Events stays open until
// what is buffered has been read. It reports whether this call ended the
// connection.
func (c *core) end(err error) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.ended = true
	if c.closing.Load() {
		err = nil
	}
	c.err = err
	close(c.done)
	c.cond.Broadcast()
	f := c.onEnd
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

// discard drops whatever is still buffered and closes Events: the owner
// closed the connection and reads no more.
func (c *core) discard() {
	c.discardOnce.Do(func() {
		c.mu.Lock()
		c.discarded = true
		c.buf, c.bufBytes = nil, 0
		c.cond.Broadcast()
		c.mu.Unlock()
		close(c.abandon)
	})
}

func (c *core) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// peaks returns the most events and bytes the buffer has held at once.
func (c *core) peaks() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peakEvents, c.peakBytes
}
