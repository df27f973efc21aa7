package ximatest

import (
	"time"
)

// faults are the switches of the awkward cases; guarded by Server.mu.
type faults struct {
	duplicate  int           // messages still to put twice
	reorder    bool          // batches newest first
	hold       bool          // receives see no message
	sns        bool          // agent messages wrapped in an SNS envelope
	visibility time.Duration // default visibility timeout of a receive
	failREST   map[string]restFailure
}

type restFailure struct {
	status int
	left   int
}

// Duplicate makes the next n messages put on any queue be delivered twice:
// each becomes two queue entries with the same MessageId and body, received
// and deleted independently, as SQS's at-least-once delivery does.
func (s *Server) Duplicate(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.duplicate = n
}

// Reorder makes every ReceiveMessage answer its batch newest first (while
// on). SentTimestamp stays true and strictly increasing, so a client that
// sorts a batch by it restores the order. Hold gathers several messages
// into one batch deterministically.
func (s *Server) Reorder(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.reorder = on
}

// Hold (while on) hides every message from ReceiveMessage; long polls keep
// waiting. Turning it off releases everything put meanwhile at once, so the
// next receive gets them in one batch.
func (s *Server) Hold(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.hold = on
	s.notifyLocked()
}

// WrapSNS (while on) wraps the agent-side messages in an SNS notification
// envelope ({"Type":"Notification","Message":"<the JSON as a string>",...}),
// as a queue subscribed to an SNS topic without raw delivery gets them.
func (s *Server) WrapSNS(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.sns = on
}

// SetVisibility sets the visibility timeout of receives that do not give
// one (SQS's default is 30 s): a message received and not deleted is
// delivered again that long after. Sub-second values are allowed, for
// tests.
func (s *Server) SetVisibility(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.visibility = d
}

// RotateCredentials issues new SQS credentials: /chat/queue/auth hands out
// the new ones and SQS refuses the old ones from now on with
// InvalidClientTokenId (HTTP 403), as AWS refuses a deleted access key.
func (s *Server) RotateCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = newCredentials(time.Now())
	s.notifyLocked()
}

// Credentials returns the SQS credentials currently valid (what
// /chat/queue/auth would answer, rotating them first when their
// CredentialTTL is over).
func (s *Server) Credentials() (accessKey, secretKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.currentCredsLocked(time.Now())
	return c.accessKey, c.secretKey
}

// currentCredsLocked rotates expired credentials and returns the valid ones.
func (s *Server) currentCredsLocked(now time.Time) sqsCreds {
	if !now.Before(s.creds.issued.Add(s.cfg.CredentialTTL)) {
		s.creds = newCredentials(now)
	}
	return s.creds
}

// FailREST makes the next n REST calls to path (e.g. "/chat/still-here")
// answer status with an empty body, without any effect. n <= 0 clears it.
func (s *Server) FailREST(path string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.failREST == nil {
		s.faults.failREST = make(map[string]restFailure)
	}
	if n <= 0 {
		delete(s.faults.failREST, path)
		return
	}
	s.faults.failREST[path] = restFailure{status: status, left: n}
}

// injectedLocked returns the status an injected failure answers for path,
// or 0, counting it down.
func (s *Server) injectedLocked(path string) int {
	f, ok := s.faults.failREST[path]
	if !ok {
		return 0
	}
	if f.left--; f.left <= 0 {
		delete(s.faults.failREST, path)
	} else {
		s.faults.failREST[path] = f
	}
	return f.status
}
