package smstest

import (
	"slices"
	"time"
)

// Departure is when one outbound message left its sender's queue.
type Departure struct {
	SID, To  string
	Segments int
	// Created is when the API accepted the message; Departed when it left the
	// queue, Created itself when nothing was queued before it. Departed-Created is
	// the queueing delay the caller's pace caused.
	Created, Departed time.Time
}

// senderQueue is one sender's queue: Twilio sends a sender's messages at its rate
// in segments per second and queues what comes faster.
type senderQueue struct {
	mps        float64
	mpsSet     bool      // mps overrides Config.MPS
	next       time.Time // when the queue is free again
	departures []Departure
}

// pairKey names the messages between two numbers, for loop protection.
type pairKey struct{ sender, to string }

// loopState counts the messages of a pair that came each within the window of the
// one before, as Twilio's error 14107 page describes.
type loopState struct {
	count        int
	last         time.Time
	blockedUntil time.Time
}

// SetMPS sets the rate of one sender (a number, or a Messaging Service SID for
// creates without From) in segments per second, overriding Config.MPS; 0 means no
// queue. It applies to creates from now on.
func (s *Server) SetMPS(sender string, mps float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueLocked(sender)
	q.mps, q.mpsSet = max(mps, 0), true
}

// Departures returns when each outbound message of sender (its From, else its
// MessagingServiceSid) left the sender's queue, in the order they were created;
// auto-replies included, messages that failed at once (14107, 30001) not.
func (s *Server) Departures(sender string) []Departure {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.queues[sender]; ok {
		return slices.Clone(q.departures)
	}
	return nil
}

func senderOf(m *message) string {
	if m.from != "" {
		return m.from
	}
	return m.msid
}

func (s *Server) queueLocked(sender string) *senderQueue {
	q, ok := s.queues[sender]
	if !ok {
		q = &senderQueue{}
		s.queues[sender] = q
	}
	return q
}

// scheduleLocked gives m its place in its sender's queue, created at now. It
// reports false, leaving the queue as it was, when the place is more than MaxQueue
// ahead. Without a rate m departs at once. The caller holds s.mu.
func (s *Server) scheduleLocked(m *message, now time.Time) bool {
	q := s.queueLocked(senderOf(m))
	mps := s.cfg.MPS
	if q.mpsSet {
		mps = q.mps
	}
	n := segments(m.body)
	depart := now
	if mps > 0 {
		depart = later(now, q.next)
		if depart.Sub(now) > s.cfg.MaxQueue {
			return false
		}
		q.next = depart.Add(time.Duration(float64(n) / mps * float64(time.Second)))
	}
	m.departed = depart
	q.departures = append(q.departures, Departure{SID: m.sid, To: m.to, Segments: n, Created: now, Departed: depart})
	return true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// loopedLocked counts m, created at now, against loop protection and reports
// whether it fails with 14107: the message after LoopLimit in a row (each within
// LoopWindow of the one before) and every message of the pair for LoopWindow after
// it. Failed messages do not count; after the block the count starts over. The
// caller holds s.mu.
func (s *Server) loopedLocked(m *message, now time.Time) bool {
	k := pairKey{senderOf(m), m.to}
	st, ok := s.loops[k]
	if !ok {
		st = &loopState{}
		s.loops[k] = st
	}
	if now.Before(st.blockedUntil) {
		return true
	}
	if !st.last.IsZero() && now.Sub(st.last) < s.cfg.LoopWindow {
		st.count++
	} else {
		st.count = 1
	}
	st.last = now
	if st.count > s.cfg.LoopLimit {
		st.blockedUntil = now.Add(s.cfg.LoopWindow)
		st.count, st.last = 0, time.Time{}
		return true
	}
	return false
}
