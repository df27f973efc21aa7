package smstest

import (
	"net/url"
	"strconv"
	"time"
)

const (
	maxCallbackAttempts = 4
	callbackBackoff     = 100 * time.Millisecond
)

// startLifecycle moves m through its statuses in the background.
func (s *Server) startLifecycle(m *message) {
	if !s.goTrack() {
		return
	}
	go s.deliver(m)
}

// deliver makes m "sent" StatusDelay after it left its sender's queue and then,
// after StatusDelay again, "delivered" or "undelivered". A message that cannot be
// sent (loop protection, queue overflow, media that cannot be used) becomes
// "failed" StatusDelay after it was created instead. Each change is posted to m's
// StatusCallback, if any, and the next change waits for that post, so callbacks of
// one message arrive in order.
func (s *Server) deliver(m *message) {
	defer s.wg.Done()
	s.mu.Lock()
	departed, fail := m.departed, m.failCode
	s.mu.Unlock()
	if fail == 0 && s.cfg.FetchMedia && len(m.media) > 0 && m.direction == directionOutbound {
		fail = s.fetchOutboundMedia(m)
	}
	if fail != 0 {
		if s.sleep(s.ctx, s.cfg.StatusDelay) {
			s.advance(m, statusFailed, fail)
		}
		return
	}
	if !s.sleep(s.ctx, time.Until(departed)+s.cfg.StatusDelay) {
		return
	}
	s.advance(m, statusSent, 0)
	if !s.sleep(s.ctx, s.cfg.StatusDelay) {
		return
	}
	s.mu.Lock()
	code := m.finalCode
	s.mu.Unlock()
	if code != 0 {
		s.advance(m, statusUndelivered, code)
	} else {
		s.advance(m, statusDelivered, 0)
	}
}

// advance sets m's status and posts its status callback.
func (s *Server) advance(m *message, status string, code int) {
	s.mu.Lock()
	now := time.Now().UTC()
	m.status, m.errorCode, m.updated = status, code, now
	if status == statusSent {
		m.sent = now
	}
	callback, form := m.statusCallback, s.callbackForm(m)
	s.mu.Unlock()
	if callback != "" {
		s.postCallback(callback, form, m.sid, status)
	}
}

// callbackForm returns the parameters of Twilio's status callback for m's current
// status. The caller holds s.mu.
func (s *Server) callbackForm(m *message) url.Values {
	f := url.Values{
		"MessageSid": {m.sid}, "SmsSid": {m.sid},
		"MessageStatus": {m.status}, "SmsStatus": {m.status},
		"AccountSid": {s.cfg.AccountSID}, "To": {m.to}, "ApiVersion": {apiVersion},
	}
	if m.from != "" {
		f.Set("From", m.from)
	}
	if m.msid != "" {
		f.Set("MessagingServiceSid", m.msid)
	}
	if m.errorCode != 0 {
		f.Set("ErrorCode", strconv.Itoa(m.errorCode))
	}
	return f
}

// postCallback posts one status callback, retrying with backoff after a transport
// error or a 5xx answer, and records the outcome.
func (s *Server) postCallback(callback string, form url.Values, sid, status string) {
	cb := Callback{SID: sid, Status: status, URL: callback}
	wait := callbackBackoff
	for {
		cb.Attempts++
		cb.HTTPStatus, cb.Err = s.PostWebhook(s.ctx, callback, form)
		retry := cb.Err != nil || cb.HTTPStatus >= 500
		if !retry || cb.Attempts == maxCallbackAttempts || !s.sleep(s.ctx, wait) {
			break
		}
		wait *= 2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbacks = append(s.callbacks, cb)
}
