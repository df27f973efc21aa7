package connector

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Router is the core loop. It commits what channels and vendors hand it, and
// moves the outbox: one ordered lane per conversation and direction, so the
// messages of a conversation never overtake each other, conversations never
// wait for each other, and a slow vendor does not hold up agent lines going
// to the customer.
type Router struct {
	store   Store
	log     *zap.Logger
	metrics *Metrics
	// live holds what a reload may change (Reconfigure); read it through
	// settings, once per decision.
	live atomic.Pointer[routerSettings]

	channels map[string]Channel
	vendors  map[string]Vendor

	// convLocks serialise the read-modify-write of one conversation's state
	// between vendor events (the vendor's goroutine) and its lanes (opening,
	// ending): the state a change is computed from must still hold when it
	// is applied.
	convLocks [64]sync.Mutex

	lanes *Lanes[laneKey]

	mu sync.Mutex
	// queued holds the ids of messages on a lane (queued, in flight or
	// waiting to retry): enqueuing one again does nothing, so a caller that
	// retries a commit, or the outbox sweep, cannot send a message twice.
	queued map[queuedKey]bool
	// recovered holds the ids of messages that were in the outbox at start
	// and not yet tried: their crash count is checked first (poison.go).
	recovered map[int64]bool
	// sent holds the last messages this process sent (recent.go): one
	// handed to a lane again goes to its adapter as Recovered.
	sent     *recentIDs
	limiters map[int64]*rate.Limiter // per conversation, to the customer
	toldBusy map[int64]bool          // held by the channel's cap, customer told
	// carried holds the conversations whose vendor chat this process has
	// resumed or opened: a chat stored by another process (an earlier run,
	// or an instance that died) is resumed before anything else is sent
	// on it, whichever path queued the message (carry.go).
	carried map[int64]bool
	// deferrals counts, by message, how often a message let older lines
	// of its conversation go first (order.go).
	deferrals map[int64]int
	stopping  bool
	stopCh    chan struct{} // closed by Stop: no new attempts, no more waiting
	runCtx    context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // housekeeping

	// member is this instance's part in a Cluster; nil when it is the only
	// instance on its store.
	member *member

	// resumes counts the stored vendor sessions Start scheduled to resume
	// and those not yet resumed or given up on (Resuming).
	resumes struct{ total, left atomic.Int64 }
	// resumeSlots bounds, per vendor, the resumes at start that run at
	// once: thousands of chats reconnecting together would only make the
	// vendor's server (and this process) thrash, and each waits its turn on
	// its own lane. Per vendor, so that one vendor down, whose resumes
	// retry, holds up no other's. Filled by Start, read-only after.
	resumeSlots map[string]chan struct{}

	heartbeat atomic.Int64 // unix nanos of the housekeeping loop's last turn
	started   time.Time    // set by Start
}

var (
	_ ChannelSink        = (*Router)(nil)
	_ EventSink          = (*Router)(nil)
	_ ConversationLister = (*Router)(nil)
)

// laneKey is a lane: to an agent, one per conversation; to a customer, one
// per customer address, so that what one customer is sent never overtakes
// itself even across conversations (an end notice, then the next chat's).
type laneKey struct {
	conv int64
	addr string // channel and customer, for lanes to customers
	dir  Direction
}

// laneOf returns m's lane; c is its conversation, nil to read it.
func (r *Router) laneOf(c *Conversation, m *Message) laneKey {
	if m.Direction == ToAgent {
		return laneKey{conv: m.ConversationID, dir: ToAgent}
	}
	if c == nil || c.ID != m.ConversationID {
		var err error
		if c, err = r.store.Conversation(r.runCtx, m.ConversationID); err != nil {
			return laneKey{conv: m.ConversationID, dir: ToCustomer} // it still goes, unordered with the next chat
		}
	}
	return laneKey{addr: c.Channel + "\x00" + c.Customer, dir: ToCustomer}
}

// RouterConfig is what NewRouter needs.
type RouterConfig struct {
	Store        Store
	Logger       *zap.Logger
	Conversation ConversationConfig
	Notices      Notices
	// VendorFor names the vendor a new conversation on a channel goes to.
	VendorFor func(channel string) (string, bool)
	Metrics   *Metrics
}

