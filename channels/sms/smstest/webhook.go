package smstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Inbound plays a customer texting body from the number from to the number to: it
// records the message (direction "inbound", status "received", visible to list and
// fetch) and posts Twilio's signed inbound-SMS webhook to webhookURL once, without
// retries (replay with PostWebhook). It returns the new MessageSid and the webhook's
// HTTP status. A single-word opt-out or opt-in keyword (STOP, START, ...) also changes
// the opt-out state of from, as SetOptOut does.
func (s *Server) Inbound(ctx context.Context, webhookURL, from, to, body string) (sid string, status int, err error) {
	now := time.Now().UTC()
	m := &message{
		sid: newSID("SM"), direction: directionInbound, from: from, to: to,
		msid: s.cfg.MessagingServiceSID, body: body, status: statusReceived,
		created: now, updated: now, sent: now,
	}
	s.mu.Lock()
	s.add(m)
	if out, ok := optOutKeyword(body); ok {
		s.setOptOutLocked(from, out)
	}
	s.mu.Unlock()
	status, err = s.PostWebhook(ctx, webhookURL, s.inboundForm(m))
	return m.sid, status, err
}

// inboundForm returns the parameters of Twilio's inbound-SMS webhook for m.
func (s *Server) inboundForm(m *message) url.Values {
	f := url.Values{
		"MessageSid": {m.sid}, "SmsMessageSid": {m.sid}, "SmsSid": {m.sid},
		"AccountSid": {s.cfg.AccountSID}, "From": {m.from}, "To": {m.to},
		"Body": {m.body}, "NumMedia": {"0"}, "NumSegments": {strconv.Itoa(segments(m.body))},
		"SmsStatus": {statusReceived}, "ApiVersion": {apiVersion},
		"FromCountry": {country(m.from)}, "FromState": {""}, "FromCity": {""}, "FromZip": {""},
		"ToCountry": {country(m.to)}, "ToState": {""}, "ToCity": {""}, "ToZip": {""},
	}
	if m.msid != "" {
		f.Set("MessagingServiceSid", m.msid)
	}
	return f
}

// country guesses the ISO country of an E.164 number for the most common prefixes.
func country(number string) string {
	for _, c := range []struct{ prefix, iso string }{
		{"+1", "US"}, {"+44", "GB"}, {"+49", "DE"}, {"+33", "FR"}, {"+61", "AU"},
	} {
		if strings.HasPrefix(number, c.prefix) {
			return c.iso
		}
	}
	return ""
}

// optOutKeyword reports whether body is one of Twilio's default opt-out keywords
// (out true) or opt-in keywords (out false).
func optOutKeyword(body string) (out, ok bool) {
	switch strings.ToUpper(strings.TrimSpace(body)) {
	case "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT":
		return true, true
	case "START", "YES", "UNSTOP":
		return false, true
	}
	return false, false
}

// PostWebhook posts form to url once as Twilio posts a webhook: form-encoded, signed
// with X-Twilio-Signature, with Twilio's User-Agent and an I-Twilio-Idempotency-Token
// that is the same whenever url and form are (as for Twilio's own retries). It
// returns the HTTP status of the answer, or an error when there was none (after
// Twilio's 15 s webhook timeout at most, or when ctx ends or the Server closes).
func (s *Server) PostWebhook(ctx context.Context, url string, form url.Values) (int, error) {
	if s.ctx.Err() != nil {
		return 0, errors.New("smstest: server closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Twilio-Signature", s.Sign(url, form))
	req.Header.Set("I-Twilio-Idempotency-Token", idempotencyToken(url, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

func idempotencyToken(url, body string) string {
	sum := sha256.Sum256([]byte(url + "\n" + body))
	return hex.EncodeToString(sum[:16])
}
