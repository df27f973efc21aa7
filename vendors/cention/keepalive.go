package cention

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxPinging bounds the pings awaiting their pong at once, across every
// socket of the vendor: each waits on a short-lived goroutine (conn.ping
// returns only with the pong), so this bounds those goroutines. A
// healthy socket answers within a round trip, so few wait at a time; when
// the network between us and Cention dies without a reset, every ping waits
// the whole interval, and this many at a time find their sockets dead: 4096
// finds 20,000 in five intervals (TCP keepalive, on by default, gives up on
// them within about 2.5 minutes too), at a few KB of stack each meanwhile.
const maxPinging = 4096

// keepalive pings every socket of a vendor from one ticker, so that an idle
// chat costs no goroutine of its own for it: each socket is pinged once its
// interval has passed since it opened or was last pinged, and a ping
// without a pong within the interval drops the socket, which ends its
// reader. Sockets are pinged at the pace they opened, so pings spread over
// the interval instead of coming all at once.
type keepalive struct {
	interval time.Duration
	group    *connector.Group
	slots    chan struct{} // one per ping awaiting its pong
	// unread counts pings left unanswered while a reader was busy, which
	// drop nothing.
	unread atomic.Int64

	mu      sync.Mutex
	running bool
	closed  bool // the vendor stopped: every socket was dropped, none is taken
	conns   map[*conn]*pingState
}

// pingState is one socket's place in the ping schedule. Guarded by
// keepalive.mu.
type pingState struct {
	due     time.Time // when the next ping is owed
	pinging bool      // a ping awaits its pong
}

func newKeepalive(interval time.Duration, g *connector.Group) *keepalive {
	return &keepalive{interval: interval, group: g, slots: make(chan struct{}, maxPinging),
		conns: map[*conn]*pingState{}}
}

// add schedules c's pings, starting the ticker with the first socket. It
// reports false once the vendor is stopping.
func (k *keepalive) add(c *conn) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	if !k.running {
		if !k.group.Go(k.run) {
			return false
		}
		k.running = true
	}
	k.conns[c] = &pingState{due: time.Now().Add(k.interval)}
	return true
}

// remove forgets c; a ping of it under way ends with the socket.
func (k *keepalive) remove(c *conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.conns, c)
}

// tick is how often the schedule is walked: a ping is at most this late.
func (k *keepalive) tick() time.Duration {
	return min(max(k.interval/8, 10*time.Millisecond), time.Second)
}

// run walks the schedule until the vendor stops, and then drops every
// socket: the chats' readers do not watch a context (see session.serve).
func (k *keepalive) run(ctx context.Context) {
	defer k.closeAll() // however it ends: a chat's reader waits for it
	t := time.NewTicker(k.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !k.pingDue(now) {
				return
			}
		}
	}
}

// pingDue starts a ping of every socket due at now; false once the vendor
// is stopping.
func (k *keepalive) pingDue(now time.Time) bool {
	due := k.due(now)
	for i, c := range due {
		if !k.group.Go(func(ctx context.Context) { k.ping(ctx, c) }) {
			for range due[i:] {
				<-k.slots
			}
			return false
		}
	}
	return true
}

// closeAll drops every socket and refuses new ones.
func (k *keepalive) closeAll() {
	k.mu.Lock()
	k.closed = true
	conns := make([]*conn, 0, len(k.conns))
	for c := range k.conns {
		conns = append(conns, c)
	}
	k.mu.Unlock()
	for _, c := range conns {
		c.close() // takes k.mu to remove c
	}
}

// due returns the sockets to ping now, each holding a slot; a socket whose
// turn comes while every slot is taken waits for the next tick.
func (k *keepalive) due(now time.Time) []*conn {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*conn
	for c, st := range k.conns {
		if st.pinging || now.Before(st.due) {
			continue
		}
		select {
		case k.slots <- struct{}{}:
		default:
			return out
		}
		st.pinging, st.due = true, now.Add(k.interval)
		out = append(out, c)
	}
	return out
}

// ping sends one ping and waits for its pong within the interval. An
// unanswered one drops the socket if its reader waited in Read all along;
// if the reader was held up (its queue full while the store is slow), or
// no reader runs yet (a handshake), the pong may just be unread, and the
// next ping tells.
func (k *keepalive) ping(ctx context.Context, c *conn) {
	defer func() { <-k.slots }()
	reads := c.reads.Load()
	pctx, cancel := context.WithTimeout(ctx, k.interval)
	err := c.ping(pctx)
	cancel()
	k.mu.Lock()
	if st := k.conns[c]; st != nil {
		st.pinging = false
	}
	k.mu.Unlock()
	if err == nil {
		return
	}
	if ctx.Err() == nil && pctx.Err() != nil && (reads%2 == 0 || c.reads.Load() != reads) {
		k.unread.Add(1)
		c.log.Debug("cention ping unanswered while the chat's reader was busy; the socket is kept")
		return
	}
	select {
	case <-c.closing:
	default:
		c.log.Warn("cention ping failed, dropping the socket", zap.Error(err))
	}
	c.ws.Close()
}
