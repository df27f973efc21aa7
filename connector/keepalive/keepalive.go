// Package keepalive pings every WebSocket of a vendor from one goroutine, so
// that an idle chat, which holds a socket of its own, costs no goroutine for
// its pings.
//
// Each socket is pinged once the interval has passed since it was added or
// last pinged, so pings spread over the interval at the pace sockets opened
// instead of coming all at once. A ping without its pong within the interval
// drops the socket, which ends its reader, unless the reader was busy then
// (a pong can only be taken by the reader): the next ping tells.
package keepalive

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// Socket is one connection the keepalive pings.
type Socket interface {
	// Ping sends a ping and waits, within ctx, for its pong, which the
	// socket's reader takes.
	Ping(ctx context.Context) error
	// Reads is bumped as the reader enters and leaves its blocking read:
	// odd while it waits there.
	Reads() uint64
	// Drop closes the network connection at once; the reader then ends.
	Drop()
	// Close drops the socket for good; the keepalive calls it for every
	// socket when its group stops. It is idempotent and safe from any
	// goroutine. The adapter calls Remove once it is done with the socket.
	Close()
	// Closing reports whether Close was called: a failed ping is then no news.
	Closing() bool
	// Logger names the socket's chat.
	Logger() *zap.Logger
}

// MaxPinging bounds the pings awaiting their pong at once, across every
// socket of a Keepalive: each waits on a short-lived goroutine (Ping returns
// only with the pong), so this bounds those goroutines. A healthy socket
// answers within a round trip, so few wait at a time; when the network to
// the vendor dies without a reset, every ping waits the whole interval, and
// this many at a time find their sockets dead: 4096 finds 20,000 in five
// intervals (TCP keepalive, on by default, gives up on them within about 2.5
// minutes too), at a few KB of stack each meanwhile.
const MaxPinging = 4096

// Keepalive pings the sockets added to it until its group stops, and then
// drops every one of them.
type Keepalive struct {
	interval time.Duration
	timeout  time.Duration // for a ping's answer
	group    *connector.Group
	slots    chan struct{} // one per ping awaiting its pong
	// unread counts pings left unanswered while a reader was busy, which
	// drop nothing.
	unread atomic.Int64

	mu      sync.Mutex
	running bool
	closed  bool // the group stopped: every socket was dropped, none is taken
	sockets map[Socket]*pingState
}

// pingState is one socket's place in the schedule. Guarded by Keepalive.mu.
type pingState struct {
	due     time.Time // when the next ping is owed
	pinging bool      // a ping awaits its pong
}

// New returns a keepalive that pings every interval, on goroutines of g,
// and waits for each answer up to the interval.
func New(interval time.Duration, g *connector.Group) *Keepalive {
	return NewTimeout(interval, interval, g)
}

// NewTimeout is New with answers awaited up to timeout.
func NewTimeout(interval, timeout time.Duration, g *connector.Group) *Keepalive {
	return &Keepalive{interval: interval, timeout: timeout, group: g, slots: make(chan struct{}, MaxPinging),
		sockets: map[Socket]*pingState{}}
}

// Add schedules s's pings, starting the ticker with the first socket. It
// reports false once the group is stopping: the caller drops s.
func (k *Keepalive) Add(s Socket) bool {
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
	k.sockets[s] = &pingState{due: time.Now().Add(k.interval)}
	return true
}

// Remove forgets s; a ping of it under way ends with the socket.
func (k *Keepalive) Remove(s Socket) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.sockets, s)
}

// Unread is how many pings went unanswered while their socket's reader was
// busy, and so dropped nothing.
func (k *Keepalive) Unread() int64 { return k.unread.Load() }

// tick is how often the schedule is walked: a ping is at most this late.
func (k *Keepalive) tick() time.Duration {
	return min(max(k.interval/8, 10*time.Millisecond), time.Second)
}

// run walks the schedule until the group stops, and then drops every
// socket: the chats' readers do not watch a context.
func (k *Keepalive) run(ctx context.Context) {
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

// pingDue starts a ping of every socket due at now; false once the group is
// stopping.
func (k *Keepalive) pingDue(now time.Time) bool {
	due := k.due(now)
	for i, s := range due {
		if !k.group.Go(func(ctx context.Context) { k.ping(ctx, s) }) {
			for range due[i:] {
				<-k.slots
			}
			return false
		}
	}
	return true
}

// closeAll drops every socket and refuses new ones.
func (k *Keepalive) closeAll() {
	k.mu.Lock()
	k.closed = true
	sockets := make([]Socket, 0, len(k.sockets))
	for s := range k.sockets {
		sockets = append(sockets, s)
	}
	k.mu.Unlock()
	for _, s := range sockets {
		s.Close() // takes k.mu to remove s
	}
}

// due returns the sockets to ping now, each holding a slot; a socket whose
// turn comes while every slot is taken waits for the next tick.
func (k *Keepalive) due(now time.Time) []Socket {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Socket
	for s, st := range k.sockets {
		if st.pinging || now.Before(st.due) {
			continue
		}
		select {
		case k.slots <- struct{}{}:
		default:
			return out
		}
		st.pinging, st.due = true, now.Add(k.interval)
		out = append(out, s)
	}
	return out
}

// ping sends one ping and waits for its pong within the timeout. An
// unanswered one drops the socket if its reader waited in its read all
// along; if the reader was busy (its queue full while the store is slow),
// or none runs yet (a handshake), the pong may just be unread, and the next
// ping tells.
func (k *Keepalive) ping(ctx context.Context, s Socket) {
	defer func() { <-k.slots }()
	reads := s.Reads()
	pctx, cancel := context.WithTimeout(ctx, k.timeout)
	err := s.Ping(pctx)
	cancel()
	k.mu.Lock()
	if st := k.sockets[s]; st != nil {
		st.pinging = false
	}
	k.mu.Unlock()
	if err == nil {
		return
	}
	if ctx.Err() == nil && pctx.Err() != nil && (reads%2 == 0 || s.Reads() != reads) {
		k.unread.Add(1)
		s.Logger().Debug("ping unanswered while the chat's reader was busy; the socket is kept")
		return
	}
	if !s.Closing() {
		s.Logger().Warn("ping failed, dropping the socket", zap.Error(err))
	}
	s.Drop()
}