// NewRouter makes a Router. Add adapters with AddChannel and AddVendor before Start.
func NewRouter(rc RouterConfig) (*Router, error) {
	ts, errs := rc.Notices.compile()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if rc.Metrics == nil {
		rc.Metrics = NewMetrics()
	}
	r := &Router{
		store: rc.Store, log: rc.Logger, metrics: rc.Metrics,
		channels: map[string]Channel{}, vendors: map[string]Vendor{},
		stopCh: make(chan struct{}), queued: map[queuedKey]bool{},
		recovered: map[int64]bool{}, limiters: map[int64]*rate.Limiter{}, toldBusy: map[int64]bool{}, carried: map[int64]bool{}, deferrals: map[int64]int{},
		lanes: NewLanes(LanesOptions[laneKey]{}), sent: newRecentIDs(maxSentRemembered),
	}
	r.live.Store(&routerSettings{cfg: rc.Conversation, notices: ts, vendorOf: rc.VendorFor})
	return r, nil
}

// routerSettings are the Router's settings that a reload may replace.
type routerSettings struct {
	cfg      ConversationConfig
	notices  noticeSet
	vendorOf func(channel string) (string, bool)
}

func (r *Router) settings() *routerSettings { return r.live.Load() }

// Reconfigure replaces, for what happens from now on, the conversation
// timing, the customer notices and the routes of new conversations. Work in
// hand finishes as it began; connections are not touched.
func (r *Router) Reconfigure(cc ConversationConfig, n Notices, vendorFor func(channel string) (string, bool)) error {
	ts, errs := n.compile()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.live.Store(&routerSettings{cfg: cc, notices: ts, vendorOf: vendorFor})
	return nil
}

// AddChannel registers a channel the Router delivers to.
func (r *Router) AddChannel(c Channel) { r.channels[c.Name()] = c }

// AddVendor registers a vendor the Router opens conversations with.
func (r *Router) AddVendor(v Vendor) { r.vendors[v.Name()] = v }

// Start loads the outbox and the open conversations, resumes vendor sessions
// and starts the housekeeping loop. It returns once the work is scheduled.
func (r *Router) Start(ctx context.Context) error {
	r.mu.Lock()
	r.runCtx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.started = time.Now()
	r.mu.Unlock()
	open, err := r.store.OpenConversations(ctx)
	if err != nil {
		return fmt.Errorf("load open conversations: %w", err)
	}
	r.resumeSlots = make(map[string]chan struct{}, len(r.vendors))
	for name := range r.vendors {
		r.resumeSlots[name] = make(chan struct{}, maxResumesAtOnce)
	}
	for _, c := range open {
		if len(c.Session) > 0 && c.State != StatePending {
			if _, ok := r.vendors[c.Vendor].(Resumer); ok {
				r.resumes.total.Add(1)
				r.resumes.left.Add(1)
				r.lanes.Go(laneKey{conv: c.ID, dir: ToAgent}, 0, func() {
					defer r.resumes.left.Add(-1)
					slots := r.resumeSlots[c.Vendor]
					if !r.takeResumeSlot(slots) {
						return // stopping: still stored, the next start resumes it
					}
					defer func() { <-slots }()
					r.resume(r.runCtx, c.ID)
				})
			}
		}
	}
	pending, err := r.store.Outbox(ctx)
	if err != nil {
		return fmt.Errorf("load outbox: %w", err)
	}
	r.mu.Lock()
	for _, m := range pending {
		r.recovered[m.ID] = true
	}
	r.mu.Unlock()
	for _, m := range pending {
		r.requeue(nil, m)
	}
	r.heartbeat.Store(time.Now().UnixNano())
	r.wg.Add(1)
	go r.housekeeping()
	r.log.Info("router started", zap.Int("open_conversations", len(open)), zap.Int("outbox", len(pending)))
	return nil
}

// Stop lets every lane finish the message in hand, waiting at most until ctx
// is done, then cancels the rest; unfinished messages stay in the outbox.
func (r *Router) Stop(ctx context.Context) {
	r.mu.Lock()
	if !r.stopping {
		r.stopping = true
		close(r.stopCh)
	}
	cancel := r.cancel
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	r.lanes.Close()
	done := make(chan struct{})
	go func() { r.lanes.Wait(); r.wg.Wait(); close(done) }()
	select {
	case <-done:
		cancel()
	case <-ctx.Done():
		cancel()
		<-done
	}
}

