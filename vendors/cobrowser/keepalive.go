package cobrowser

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxPinging bounds our pings awaiting their answer at once, across every
// stream of the vendor: each waits on a short-lived goroutine. A healthy
// server answers within a round trip, so few wait at a time; when the
// network dies without a reset, this many streams a ping interval are
// found dead.
const maxPinging = 4096

// keepalive pings every stream of a vendor from one ticker, so that an idle
// chat costs no goroutine of its own for it: each stream is pinged once
// ping_interval has passed since it was added or last pinged, and a ping
// not answered within send_timeout drops the stream, which its chat then
// logs in again. Streams are pinged at the pace they came, so the pings
// spread over the interval.
type keepalive struct {
	interval, timeout time.Duration
	group             *connector.Group
	slots             chan struct{} // one per ping awaiting its answer

	mu      sync.Mutex
	running bool
	streams map[*stream]*pingState
}

// pingState is one stream's place in the schedule. Guarded by keepalive.mu.
type pingState struct {
	due     time.Time
	pinging bool
}

func newKeepalive(interval, timeout time.Duration, g *connector.Group) *keepalive {
	return &keepalive{interval: interval, timeout: timeout, group: g, slots: make(chan struct{}, maxPinging),
		streams: map[*stream]*pingState{}}
}

// add schedules st's pings, starting the ticker with the first stream;
// false once the vendor is stopping.
func (k *keepalive) add(st *stream) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.running {
		if !k.group.Go(k.run) {
			return false
		}
		k.running = true
	}
	k.streams[st] = &pingState{due: time.Now().Add(k.interval)}
	return true
}

// remove forgets st; a ping of it under way ends with the stream.
func (k *keepalive) remove(st *stream) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.streams, st)
}

// tick is how often the schedule is walked: a ping is at most this late.
func (k *keepalive) tick() time.Duration {
	return min(max(k.interval/8, 10*time.Millisecond), time.Second)
}

func (k *keepalive) run(ctx context.Context) {
	t := time.NewTicker(k.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, st := range k.due(now) {
				if !k.group.Go(func(ctx context.Context) { k.ping(ctx, st) }) {
					<-k.slots
				}
			}
		}
	}
}

// due returns the streams to ping now, each holding a slot; one whose turn
// comes while every slot is taken waits for the next tick.
func (k *keepalive) due(now time.Time) []*stream {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*stream
	for st, ps := range k.streams {
		if ps.pinging || now.Before(ps.due) {
			continue
		}
		select {
		case k.slots <- struct{}{}:
		default:
			return out
		}
		ps.pinging, ps.due = true, now.Add(k.interval)
		out = append(out, st)
	}
	return out
}

// ping pings st and waits for the answer; none within send_timeout drops
// the stream.
func (k *keepalive) ping(ctx context.Context, st *stream) {
	defer func() { <-k.slots }()
	err := st.confirm(ctx, k.timeout)
	k.mu.Lock()
	if ps := k.streams[st]; ps != nil {
		ps.pinging = false
	}
	k.mu.Unlock()
	if err == nil {
		return
	}
	if ctx.Err() == nil && !st.isClosed() {
		st.log.Warn("cobrowser chat stream silent; reconnecting", zap.Error(err))
	}
	st.close()
}
