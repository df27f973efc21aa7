package connector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// claimBatch is how many conversations one Claim takes; claiming goes on
// while batches come back full, so a dead instance's conversations are
// spread over the instances that claim at the same time.
const claimBatch = 50

// claimEvery is how often an instance looks for conversations nobody
// serves. With a lease of a few seconds it is what bounds takeover time
// after an instance dies: its lease lapses, then at most claimEvery passes.
const claimEvery = time.Second

// member is this instance's part in a Cluster: it keeps the lease, claims
// the conversations that have no live owner and gives them to the Router,
// passes other instances' wake-ups on, and holds the Singleton vendors'
// roles.
type member struct {
	cl      Cluster
	r       *Router
	log     *zap.Logger
	metrics *Metrics
	roles   map[string]Singleton // by vendor name

	// base and validFor make a monotonic lease clock: the lease is good
	// until base+validFor, counted from when the Renew that made it
	// started, which is before the store computed its expiry.
	base     time.Time
	validFor atomic.Int64
	owned    atomic.Int64  // conversations owned, as last counted
	kick     chan struct{} // buffered 1: claim now
	lost     chan error    // buffered 1: the lease is gone, the daemon stops

	mu      sync.Mutex
	leading map[string]bool
	g       *Group
}

func newMember(cl Cluster, r *Router, log *zap.Logger, m *Metrics, vendors []Vendor) *member {
	roles := map[string]Singleton{}
	for _, v := range vendors {
		if s, ok := v.(Singleton); ok {
			roles[v.Name()] = s
		}
	}
	mb := &member{cl: cl, r: r, log: log.Named("cluster"), metrics: m, roles: roles, base: time.Now(),
		kick: make(chan struct{}, 1), lost: make(chan error, 1), leading: map[string]bool{}}
	r.member = mb
	return mb
}

// join takes the lease and tells every Singleton vendor it does not lead
// yet. It runs before the vendors and the Router start.
func (mb *member) join(ctx context.Context) error {
	start := time.Since(mb.base)
	if err := mb.cl.Join(ctx); err != nil {
		return fmt.Errorf("join as instance %s: %w", mb.cl.Instance(), err)
	}
	mb.extend(start)
	for _, s := range mb.roles {
		s.Lead(ctx, false)
	}
	mb.log.Info("joined", zap.String("instance", mb.cl.Instance()), zap.Duration("lease", mb.cl.LeaseTTL()))
	return nil
}

// start runs the lease, claim, listen and role loops until stop.
func (mb *member) start() {
	mb.g = NewGroup()
	mb.g.Go(mb.renewLoop)
	mb.g.Go(mb.claimLoop)
	mb.g.Go(mb.listenLoop)
	if len(mb.roles) > 0 {
		mb.g.Go(mb.roleLoop)
	}
}

// stop ends the loops and hands every conversation and role back, so that
// the other instances claim them at once instead of after the lease lapses.
// The Router and the vendors have stopped by then: nothing here serves a
// conversation any more.
func (mb *member) stop(ctx context.Context) {
	if mb.g != nil {
		mb.g.Stop(ctx) //nolint:errcheck // a loop that will not stop is cut off by the process exit
	}
	if err := mb.cl.Release(ctx); err != nil {
		mb.log.Warn("hand conversations back; they are claimed when the lease lapses", zap.Error(err))
		return
	}
	mb.log.Info("conversations handed back")
}

// valid reports whether the lease is known to hold now.
func (mb *member) valid() bool { return int64(time.Since(mb.base)) < mb.validFor.Load() }

// extend records a lease renewed by a call that started at start; the
// tenth kept back covers the two clocks running at slightly different rates.
func (mb *member) extend(start time.Duration) {
	mb.validFor.Store(int64(start + mb.cl.LeaseTTL()*9/10))
}

// serves reports whether this instance may work on c now: it owns c and its
// lease holds. errLeaseUnsure is the case where it owns c but cannot tell.
func (mb *member) serves(c *Conversation) (bool, error) {
	if c.Owner != mb.cl.Instance() {
		return false, nil
	}
	if !mb.valid() {
		return false, errLeaseUnsure
	}
	return true, nil
}

// errLeaseUnsure holds a message back while the lease is not confirmed: it
// is retried, and sent once a renewal confirms the lease.
var errLeaseUnsure = errors.New("the instance's lease is not confirmed; waiting for the store")