// Alive reports when the housekeeping loop last turned; the watchdog uses it
// as proof of progress.
func (r *Router) Alive() time.Time { return time.Unix(0, r.heartbeat.Load()) }

func (r *Router) convLock(id int64) *sync.Mutex {
	return &r.convLocks[uint64(id)%uint64(len(r.convLocks))]
}

// Receive implements InboundSink.
func (r *Router) Receive(ctx context.Context, in Inbound) (err error) {
	defer r.recoverAsError("receive", &err)
	vendor, ok := r.settings().vendorOf(in.Channel)
	if !ok {
		return Permanent(fmt.Errorf("no route for channel %s", in.Channel))
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Now()
	}
	if in.End {
		return r.endByCustomer(ctx, in)
	}
	res, err := r.store.RecordInbound(ctx, in, vendor)
	if err != nil {
		return fmt.Errorf("record inbound: %w", err)
	}
	if res.Duplicate {
		r.metrics.Duplicates.WithLabelValues(in.Channel).Inc()
		if res.Message != nil && res.Message.State.Pending() && r.queuesHere(ctx, res.Conversation) {
			// An earlier delivery may have committed after its caller gave up,
			// so that it was never queued.
			r.requeue(res.Conversation, res.Message)
		}
		return nil
	}
	r.metrics.MessagesIn.WithLabelValues(in.Channel).Inc()
	if res.Created {
		r.convLog(res.Conversation).Info("conversation started")
	}
	if res.Created && in.Continues {
		// Before the message is queued: the lane that opens the conversation
		// adds the "queued" notice, which must come after this one.
		r.tellNew(ctx, res.Conversation)
	}
	if r.queuesHere(ctx, res.Conversation) { // else its owner was woken by the commit
		r.enqueue(res.Conversation, res.Message)
	}
	return nil
}

// queuesHere reports whether messages just committed in c go on this
// instance's lanes: c is not another instance's, as the commit read it, or
// this instance claimed it meanwhile. A claim that committed between that
// read and the messages' commit would otherwise leave them to the outbox
// sweep: the commit woke the old owner, and the claim's own reading of what
// waits came before them. Read again after the commit, either the claim is
// ours here already, or it comes later and its reading finds them.
func (r *Router) queuesHere(ctx context.Context, c *Conversation) bool {
	if !r.ownedElsewhere(c) {
		return true
	}
	now, err := r.store.Conversation(ctx, c.ID)
	return err == nil && !r.ownedElsewhere(now)
}

// endByCustomer ends the customer's open conversation because they asked to.
func (r *Router) endByCustomer(ctx context.Context, in Inbound) error {
	c, err := r.store.FindOpen(ctx, in.Channel, in.Customer)
	if errors.Is(err, ErrNotFound) {
		r.log.Info("end requested with no open conversation", zap.String("channel", in.Channel))
		return nil
	}
	if err != nil {
		return fmt.Errorf("find conversation to end: %w", err)
	}
	mu := r.convLock(c.ID)
	mu.Lock()
	defer mu.Unlock()
	// The lines they wrote before asking still go to the agent, ahead of the
	// end request on the lane; a conversation never opened has nobody to
	// take them.
	ch := Change{ConversationID: c.ID, State: StateEnded, EndReason: "customer", RequireOpen: true}
	if in.OptedOut {
		ch.EndReason = "customer opted out"
	}
	// The vendor's KindEnd carries the request's source id, so a repeated
	// request (same id) finds the conversation already ended and changes
	// nothing. A pending conversation was never opened at the vendor.
	switch {
	case c.State == StatePending:
		ch.FailPending = "conversation ended"
	case in.OptedOut:
		// The agent reads why, then the vendor hears of the end; the
		// customer, who may not be messaged any more, reads nothing.
		ch.Messages = []*Message{r.agentNotice(c, "opted_out_agent", in.SourceID+"/opted-out"),
			{Direction: ToAgent, Kind: KindEnd, Text: ch.EndReason, SourceID: in.SourceID}}
	default:
		ch.Messages = []*Message{{Direction: ToAgent, Kind: KindEnd, Text: "customer", SourceID: in.SourceID}}
	}
	if !in.OptedOut {
		ch.Messages = append(ch.Messages, r.notice(c, "ended_by_customer", NoticeData{Reason: "customer"})...)
	}
	res, err := r.store.Apply(ctx, ch)
	if err != nil {
		return fmt.Errorf("end conversation: %w", err)
	}
	if !res.Skipped {
		r.convLog(c).Info("conversation ended by customer")
	}
	if r.queuesHere(ctx, res.Conversation) {
		r.enqueueAll(res.Conversation, res.Added)
	}
	return nil
}

