package xima

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// keepalive sends every live chat's POST /chat/still-here from one loop:
// each chat is due interval plus a random part of jitter after its last
// one (so a thousand chats opened together spread out), and again after
// retry when a send failed. Sends run on at most maxSenders goroutines at a
// time: a slow server delays the loop's next sends, never piles them up.
type keepalive struct {
	interval, jitter, retry time.Duration
	// send posts one still-here; an error schedules the retry.
	send func(ctx context.Context, c *chat) error
	// spawn runs f on a goroutine the owner's Stop waits for, with a
	// context Stop ends; false once stopped.
	spawn func(f func(ctx context.Context)) bool

	mu   sync.Mutex
	due  map[*chat]time.Time
	wake chan struct{}
	sem  chan struct{}
}

// maxSenders bounds the still-here calls in flight at once.
const maxSenders = 32

func newKeepalive(interval, jitter time.Duration, send func(context.Context, *chat) error, spawn func(func(context.Context)) bool) *keepalive {
	return &keepalive{interval: interval, jitter: jitter, retry: min(2*time.Second, max(interval/4, time.Millisecond)),
		send: send, spawn: spawn, due: map[*chat]time.Time{}, wake: make(chan struct{}, 1), sem: make(chan struct{}, maxSenders)}
}

// add schedules c's first still-here at at (now, after a restart).
func (k *keepalive) add(c *chat, at time.Time) {
	k.mu.Lock()
	k.due[c] = at
	k.mu.Unlock()
	k.poke()
}

// next is when a chat is due after a still-here sent now.
func (k *keepalive) next(now time.Time) time.Time {
	d := k.interval
	if k.jitter > 0 {
		d += rand.N(k.jitter + 1)
	}
	return now.Add(d)
}

// remove stops c's still-heres.
func (k *keepalive) remove(c *chat) {
	k.mu.Lock()
	delete(k.due, c)
	k.mu.Unlock()
}

// count is the number of chats kept alive.
func (k *keepalive) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.due)
}

func (k *keepalive) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// run is the loop; it returns when ctx is done.
func (k *keepalive) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		for _, c := range k.takeDue(time.Now()) {
			select {
			case k.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if !k.spawn(func(ctx context.Context) { defer func() { <-k.sem }(); k.sendOne(ctx, c) }) {
				return
			}
		}
		t.Reset(k.wait(time.Now()))
		select {
		case <-ctx.Done():
			return
		case <-k.wake: // Reset above works on a fired timer too (Go 1.23 timers)
		case <-t.C:
		}
	}
}

// takeDue returns the chats due at now and schedules their next still-here.
func (k *keepalive) takeDue(now time.Time) []*chat {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*chat
	for c, at := range k.due {
		if !at.After(now) {
			out = append(out, c)
			k.due[c] = k.next(now)
		}
	}
	return out
}

// wait is the time until the next chat is due (an hour with none).
func (k *keepalive) wait(now time.Time) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := time.Hour
	for _, at := range k.due {
		d = min(d, at.Sub(now))
	}
	return max(d, 0)
}

func (k *keepalive) sendOne(ctx context.Context, c *chat) {
	if k.send(ctx, c) == nil || ctx.Err() != nil {
		return
	}
	k.mu.Lock()
	if _, live := k.due[c]; live {
		k.due[c] = time.Now().Add(k.retry)
	}
	k.mu.Unlock()
	k.poke()
}
