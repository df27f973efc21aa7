package smstest

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	apiVersion        = "2010-04-01"
	directionOutbound = "outbound-api"
	directionInbound  = "inbound"
	directionReply    = "outbound-reply" // Twilio's own answer to a keyword
	maxBodyRunes      = 1600
	maxMedia          = 10 // media files per message, both ways
)

// Message statuses.
const (
	statusAccepted    = "accepted"
	statusQueued      = "queued"
	statusSent        = "sent"
	statusDelivered   = "delivered"
	statusUndelivered = "undelivered"
	statusReceived    = "received"
	statusFailed      = "failed"
)

// endpoint serves one authenticated API call and returns the status and JSON document
// to answer.
type endpoint func(r *http.Request) (int, any)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /2010-04-01/Accounts/{account}/Messages.json", s.api(s.create))
	mux.Handle("GET /2010-04-01/Accounts/{account}/Messages.json", s.api(s.list))
	mux.Handle("GET /2010-04-01/Accounts/{account}/Messages/{file}", s.api(s.fetch))
	mux.Handle("GET /2010-04-01/Accounts/{account}/Messages/{message}/Media.json", s.api(s.listMedia))
	mux.Handle("GET /2010-04-01/Accounts/{account}/Messages/{message}/Media/{file}", http.HandlerFunc(s.serveMedia))
	mux.HandleFunc("GET "+cdnPrefix+"{token}", s.serveCDN)
	mux.Handle("/", s.api(func(r *http.Request) (int, any) {
		return http.StatusNotFound, errNotFound(r.URL.Path)
	}))
	return mux
}

// api wraps h with authentication and the scripted latency. The latency is served
// after h, so its effects happen even when the client stops waiting.
func (s *Server) api(h endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.goTrack() {
			http.Error(w, "smstest: server closed", http.StatusServiceUnavailable)
			return
		}
		defer s.wg.Done()
		status, doc := http.StatusUnauthorized, any(errAuthenticate())
		if s.authenticated(r) {
			status, doc = h(r)
		}
		if !s.sleep(r.Context(), s.currentLatency()) {
			return
		}
		writeJSON(w, status, doc)
	})
}

// authenticated reports whether r carries the account's basic-auth credentials and
// names that account in its path.
func (s *Server) authenticated(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || !equal(user, s.cfg.AccountSID) || !equal(pass, s.cfg.AuthToken) {
		return false
	}
	account := r.PathValue("account")
	return account == "" || account == s.cfg.AccountSID
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func writeJSON(w http.ResponseWriter, status int, doc any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(doc)
}

// create serves POST Messages.json: it records an outbound message and starts its
// status lifecycle.
func (s *Server) create(r *http.Request) (int, any) {
	if err := r.ParseForm(); err != nil {
		return http.StatusBadRequest, errBadRequest(codeInvalidParameter, "Invalid form: "+err.Error())
	}
	if e, ok := s.takeFailure(); ok {
		return e.Status, e
	}
	f := r.PostForm
	m := &message{
		direction: directionOutbound,
		to:        f.Get("To"), from: f.Get("From"), msid: f.Get("MessagingServiceSid"),
		body: f.Get("Body"), statusCallback: f.Get("StatusCallback"), media: f["MediaUrl"],
	}
	if e, ok := s.validate(m); !ok {
		return e.Status, e
	}
	doc, sent, refused := s.recordOutbound(m)
	if refused != nil {
		return refused.Status, *refused
	}
	s.notifySent(sent)
	s.startLifecycle(m)
	return http.StatusCreated, doc
}

// validate checks a create the way Twilio does, in Twilio's order.
func (s *Server) validate(m *message) (apiError, bool) {
	switch {
	case m.to == "":
		return errBadRequest(codeToRequired, "A 'To' phone number is required."), false
	case m.from == "" && m.msid == "":
		return errBadRequest(codeFromRequired, "A 'From' phone number is required."), false
	case !validNumber(m.to):
		return errBadRequest(codeInvalidTo, "Invalid 'To' Phone Number: "+m.to), false
	case m.body == "" && len(m.media) == 0:
		return errBadRequest(codeBodyRequired, "Message body is required."), false
	case utf8.RuneCountInString(m.body) > maxBodyRunes:
		return errBadRequest(codeBodyTooLong, "The concatenated message body exceeds the 1600 character limit."), false
	case len(m.media) > maxMedia:
		return errBadRequest(codeTooManyMedia, "Number of media files exceeds allowed limit"), false
	case !validMediaURLs(m.media):
		return errBadRequest(codeInvalidMediaURL, "Invalid media URL(s)"), false
	case s.optedOutPair(m):
		return errBadRequest(codeUnsubscribed, "Attempt to send to unsubscribed recipient"), false
	}
	return apiError{}, true
}

// validNumber reports whether to is an E.164 number (+ and 7 to 15 digits, no leading
// zero), optionally with a "whatsapp:" channel prefix.
func validNumber(to string) bool {
	digits, ok := strings.CutPrefix(strings.TrimPrefix(to, "whatsapp:"), "+")
	if !ok || len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	return strings.Trim(digits, "0123456789") == ""
}

func (s *Server) optedOutPair(m *message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blockedLocked(m)
}

// recordOutbound stores m as a new queued message and returns its resource document
// and its Sent view, both taken before its status can move on. With loop protection
// or a full queue the message is stored to fail; a create from a number whose queue
// is full is refused instead (21611), nothing stored.
func (s *Server) recordOutbound(m *message) (messageDoc, Sent, *apiError) {
	now := time.Now().UTC()
	m.sid = newSID("SM")
	if len(m.media) > 0 {
		m.sid = newSID("MM") // Twilio's prefix for a message with media
	}
	m.created, m.updated = now, now
	m.status = statusQueued
	if m.from == "" {
		m.status = statusAccepted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.LoopProtection && !m.autoReply && s.loopedLocked(m, now) {
		m.failCode = codeLoopLimit // fails without taking a place in the queue
	} else if !s.scheduleLocked(m, now) {
		if m.from != "" {
			e := errBadRequest(codeQueueFull, "This 'From' number has exceeded the maximum number of queued messages")
			return messageDoc{}, Sent{}, &e
		}
		m.failCode = codeQueueOverflow // a Messaging Service's queue: fails after creation
	}
	m.finalCode = s.undelivered[m.to]
	s.add(m)
	return s.docLocked(m), m.snapshot(s.cfg.AccountSID), nil
}

// fetch serves GET Messages/{Sid}.json.
func (s *Server) fetch(r *http.Request) (int, any) {
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.bySID[sid]
	if !ok || m == nil {
		return http.StatusNotFound, errNotFound(r.URL.Path)
	}
	return http.StatusOK, s.docLocked(m)
}