// tellNew tells a customer who wrote where an ended conversation lived that
// this is a new one. It is only a notice: a failure is logged, not returned,
// since the message itself is committed.
func (r *Router) tellNew(ctx context.Context, c *Conversation) {
	ms := r.notice(c, "new_conversation", NoticeData{})
	if len(ms) == 0 {
		return
	}
	res, err := r.store.Apply(ctx, Change{ConversationID: c.ID, Messages: ms, RequireOpen: true})
	if err != nil {
		r.convLog(c).Error("record new-conversation notice", zap.Error(err))
		return
	}
	r.enqueueAll(res.Conversation, res.Added)
}

// OpenCustomers implements ConversationLister.
func (r *Router) OpenCustomers(ctx context.Context, channel string) ([]CustomerCursor, error) {
	return r.store.OpenCursors(ctx, channel)
}

// NewestSourceID implements ConversationLister.
func (r *Router) NewestSourceID(ctx context.Context, channel, prefix string) (string, error) {
	return r.store.NewestSourceID(ctx, channel, prefix)
}

// DeliveryStatus implements StatusSink.
func (r *Router) DeliveryStatus(ctx context.Context, channel, remoteID string, state Delivery, reason string) error {
	found, err := r.store.UpdateDelivery(ctx, channel, remoteID, state, reason)
	if err != nil {
		return fmt.Errorf("update delivery: %w", err)
	}
	if !found {
		r.log.Debug("status for unknown message", zap.String("channel", channel), zap.String("remote_id", remoteID))
	}
	return nil
}

// enqueue puts a message just committed on its lane, unless that lane holds
// it already; it reports whether it queued it. c is m's conversation when
// the caller has it (nil: read when needed).
func (r *Router) enqueue(c *Conversation, m *Message) bool { return r.queue(c, m, false) }

// requeue is enqueue for a message read earlier (the outbox, a duplicate's
// record): its lane may have settled it since, so each attempt reads it
// again first.
func (r *Router) requeue(c *Conversation, m *Message) bool { return r.queue(c, m, true) }

func (r *Router) queue(c *Conversation, m *Message, stale bool) bool {
	if r.isQueued(m) {
		return false
	}
	k := r.laneOf(c, m)
	r.mu.Lock()
	defer r.mu.Unlock()
	q := queuedKey{m.ID, m.ConversationID}
	if r.stopping || r.queued[q] {
		return false // stopping: it stays in the outbox for the next start
	}
	r.queued[q] = true
	r.lanes.Go(k, 0, func() {
		again := false
		defer func() {
			r.dequeued(q)
			if again { // behind the older lines it queued first
				r.requeue(c, m)
			}
		}()
		again = r.deliver(r.runCtx, m, stale)
	})
	return true
}

func (r *Router) isQueued(m *Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queued[queuedKey{m.ID, m.ConversationID}]
}

// queuedKey names a message on a lane. A message moved to the customer's
// next conversation is queued there too while its old lane may still hold
// it (that one finds it gone and drops it).
type queuedKey struct{ id, conv int64 }

func (r *Router) dequeued(k queuedKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.queued, k)
}

// Resuming reports how many stored vendor sessions Start scheduled to
// resume, and how many of them have neither resumed nor been given up on
// (reopened, ended, or left to a stop). Readiness waits for the second to
// reach zero: until then agents' lines on those chats are not heard.
func (r *Router) Resuming() (left, total int64) { return r.resumes.left.Load(), r.resumes.total.Load() }

