package smstest

import (
	"strings"
	"time"
)

// optOutKey is one blocked (sender, recipient) pair. The sender is a number or a
// Messaging Service SID; "" blocks the recipient for every sender (SetOptOut).
type optOutKey struct{ sender, to string }

// keyword is what a single-word inbound message means to Twilio's opt-out handling.
type keyword int

const (
	keywordNone keyword = iota
	keywordOptOut
	keywordOptIn
	keywordHelp
)

// Twilio's default replies to the keywords (Twilio's support article on opt-out
// keywords); Advanced Opt-Out can change them, the fake cannot.
const (
	replyOptOut = "You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe."
	replyOptIn  = "You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
	replyHelp   = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)

// parseKeyword reads body as Twilio does: only a message that is exactly one of the
// default keywords, in any case and with surrounding white space, counts ("STOP
// PLEASE" does not). Opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
// REVOKE, OPTOUT; opt-in: START, YES, UNSTOP; help: HELP, INFO.
func parseKeyword(body string) keyword {
	switch strings.ToUpper(strings.TrimSpace(body)) {
	case "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT":
		return keywordOptOut
	case "START", "YES", "UNSTOP":
		return keywordOptIn
	case "HELP", "INFO":
		return keywordHelp
	}
	return keywordNone
}

// optOutType is the OptOutType webhook parameter Advanced Opt-Out adds for k.
func (k keyword) optOutType() string {
	return [...]string{"", "STOP", "START", "HELP"}[k]
}

func (k keyword) reply() string {
	return [...]string{"", replyOptOut, replyOptIn, replyHelp}[k]
}

// SetOptOut marks the number to as having opted out of every sender (true) or
// clears that mark (false); pairs set by SetOptOutFrom or by keywords stay. Creates
// to an opted-out number answer 400 with code 21610, as Twilio does after a
// customer texted STOP.
func (s *Server) SetOptOut(to string, out bool) {
	s.SetOptOutFrom("", to, out)
}

// SetOptOutFrom marks the pair (sender, to) as opted out (true) or back in (false),
// as a keyword texted by to to sender does. sender is a number, or a Messaging
// Service SID to block every number of that service, as Twilio does for an opt-out
// received on a number in a Messaging Service.
func (s *Server) SetOptOutFrom(sender, to string, out bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setOptOutLocked(optOutKey{sender, to}, out)
}

// OptedOut reports whether a create from sender (a number or a Messaging Service
// SID) to the number to would be refused with 21610.
func (s *Server) OptedOut(sender, to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blockedLocked(&message{from: sender, to: to})
}

func (s *Server) setOptOutLocked(k optOutKey, out bool) {
	if out {
		s.optedOut[k] = true
	} else {
		delete(s.optedOut, k)
	}
}

// blockedLocked reports whether an outbound m is blocked by an opt-out: of every
// sender, of its From number, of its Messaging Service, or of the configured
// service, which every number of the fake belongs to. The caller holds s.mu.
func (s *Server) blockedLocked(m *message) bool {
	for _, sender := range []string{"", m.from, m.msid, s.cfg.MessagingServiceSID} {
		if s.optedOut[optOutKey{sender, m.to}] {
			return true
		}
	}
	return false
}

// optOutScope is the sender an opt-out received on the number ours applies to: the
// configured Messaging Service when there is one, else the number itself.
func (s *Server) optOutScope(ours string) string {
	if s.cfg.MessagingServiceSID != "" {
		return s.cfg.MessagingServiceSID
	}
	return ours
}

// keywordLocked applies the keyword of the inbound message in (if any) to the
// opt-out state and, with KeywordReplies, returns Twilio's reply to record; nil when
// there is none. A help keyword from an opted-out customer gets no reply, as Twilio
// documents. The caller holds s.mu.
func (s *Server) keywordLocked(in *message, now time.Time) *message {
	k := parseKeyword(in.body)
	if k == keywordNone {
		return nil
	}
	key := optOutKey{s.optOutScope(in.to), in.from}
	blocked := s.optedOut[key]
	switch k {
	case keywordOptOut:
		s.setOptOutLocked(key, true)
	case keywordOptIn:
		s.setOptOutLocked(key, false)
	}
	if s.cfg.KeywordReplies && s.cfg.MessagingServiceSID != "" {
		in.optOutType = k.optOutType() // Advanced Opt-Out is a Messaging Service feature
	}
	if !s.cfg.KeywordReplies || k == keywordHelp && blocked {
		return nil
	}
	return &message{
		direction: directionReply, autoReply: true,
		from: in.to, to: in.from, msid: s.cfg.MessagingServiceSID, body: k.reply(),
		created: now,
	}
}
