package centiontest

import (
	"fmt"
	"time"
)

// LateAck makes every later umid confirmation come d after the line
// arrived (0: at once). Until then the line is not in the history a resume
// sends either: the server has it, the client cannot know.
func (s *Server) LateAck(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lateAck = d
}

// HoldAcks withholds every later umid confirmation until ReleaseAcks: the
// deterministic form of LateAck, for tests that act while a line is
// unconfirmed (drop the socket, resend it).
func (s *Server) HoldAcks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdAcks = true
}

// ReleaseAcks sends the withheld confirmations, in order, and stops
// withholding.
func (s *Server) ReleaseAcks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdAcks = false
	held := s.held
	s.held = nil
	for _, h := range held {
		s.confirmLocked(h.ch, h.m, h.repeat)
	}
	s.changedLocked()
}

// SetRedeliver makes every later batch also carry again up to n of the
// newest messages the client was already sent, before the new ones (0: off).
func (s *Server) SetRedeliver(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redeliverN = n
}

// RefuseResume makes the server forget token's chat, as a server that lost
// its sessions: every later resume with the token is answered
// register {"error":"no session"}, and a register starts a new chat. The
// socket carrying the chat, if any, stays open but carries nothing.
func (s *Server) RefuseResume(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.live[token]
	if ch == nil {
		return
	}
	ch.lost = true
	if c := ch.conn; c != nil {
		c.chat = nil
		ch.conn = nil
	}
	s.changedLocked()
}

// Drop drops the socket carrying token's chat abruptly (no close frame).
// The chat goes on: a client reconnecting with the token and sending resume
// gets it back.
func (s *Server) Drop(token string) error {
	s.mu.Lock()
	var c *conn
	if ch := s.live[token]; ch != nil {
		c = ch.conn
	}
	if c == nil {
		for x := range s.conns {
			if x.token == token {
				c = x
				break
			}
		}
	}
	if c != nil {
		s.dropConnLocked(c)
	}
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: no socket for %q", ErrNoChat, token)
	}
	c.ws.CloseNow()
	return nil
}

// DropAll drops every socket abruptly. Every chat goes on.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := s.detachAllLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.CloseNow()
	}
}