// scheduleResume runs the vendor's Resume on the conversation's lane to the
// agent, ahead of anything queued after it (Start resumes the same way).
func (r *Router) scheduleResume(conv int64) {
	r.lanes.Go(laneKey{conv: conv, dir: ToAgent}, 0, func() { r.resume(r.runCtx, conv) })
}

// WaitIdle returns once the Router has nothing queued, in flight or waiting
// to retry, or with ctx's error. Tests and tools use it instead of sleeping
// to see that nothing more happens.
func (r *Router) WaitIdle(ctx context.Context) error { return r.lanes.WaitIdle(ctx) }

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// deliver moves one message to its destination, retrying until it is sent,
// fails permanently, or the Router stops (then it stays stored). It reports
// that m must go again behind older lines of its conversation, which it
// queued (see behindOlder).
func (r *Router) deliver(ctx context.Context, m *Message, stale bool) (again bool) {
	recovered, admitted := r.takeRecovered(m.ID), false
	panics := 0
	for attempt := 0; ; attempt++ {
		cur, conv, err := r.current(ctx, m, stale)
		if err == nil && cur == nil {
			return false // settled meanwhile, or moved to another conversation's lane
		}
		if err == nil && !admitted {
			admitted = true
			if r.behindOlder(ctx, cur) {
				if recovered {
					r.markRecovered(m.ID) // its poison check comes when it goes again
				}
				return true
			}
			if recovered && !r.admit(ctx, cur) {
				return false
			}
			if recovered {
				defer r.settleAttempts(m)
			}
		}
		if err == nil {
			m = cur
			err = r.safeAttempt(ctx, conv, withRecovered(m, recovered || r.sent.has(m.ID)))
		}
		if err == nil || ctx.Err() != nil || errors.Is(err, errStopping) {
			return
		}
		if errors.Is(err, ErrChatLost) {
			if err = r.lost(ctx, m.ConversationID, conv.Session, RedactError(err)); err == nil {
				continue // at once: the next attempt opens the new chat
			}
		}
		if errors.Is(err, errPanicked) {
			if panics++; panics >= poisonLimit {
				r.poisoned(ctx, m, fmt.Sprintf("sending it panicked %d times", panics))
				return
			}
		}
		if IsPermanent(err) || time.Since(m.CreatedAt) > r.settings().cfg.GiveUpAfter {
			r.giveUp(ctx, conv, m, err)
			return
		}
		delay := r.backoff(attempt, err)
		r.noteRetry(conv, m, err, delay)
		select {
		case <-ctx.Done():
			return
		case <-r.stopCh:
			return // still stored: the next start sends it
		case <-time.After(delay):
		}
	}
}

// withRecovered returns m, or a copy of it marked Recovered: the caller's
// message may be read by others meanwhile.
func withRecovered(m *Message, recovered bool) *Message {
	if !recovered {
		return m
	}
	c := *m
	c.Recovered = true
	return &c
}

