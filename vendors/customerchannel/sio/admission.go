package sio

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/v3/pkg/queue"
)

// admission applies the event buffer's bounds to the zishang520 library,
// which has unbounded buffers of its own between its reader and our buffer:
// the Manager's task queue (every decoded packet goes through it) and, before
// the namespace connect, the socket's receive buffer. admit runs on the
// transport's reader goroutine for every Engine.IO message, before the
// library sees it:
//
//   - after the connect it waits until our buffer has room and the Manager's
//     queue is (almost) empty, so that at most a packet or two are in the
//     library at any time and the reader stops while the consumer is behind;
//   - before the connect nobody can read, so more than the buffer's bounds
//     fail the dial with ErrOverflow.
//
// The library's binary-packet decoder holds at most 10 attachments
// (parser.DefaultMaxAttachments) of at most MaxMessage each.
type admission struct {
	core      *core
	queue     *queue.Queue // the Manager's task queue; nil if the library changed shape
	maxEvents int
	maxBytes  int64

	early      atomic.Int64 // messages before the connect
	earlyBytes atomic.Int64
}

// admissionPoll is how often a waiting reader looks again: a consumer that
// is behind frees room once per event it commits, and nothing signals the
// library's queue emptying.
const admissionPoll = 5 * time.Millisecond

// maxLibraryQueue is how many packets may wait in the Manager's task queue.
const maxLibraryQueue = 1

// admit lets a message packet p into the library, waiting for room once
// connected. It returns an error when the server sent too much before the
// namespace connect.
func (a *admission) admit(p *packet.Packet, connected bool) error {
	if a == nil {
		return nil
	}
	if !connected {
		n := a.early.Add(1)
		var size int64
		if l, ok := p.Data.(interface{ Len() int }); ok {
			size = int64(l.Len())
		}
		b := a.earlyBytes.Add(size)
		if n > int64(a.maxEvents) || b > a.maxBytes {
			return fmt.Errorf("%w: %w: more than %d messages or %d bytes before the namespace connect",
				ErrHandshake, ErrOverflow, a.maxEvents, a.maxBytes)
		}
		return nil
	}
	for !a.core.isEnded() && !a.roomy() {
		time.Sleep(admissionPoll)
	}
	return nil
}

// roomy reports whether a packet may go in now.
func (a *admission) roomy() bool {
	return a.core.hasRoom() && (a.queue == nil || a.queue.Size() <= maxLibraryQueue)
}
