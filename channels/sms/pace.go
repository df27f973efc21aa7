package sms

import (
	"context"
	"sync"
	"time"
)

// pacer spaces the channel's creates per sender and per recipient, so that
// Twilio's own queue for a sender stays short and fair, and no pair of
// numbers trips loop protection (14107).
//
// Per sender (a number, or the Messaging Service when it picks): Twilio
// sends a sender's segments at its rate (mps; 1 a second for a US long
// code) and queues the rest first in, first out, so a customer who gets a
// long reply would hold every other customer of that number behind it.
// The pacer instead lets a create go only when Twilio's queue for the
// sender is at most burst segments ahead of now (a virtual scheduling
// clock: tat is when the queue empties). The core sends one message of a
// conversation at a time, so a busy conversation takes its turn again
// after the others waiting: another customer waits at most burst plus one
// message's segments at the sender's rate.
//
// Per pair: more than limit messages between the same two numbers, each
// within window of the one before, make Twilio fail the following ones
// with 14107 for window. The pacer holds the message after limit such
// messages until window (and a margin) has passed since the last.
//
// A 20429 (too many requests) holds the sender's creates for
// rateLimitedWait; a 14107 answered at create holds the pair for window.
//
// State is in memory, per instance: instances sharing a store each pace
// their own sends, so their sum can exceed mps (Twilio queues the excess).
type pacer struct {
	mu      sync.Mutex
	now     func() time.Time
	rate    func(sender string) float64 // segments per second; 0: unpaced
	burst   int
	limit   int
	window  time.Duration
	senders map[string]*senderPace
	pairs   map[pairKey]*pairPace
}

type senderPace struct {
	tat          time.Time // when Twilio's queue for the sender empties, as far as we sent
	blockedUntil time.Time // after a 20429
}

type pairPace struct {
	count        int       // messages in the current chain, each within window of the one before
	last         time.Time // the chain's last message
	blockedUntil time.Time // after a 14107
}

type pairKey struct{ sender, to string }

// maxPaceEntries bounds the pacer's maps; entries whose times have all
// passed are dropped first (see sweep).
const maxPaceEntries = 10000

func newPacer(cfg Config) *pacer {
	return &pacer{
		now: time.Now,
		rate: func(sender string) float64 {
			if r, ok := cfg.SenderMPS[sender]; ok {
				return r
			}
			if cfg.MPS > 0 && tollFree(sender) {
				return max(cfg.MPS, tollFreeMPS)
			}
			return cfg.MPS
		},
		burst: cfg.Burst, limit: cfg.RecipientLimit, window: cfg.RecipientWindow,
		senders: map[string]*senderPace{}, pairs: map[pairKey]*pairPace{},
	}
}

// reservation is one create's slot; undo gives it back when the create is
// not made (the context ended while waiting).
type reservation struct {
	at   time.Time
	undo func()
}

// reserve takes the next slot for a create of segs segments from sender to
// to and returns when it is.
func (p *pacer) reserve(sender, to string, segs int) reservation {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.sweep(now)
	s := p.senders[sender]
	if s == nil {
		s = &senderPace{}
		p.senders[sender] = s
	}
	pr := p.pairs[pairKey{sender, to}]
	if pr == nil {
		pr = &pairPace{}
		p.pairs[pairKey{sender, to}] = pr
	}
	at := later(now, s.blockedUntil, pr.blockedUntil)
	if p.limit > 0 && pr.count >= p.limit && at.Sub(pr.last) < p.window {
		at = pr.last.Add(p.window + p.margin())
	}
	interval := p.interval(sender)
	if interval > 0 {
		tolerance := time.Duration(p.burst-1) * interval
		at = later(at, s.tat.Add(-tolerance))
	}
	oldTat, oldPair := s.tat, *pr
	s.tat = later(s.tat, at).Add(time.Duration(segs) * interval)
	if !pr.last.IsZero() && at.Sub(pr.last) < p.window {
		pr.count++
	} else {
		pr.count = 1
	}
	pr.last = at
	newTat, newPair := s.tat, *pr
	return reservation{at: at, undo: func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if s.tat.Equal(newTat) { // nobody reserved after us
			s.tat = oldTat
		}
		if *pr == newPair {
			*pr = oldPair
		}
	}}
}

// tollFreeMPS is the rate Twilio gives a toll-free number by default.
const tollFreeMPS = 3

// tollFree reports whether number is a North American toll-free number
// (+1 800, 833, 844, 855, 866, 877, 888).
func tollFree(number string) bool {
	if len(number) != 12 || number[:3] != "+18" {
		return false
	}
	switch number[3:5] {
	case "00", "33", "44", "55", "66", "77", "88":
		return true
	}
	return false
}

// interval is how long Twilio takes to send one segment from sender; 0
// when the sender is not paced.
func (p *pacer) interval(sender string) time.Duration {
	r := p.rate(sender)
	if r <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / r)
}

// margin is added to a wait for loop protection: Twilio times a message
// when its create arrives, a little after ours began.
func (p *pacer) margin() time.Duration { return min(time.Second, p.window/10) }

// rateLimited holds every create from sender for d (Twilio said 20429).
func (p *pacer) rateLimited(sender string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.senders[sender]; s != nil {
		s.blockedUntil = later(s.blockedUntil, p.now().Add(d))
	}
}

// pairLimited holds creates from sender to to for the window (Twilio said
// 14107).
func (p *pacer) pairLimited(sender, to string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr := p.pairs[pairKey{sender, to}]; pr != nil {
		pr.blockedUntil = p.now().Add(p.window)
		pr.count, pr.last = 0, time.Time{}
	}
}

// sweep drops entries that no longer hold anything back once the maps are
// large. The caller holds p.mu.
func (p *pacer) sweep(now time.Time) {
	if len(p.senders)+len(p.pairs) < maxPaceEntries {
		return
	}
	for k, s := range p.senders {
		if !s.tat.After(now) && !s.blockedUntil.After(now) {
			delete(p.senders, k)
		}
	}
	for k, pr := range p.pairs {
		if now.Sub(pr.last) >= p.window && !pr.blockedUntil.After(now) {
			delete(p.pairs, k)
		}
	}
}

func later(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// pace waits for the slot of a create of body to d. It returns ctx's error
// (the slot given back) when ctx ends first.
func (c *Channel) pace(ctx context.Context, d destination, body string) error {
	r := c.pacer.reserve(d.paceKey(), d.to, bodySegments(body))
	wait := time.Until(r.at)
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.undo()
		return ctx.Err()
	}
}
