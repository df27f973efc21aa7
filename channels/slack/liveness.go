package slack

import (
	"fmt"
	"sync"
	"time"
)

// liveness is the rule that takes a Socket Mode connection for dead, kept
// apart from the socket so that it can be tested with a made-up clock. Two
// signals, either enough:
//
//   - silence: nothing at all from Slack (a frame, a ping of its own, a pong
//     to ours) for the silence timeout. Slack pings about every 10 s, so a
//     live socket is never quiet that long; a half-open TCP connection, or
//     Slack's end gone quiet, is.
//   - a missing pong: we ping every half silence timeout and wait as long
//     for the pong, which also shows that what we write (acks) reaches
//     Slack while Slack's own pings keep coming.
//
// Either way a dead socket is known at most one silence timeout after it
// stopped: after the last thing Slack sent, or after the pong that did not
// come was due (the ping before it was answered at most half a timeout
// earlier). While paused (the reader not reading on purpose because the
// store is behind) neither signal applies; resuming starts afresh.
//
// Every method takes the time from its caller. It is safe for concurrent
// use: the reader notes frames, pings and pongs while the watcher checks.
type liveness struct {
	mu      sync.Mutex
	silence time.Duration
	heard   time.Time // the last frame, ping or pong from Slack
	pinged  time.Time // our last ping (the start, before the first)
	pending bool      // that ping's pong has not come
	paused  bool
}

// verdict is what check asks of the socket's watcher.
type verdict int

const (
	keep verdict = iota // nothing to do before the next check
	ping                // send a ping now; check recorded it as sent
	dead                // the socket is dead; replace it
)

// newLiveness starts the rule for a socket opened at now.
func newLiveness(silence time.Duration, now time.Time) *liveness {
	return &liveness{silence: silence, heard: now, pinged: now}
}

// heardAt notes a frame or a ping from Slack.
func (l *liveness) heardAt(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.heard) {
		l.heard = now
	}
}

// pongAt notes the pong to our ping.
func (l *liveness) pongAt(now time.Time) {
	l.mu.Lock()
	l.pending = false
	l.mu.Unlock()
	l.heardAt(now)
}

// pause suspends both signals.
func (l *liveness) pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused = true
}

// resume restarts both signals at now, as for a socket just opened.
func (l *liveness) resume(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused, l.pending = false, false
	l.heard, l.pinged = now, now
}

// check applies the rule at now. It returns what to do, why when the
// verdict is dead, and when to check next.
func (l *liveness) check(now time.Time) (v verdict, why string, next time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	half := l.silence / 2
	switch {
	case l.paused:
		return keep, "", now.Add(half)
	case l.pending && now.Sub(l.pinged) >= half:
		// On schedule this comes first even on a silent socket: the ping
		// went out at most half a timeout after the last pong.
		return dead, fmt.Sprintf("ping unanswered for %s; the last frame or ping from Slack came %s ago",
			half, now.Sub(l.heard).Round(time.Millisecond)), time.Time{}
	case now.Sub(l.heard) >= l.silence:
		return dead, fmt.Sprintf("no frame and no ping from Slack for %s", l.silence), time.Time{}
	case !l.pending && now.Sub(l.pinged) >= half:
		l.pinged, l.pending = now, true
		v = ping
	}
	next = l.heard.Add(l.silence)
	if due := l.pinged.Add(half); due.Before(next) {
		next = due
	}
	return v, "", next
}