// current reads m's conversation and, where m may have been settled by
// another path, m itself as it stands now; a nil message and error mean m
// no longer waits here (sent, failed, moved to the customer's next
// conversation, whose lane has it, or in a conversation another instance
// serves). m is read again when it is stale (read before this job was
// queued: its earlier job may have sent it since), a context line
// (sendContext sends it ahead of the line in hand) or in a conversation
// that ended (its lines move, are left or fail only then).
//
// With several instances, this is the check before every attempt that
// keeps an instance from sending for a conversation it no longer owns, or
// while its lease is not confirmed (then it retries).
func (r *Router) current(ctx context.Context, m *Message, stale bool) (*Message, *Conversation, error) {
	c, err := r.store.Conversation(ctx, m.ConversationID)
	if err != nil {
		return nil, nil, err
	}
	if ok, err := r.serves(c); !ok {
		return nil, nil, err // another instance's, or wait for the lease
	}
	if c.Open() && m.Kind != KindContext && !stale {
		return m, c, nil
	}
	cur, err := r.store.Message(ctx, m.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !cur.State.Pending() || cur.ConversationID != m.ConversationID {
		return nil, nil, nil
	}
	return cur, c, nil
}

// noteRetry counts and logs a failed attempt; a conversation held by its
// channel's cap is waiting, not failing.
func (r *Router) noteRetry(c *Conversation, m *Message, err error, delay time.Duration) {
	log := r.log.With(zap.Int64("conversation", m.ConversationID), zap.Int64("message", m.ID), zap.Duration("in", delay))
	var capErr errAtCapacity
	if errors.As(err, &capErr) {
		log.Debug("waiting for a free conversation slot", zap.Error(err))
		return
	}
	r.metrics.Retries.WithLabelValues(r.adapterOf(c, m)).Inc()
	log.Warn("delivery failed, will retry", zap.Error(err))
}

// poisoned fails a message whose send keeps crashing. Only that message:
// the conversation goes on, and the lines after it are sent.
func (r *Router) poisoned(ctx context.Context, m *Message, reason string) {
	adapter := "unknown"
	if c, err := r.store.Conversation(ctx, m.ConversationID); err == nil {
		adapter = r.adapterOf(c, m)
	}
	r.metrics.Poisoned.WithLabelValues(adapter).Inc()
	r.metrics.Failures.WithLabelValues(adapter).Inc()
	r.log.Error("poison message failed", zap.Int64("conversation", m.ConversationID),
		zap.Int64("message", m.ID), zap.String("reason", reason))
	if err := r.markFailed(ctx, m, "poison message: "+reason); err != nil {
		r.log.Error("record failure", zap.Int64("message", m.ID), zap.Error(err))
	}
}

// backoff is exponential with full jitter, at least what the remote side asked for.
func (r *Router) backoff(attempt int, err error) time.Duration {
	d := r.settings().cfg.RetryInitial << min(attempt, 20)
	if d > r.settings().cfg.RetryMax || d <= 0 {
		d = r.settings().cfg.RetryMax
	}
	d = d/2 + rand.N(d/2+1)
	if after, ok := RetryDelay(err); ok && after > d {
		d = after
	}
	return d
}

func (r *Router) adapterOf(c *Conversation, m *Message) string {
	switch {
	case c == nil:
		return "unknown"
	case m.Direction == ToAgent:
		return c.Vendor
	default:
		return c.Channel
	}
}

func (r *Router) convLog(c *Conversation) *zap.Logger {
	return r.log.With(zap.Int64("conversation", c.ID), zap.String("channel", c.Channel), zap.String("vendor", c.Vendor))
}

// housekeeping ends idle conversations and proves progress for the watchdog.
func (r *Router) housekeeping() {
	defer r.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sweepEvery := min(max(r.settings().cfg.InactivityTimeout/10, time.Second), 30*time.Second)
	lastSweep, lastOutbox := time.Now(), time.Now()
	for {
		select {
		case <-r.stopCh:
			return
		case now := <-tick.C:
			r.heartbeat.Store(now.UnixNano())
			if now.Sub(lastSweep) >= sweepEvery {
				lastSweep = now
				r.sweepIdle(r.runCtx, now)
				r.dropIdleLimiters(now)
			}
			if now.Sub(lastOutbox) >= r.settings().cfg.OutboxSweep {
				lastOutbox = now
				r.sweepOutbox(r.runCtx)
			}
		}
	}
}

// sweepOutbox queues every waiting message that no lane holds: the safety
// net for a commit that went through after its caller gave up (a webhook's
// deadline inside a group commit), or that raced a claim, which nobody
// queued. Under load many messages have just been committed and their
// callers are about to queue them: finding one of those is no news, and is
// logged as such only once it is older than a sweep.
func (r *Router) sweepOutbox(ctx context.Context) {
	pending, err := r.store.Outbox(ctx)
	if err != nil {
		r.log.Error("outbox sweep", zap.Error(err))
		return
	}
	settled := time.Now().Add(-r.settings().cfg.OutboxSweep)
	for _, m := range pending {
		if !r.requeue(nil, m) {
			continue
		}
		log := r.log.Debug
		if m.CreatedAt.Before(settled) {
			log = r.log.Warn
		}
		log("outbox sweep queued a message nobody held", zap.Int64("conversation", m.ConversationID), zap.Int64("message", m.ID))
	}
}

func (r *Router) sweepIdle(ctx context.Context, now time.Time) {
	open, err := r.store.OpenConversations(ctx)
	if err != nil {
		r.log.Error("inactivity sweep", zap.Error(err))
		return
	}
	r.forgetCarried(open)
	for _, c := range open {
		// A customer waiting for an agent is not timed out on their own
		// silence: pending and queued conversations wait for the vendor.
		if c.State == StatePending || c.State == StateQueued || now.Sub(c.LastActivity) < r.settings().cfg.InactivityTimeout {
			continue
		}
		if err := r.end(ctx, c, "timeout", "ended_timeout", true); err != nil {
			r.convLog(c).Error("end idle conversation", zap.Error(err))
		}
	}
}

// serves reports whether this instance works on c now: always when it is
// the only instance; with several, when it owns c and its lease holds. An
// error says it owns c but cannot confirm its lease yet: try again later.
func (r *Router) serves(c *Conversation) (bool, error) {
	if r.member == nil {
		return true, nil
	}
	return r.member.serves(c)
}

// ownedElsewhere reports whether another instance owns c: its work is that
// instance's, which the store's commit woke.
func (r *Router) ownedElsewhere(c *Conversation) bool {
	return r.member != nil && c != nil && c.Owner != r.member.cl.Instance()
}

// Adopt takes up conversations this instance has just claimed from an
// instance that died or stopped, as Start does for its own: it resumes
// their vendor sessions and queues what waits in them. A message whose
// reading fails here is queued by the next outbox sweep.
func (r *Router) Adopt(ctx context.Context, cs []*Conversation) {
	for _, c := range cs {
		if c.Open() && len(c.Session) > 0 && c.State != StatePending {
			if _, ok := r.vendors[c.Vendor].(Resumer); ok {
				r.scheduleResume(c.ID)
			}
		}
		ms, err := r.store.Messages(ctx, c.ID)
		if err != nil {
			r.convLog(c).Warn("read a claimed conversation's messages", zap.Error(err))
			continue
		}
		for _, m := range ms {
			if !m.State.Pending() {
				continue
			}
			// Its send may be what killed the last owner: count it as
			// poison checks count what a restart finds.
			r.mu.Lock()
			r.recovered[m.ID] = true
			r.mu.Unlock()
			r.requeue(c, m)
		}
	}
}

// Wake queues what waits in a conversation of this instance's that another
// instance stored a message in.
func (r *Router) Wake(ctx context.Context, id int64) {
	ms, err := r.store.Messages(ctx, id)
	if err != nil {
		r.log.Warn("read a woken conversation's messages; the outbox sweep queues them", zap.Int64("conversation", id), zap.Error(err))
		return
	}
	for _, m := range ms {
		if m.State.Pending() {
			r.requeue(nil, m)
		}
	}
}

// agentNotice is a notice for the agent: a line to the agent in the
// customer's stead, which the vendor relays as it relays the customer's.
func (r *Router) agentNotice(c *Conversation, key, sourceID string) *Message {
	text, err := r.settings().notices.render(key, NoticeData{})
	if err != nil {
		r.convLog(c).Error("render agent notice", zap.String("notice", key), zap.Error(err))
		text = key
	}
	return &Message{Direction: ToAgent, Kind: KindText, Text: text, SourceID: sourceID}
}

var _ OptOuts = (*Router)(nil)

// SetOptOut implements OptOuts, in the store.
func (r *Router) SetOptOut(ctx context.Context, channel, sender, customer string, out bool) error {
	return r.store.SetOptOut(ctx, channel, sender, customer, out)
}

// OptedOut implements OptOuts, from the store.
func (r *Router) OptedOut(ctx context.Context, channel, sender, customer string) (bool, error) {
	return r.store.OptedOut(ctx, channel, sender, customer)
}

var _ Receipts = (*Router)(nil)

// LastReceived implements Receipts, from the store.
func (r *Router) LastReceived(ctx context.Context, channel string) (string, time.Time, error) {
	return r.store.LastReceived(ctx, channel)
}

// startedFor is how long ago Start ran; 0 before.
func (r *Router) startedFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started.IsZero() {
		return 0
	}
	return time.Since(r.started)
}

// maxResumesAtOnce is how many stored sessions of one vendor a start
// resumes at once (resumeSlots).
const maxResumesAtOnce = 128

// takeResumeSlot waits for one of slots; false when the Router stops first.
func (r *Router) takeResumeSlot(slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-r.stopCh:
		return false
	}
}
