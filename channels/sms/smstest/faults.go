package smstest

import "time"

// failure is a scripted error answer for the next creates.
type failure struct {
	remaining int
	err       apiError
}

// FailNext makes the next n message creates answer httpStatus with Twilio's error JSON
// carrying code and msg, without recording anything. It takes precedence over
// validation (not over authentication) and replaces an earlier FailNext. For example
// FailNext(1, 429, 20429, "Too Many Requests") or FailNext(2, 500, 0, "Internal Server Error").
func (s *Server) FailNext(n int, httpStatus, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = failure{remaining: n, err: newAPIError(httpStatus, code, msg)}
}

// takeFailure consumes one scripted failure, if any is left.
func (s *Server) takeFailure() (apiError, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail.remaining <= 0 {
		return apiError{}, false
	}
	s.fail.remaining--
	return s.fail.err, true
}

// SetLatency delays every API answer by d (0 restores prompt answers). The work is done
// before the delay: a message create is recorded, and its status moves on, even if the
// client gives up waiting, so a client that times out is left with an unknown outcome
// that a list call reveals, as with the real Twilio.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

func (s *Server) currentLatency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency
}

// SetUndelivered makes messages to the number to, created from now on, end
// "undelivered" with the given error code instead of "delivered" (30003 Unreachable
// destination handset, 30005 Unknown destination, 30006 Landline, ...). Code 0 restores
// delivery.
func (s *Server) SetUndelivered(to string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.undelivered, to)
	} else {
		s.undelivered[to] = code
	}
}