func (mb *member) renewLoop(ctx context.Context) {
	every := mb.cl.LeaseTTL() / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Since(mb.base)
		rctx, cancel := context.WithTimeout(ctx, every)
		err := mb.cl.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			mb.extend(start)
		case errors.Is(err, ErrLeaseLost):
			mb.log.Error("lease lost: other instances may serve this instance's conversations now; stopping", zap.Error(err))
			select {
			case mb.lost <- err:
			default:
			}
			return
		case ctx.Err() == nil:
			mb.log.Warn("renew lease", zap.Error(err), zap.Bool("still_valid", mb.valid()))
		}
	}
}

func (mb *member) claimLoop(ctx context.Context) {
	tick := time.NewTicker(claimEvery)
	defer tick.Stop()
	for {
		mb.claim(ctx)
		mb.count(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-mb.kick:
		}
	}
}

// claim takes conversations without a live owner while the lease holds,
// batch after batch, and has the Router take each up.
func (mb *member) claim(ctx context.Context) {
	for mb.valid() && ctx.Err() == nil {
		cs, err := mb.cl.Claim(ctx, claimBatch)
		if err != nil {
			if ctx.Err() == nil {
				mb.log.Warn("claim conversations", zap.Error(err))
			}
			return
		}
		if len(cs) > 0 {
			mb.metrics.Claimed.Add(float64(len(cs)))
			mb.log.Info("claimed conversations", zap.Int("count", len(cs)))
			mb.r.Adopt(ctx, cs)
		}
		if len(cs) < claimBatch {
			return
		}
	}
}

// count refreshes the owned count that Health and the metrics show: they
// must not wait for the store.
func (mb *member) count(ctx context.Context) {
	n, err := mb.cl.Owned(ctx)
	if err != nil {
		n = -1
	}
	mb.owned.Store(int64(n))
}

func (mb *member) kickClaim() {
	select {
	case mb.kick <- struct{}{}:
	default:
	}
}

// listenLoop listens for other instances' notices, again after a failure;
// each (re)start sweeps, since notices sent meanwhile were lost.
func (mb *member) listenLoop(ctx context.Context) {
	sweep := func() {
		mb.kickClaim()
		mb.r.sweepOutbox(ctx)
	}
	wake := func(id int64) { mb.r.Wake(ctx, id) }
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		err := mb.cl.Listen(ctx, wake, sweep)
		if ctx.Err() != nil {
			return
		}
		mb.log.Warn("listening for other instances failed; listening again", zap.Error(err), zap.Duration("in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// roleLoop takes and keeps the Singleton vendors' roles, and tells each
// vendor when its role comes or goes. A role is only held with a valid
// lease: an instance that cannot reach the store gives it up.
func (mb *member) roleLoop(ctx context.Context) {
	every := mb.cl.LeaseTTL() / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		for name, s := range mb.roles {
			held := false
			if mb.valid() {
				var err error
				if held, err = mb.cl.Lead(ctx, name); err != nil && ctx.Err() == nil {
					mb.log.Warn("take or renew role", zap.String("role", name), zap.Error(err))
				}
			}
			mb.setLeading(ctx, name, s, held)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (mb *member) setLeading(ctx context.Context, name string, s Singleton, held bool) {
	mb.mu.Lock()
	was := mb.leading[name]
	mb.leading[name] = held
	mb.mu.Unlock()
	if was == held {
		return
	}
	mb.metrics.Leader.WithLabelValues(name).Set(boolGauge(held))
	mb.log.Info("role changed", zap.String("role", name), zap.Bool("leader", held))
	s.Lead(ctx, held)
}

// leads lists the roles this instance holds, sorted.
func (mb *member) leads() []string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []string
	for name, held := range mb.leading {
		if held {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Health is ready while the lease holds; the detail says what this instance
// owns and leads, for /readyz.
func (mb *member) Health() Health {
	owned := fmt.Sprint(mb.owned.Load())
	if owned == "-1" {
		owned = "an unknown number of"
	}
	detail := fmt.Sprintf("instance %s, owns %s conversations", mb.cl.Instance(), owned)
	if l := mb.leads(); len(l) > 0 {
		detail += ", leads " + strings.Join(l, ", ")
	}
	if !mb.valid() {
		return Health{Ready: false, Detail: detail + "; lease not confirmed"}
	}
	return Health{Ready: true, Detail: detail}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
