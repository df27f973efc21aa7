package slacktest

import (
	"math"
	"time"
)

// Fault is a scripted answer for a Web API method (apps.connections.open
// included). Authentication is checked first: a Fault only hits calls with a
// valid token.
type Fault struct {
	// Status is the HTTP status to answer (429, 500, 503...); 0 answers 200 with
	// {"ok":false,"error":Error}.
	Status int
	// Error is the Slack error code in the body; when empty it is "ratelimited"
	// for 429, "internal_error" for other statuses, and, with Status 0, no error
	// at all: the call then succeeds normally after Delay (a slow answer).
	Error string
	// RetryAfter is sent as Retry-After, in whole seconds rounded up, with 429
	// (at least 1 second: Slack always sends it with 429).
	RetryAfter time.Duration
	// Times is how many calls the fault hits; 0 means every call until
	// ClearFaults.
	Times int
	// AfterApply performs the method's effect first and then answers the fault:
	// the client sees an error, but the post (update, reaction...) exists.
	AfterApply bool
	// Delay waits before answering, after the effect when AfterApply is set (or
	// when the fault is only a delay) and before anything otherwise. Use it to
	// make a client time out. It ends early when the client goes away or the
	// server closes.
	Delay time.Duration
}

// faultState is a Fault being consumed.
type faultState struct {
	f    Fault
	left int // calls left to hit; only counted when f.Times > 0
}

// failure reports whether f answers an error (rather than only delaying).
func (f Fault) failure() bool { return f.Status != 0 || f.Error != "" }

// errorCode is the Slack error f answers.
func (f Fault) errorCode() string {
	switch {
	case f.Error != "":
		return f.Error
	case f.Status == 429:
		return "ratelimited"
	case f.Status != 0:
		return "internal_error"
	}
	return ""
}

// Fail scripts f for the calls of method ("chat.postMessage"...). Faults for the
// same method queue up: the oldest one still having calls left hits first.
func (s *Server) Fail(method string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &faultState{f: f, left: f.Times})
}

// ClearFaults removes every scripted Fault (not rate limits).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*faultState{}
}

// takeFaultLocked consumes one hit of the first fault for method. s.mu must be
// held.
func (s *Server) takeFaultLocked(method string) (Fault, bool) {
	list := s.faults[method]
	if len(list) == 0 {
		return Fault{}, false
	}
	fs := list[0]
	if fs.f.Times > 0 {
		fs.left--
		if fs.left <= 0 {
			s.faults[method] = list[1:]
		}
	}
	return fs.f, true
}

// rateLimit is a token bucket per channel for one method.
type rateLimit struct {
	every   time.Duration // one token per every
	burst   int
	buckets map[string]*bucket // by channel parameter ("" for none)
}

type bucket struct {
	tokens float64
	last   time.Time
}

// SetRateLimit limits method to burst calls at once and one more per every,
// counted separately for each value of the channel parameter (Slack's limits for
// posting are per channel). A call over the limit answers HTTP 429 with
// Retry-After (seconds, rounded up, at least 1) and {"ok":false,"error":
// "ratelimited"}, and has no effect. every 0 removes the limit. A burst below 1
// counts as 1.
func (s *Server) SetRateLimit(method string, every time.Duration, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if every <= 0 {
		delete(s.limits, method)
		return
	}
	s.limits[method] = &rateLimit{every: every, burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// takeTokenLocked spends a token of method's bucket for channel; when none is
// left it returns how long until one is. s.mu must be held.
func (s *Server) takeTokenLocked(method, channel string, now time.Time) (time.Duration, bool) {
	rl := s.limits[method]
	if rl == nil {
		return 0, true
	}
	b := rl.buckets[channel]
	if b == nil {
		b = &bucket{tokens: float64(rl.burst), last: now}
		rl.buckets[channel] = b
	}
	b.tokens = math.Min(float64(rl.burst), b.tokens+float64(now.Sub(b.last))/float64(rl.every))
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(rl.every)), false
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	secs := int64(math.Ceil(d.Seconds()))
	return max(secs, 1)
}

// RevokeAppToken revokes the app-level token, as an admin can while the app
// runs: from now on every call made with it (apps.connections.open) answers
// {"ok":false,"error":"token_revoked"}. Open sockets stay open (Slack does
// not say that it closes them); DropSockets or Refresh make the app ask for
// another. A revoked token is never valid again.
func (s *Server) RevokeAppToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appRevoked = true
}
