package customerchannel

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// The connection's reader only reads: it decodes each event, notes a join's
// answer for the watch (lost.go) and hands the event to its chat's worker,
// one ordered lane per conversationId (connector.Lanes). Every store write
// (the core's EventSink, which may take long on a loaded database) happens
// on a worker, so a chat replaying a long history holds up neither another
// chat nor the connection's own work (registering, role changes, joins).
// Events of a chat we do not carry (campaigns) share one lane of their own,
// in order. The lanes outlive a connection: a chat's events of the previous
// connection are handled before those of the next one, each knowing the
// connection it was read on.

const (
	// maxQueued and maxQueuedBytes bound the events read and not yet
	// handled (the size is the payload's JSON text). Past them the reader
	// stops reading and the socket client's own buffer, then the server,
	// hold the rest: back-pressure, nothing dropped. They bound the
	// workers too: a lane exists only while it holds an event.
	maxQueued      = 256
	maxQueuedBytes = 4 << 20

	// otherLane is the lane of events for chats we do not carry: no chat
	// we carry has an empty id.
	otherLane = ""
)

// newLanes returns the workers' lanes of v.
func (v *Vendor) newLanes() *connector.Lanes[string] {
	return connector.NewLanes(connector.LanesOptions[string]{MaxCount: maxQueued, MaxBytes: maxQueuedBytes,
		OnPanic: func(chat string, p any) {
			v.log.Error("handling a chat server event panicked; the chat's next events go on",
				zap.String("chat", chat), zap.String("panic", fmt.Sprint(p)))
		}})
}

// inbound is one server event, decoded on the reader and handled on its
// chat's worker.
type inbound struct {
	gen  uint64            // the connection it was read on
	msg  *message          // a messageArrived, or
	info *conversationInfo // a conversationInfo (a join's answer)
	chat string            // the conversation it is about; "" for none
	size int64             // its payload's bytes, for the lanes' bound
}

// parse decodes ev, read on connection gen. An event that is not ours to
// handle, or a payload it cannot read (logged), gives false.
func (v *Vendor) parse(ev sio.Event, gen uint64) (inbound, bool) {
	if len(ev.Args) == 0 {
		return inbound{}, false
	}
	in := inbound{gen: gen}
	for _, a := range ev.Args {
		in.size += int64(len(a))
	}
	switch ev.Name {
	case evArrived:
		var m message
		if err := decodePayload(ev.Args[0], &m); err != nil {
			v.log.Warn("malformed messageArrived skipped", zap.Error(err))
			return inbound{}, false
		}
		in.msg, in.chat = &m, m.ConversationID
	case evConversation:
		var info conversationInfo
		if err := decodePayload(ev.Args[0], &info); err != nil {
			v.log.Warn("malformed conversationInfo skipped", zap.Error(err))
			return inbound{}, false
		}
		in.info, in.chat = &info, info.chatID()
	default:
		v.log.Debug("event ignored", zap.String("event", ev.Name))
		return inbound{}, false
	}
	return in, true
}

// dispatch takes one event read on connection gen: a join's answer counts
// for the watch w now, when it is read, whatever the worker still has to
// do; the event goes to its chat's worker.
func (v *Vendor) dispatch(ctx context.Context, ev sio.Event, gen uint64, w *watch) {
	in, ok := v.parse(ev, gen)
	if !ok {
		return
	}
	if in.info != nil {
		w.answered(in.chat)
		if in.chat == "" {
			v.blind(gen)
		} else {
			v.answerRead(in.chat, gen)
		}
	}
	v.queue(ctx, in)
}

// queue hands in to the lane of its chat, or to the other lane for a chat
// we do not carry. Once the lanes are closed (Stop) it is dropped; a worker
// that finds ctx done handles nothing more: an agent line comes again in
// the next connection's history.
func (v *Vendor) queue(ctx context.Context, in inbound) {
	v.mu.Lock()
	_, ours := v.live[in.chat]
	v.mu.Unlock()
	key := otherLane
	if ours {
		key = in.chat
	}
	v.lanes.Go(key, in.size, func() {
		if ctx.Err() == nil {
			v.handle(ctx, in)
		}
	})
}

// roomWait waits for room in the lanes on a goroutine of its own, so that
// the reader, which stops reading events while they are full, still serves
// the connection. At most one such goroutine runs per connection.
type roomWait struct {
	lanes  *connector.Lanes[string]
	room   chan struct{} // closed once the lanes have room; nil: no wait
	cancel context.CancelFunc
	done   chan struct{}
}

// wait returns nil while the lanes have room; else a channel closed once
// they have.
func (r *roomWait) wait(ctx context.Context) <-chan struct{} {
	if r.room != nil {
		select {
		case <-r.room:
			r.stop()
		default:
			return r.room
		}
	}
	if !r.lanes.Full() {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	room, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if r.lanes.WaitRoom(wctx) == nil {
			close(room)
		}
	}()
	r.room, r.cancel, r.done = room, cancel, done
	return room
}

// stop ends the wait, if any, and its goroutine.
func (r *roomWait) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.room, r.cancel, r.done = nil, nil, nil
}
