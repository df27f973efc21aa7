package smstest

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Sent is an outbound message the API accepted, as a test sees it.
type Sent struct {
	SID, AccountSID, From, To, MessagingServiceSID, Body, StatusCallback string
	MediaURLs                                                            []string
	// Status is the latest status: queued (accepted when sent through a Messaging
	// Service without From) -> sent -> delivered, or undelivered (see SetUndelivered).
	Status string
	// ErrorCode is Twilio's error code when Status is undelivered or failed, else 0.
	ErrorCode int
	Created   time.Time
	// AutoReply marks Twilio's own reply to a keyword (see Config.KeywordReplies).
	AutoReply bool
}

// Callback is the outcome of one status callback the Server posted.
type Callback struct {
	SID, Status, URL string
	// HTTPStatus is the last answer's status code, 0 when there was none.
	HTTPStatus int
	// Err is the last attempt's transport error, nil when it got an answer.
	Err error
	// Attempts counts the posts: more than one when an attempt failed with a
	// transport error or a 5xx and was retried.
	Attempts int
}

// message is one Message resource. Its fields are guarded by Server.mu.
type message struct {
	sid, direction, from, to, msid, body, statusCallback string
	media                                                []string // MediaUrl values; for inbound the fake's own URLs
	mediaSIDs                                            []string // inbound: the media SIDs behind media
	status                                               string
	errorCode                                            int
	finalCode                                            int       // error code it will end undelivered with; 0: delivered
	failCode                                             int       // error code it fails with instead of being sent; 0: none
	created, updated, sent                               time.Time // sent is zero until "sent"
	departed                                             time.Time // outbound: when it leaves its sender's queue
	autoReply                                            bool
	optOutType                                           string // inbound: the OptOutType parameter, "" for none
}

func (m *message) outbound() bool {
	return m.direction == directionOutbound || m.direction == directionReply
}

func (m *message) snapshot(account string) Sent {
	return Sent{
		SID: m.sid, AccountSID: account, From: m.from, To: m.to,
		MessagingServiceSID: m.msid, Body: m.body, StatusCallback: m.statusCallback,
		MediaURLs: slices.Clone(m.media), Status: m.status, ErrorCode: m.errorCode,
		Created: m.created, AutoReply: m.autoReply,
	}
}

// add records m. The caller holds s.mu.
func (s *Server) add(m *message) {
	s.msgs = append(s.msgs, m)
	s.bySID[m.sid] = m
	if m.outbound() {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// Sent returns every outbound message the API accepted, oldest first, with Twilio's
// own keyword replies (AutoReply) among them.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentLocked()
}

func (s *Server) sentLocked() []Sent {
	var out []Sent
	for _, m := range s.msgs {
		if m.outbound() {
			out = append(out, m.snapshot(s.cfg.AccountSID))
		}
	}
	return out
}

// Get returns the outbound message with the given SID.
func (s *Server) Get(sid string) (Sent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.bySID[sid]
	if !ok || !m.outbound() {
		return Sent{}, false
	}
	return m.snapshot(s.cfg.AccountSID), true
}

// WaitSent waits until at least n outbound messages were accepted and returns them all,
// as Sent does. When ctx ends first it returns an error that says how many it had.
func (s *Server) WaitSent(ctx context.Context, n int) ([]Sent, error) {
	for {
		s.mu.Lock()
		sent, changed := s.sentLocked(), s.changed
		s.mu.Unlock()
		if len(sent) >= n {
			return sent, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return sent, fmt.Errorf("smstest: waiting for %d sent messages, have %d: %w", n, len(sent), ctx.Err())
		}
	}
}

// OnSent registers f to be called with each outbound message the API accepts, after it
// is recorded and before the API answers; f runs outside the Server's locks but on the
// request's goroutine, so a slow f delays the answer.
func (s *Server) OnSent(f func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = append(s.onSent, f)
}

func (s *Server) notifySent(sent Sent) {
	s.mu.Lock()
	fs := slices.Clone(s.onSent)
	s.mu.Unlock()
	for _, f := range fs {
		f(sent)
	}
}

// Callbacks returns the outcome of every status callback posted so far, in the order
// they completed (retries included in one entry).
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callbacks)
}
