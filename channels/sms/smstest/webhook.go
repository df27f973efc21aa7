package smstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook is where the fake posts a webhook. URL is the address as configured at
// Twilio: the signature covers it byte for byte, so a port written out (even the
// scheme's default, as in "https://example.com:443/sms") and a query string are
// signed as given. Via, when set, is the base URL ("http://127.0.0.1:8080") the
// request is really sent to, keeping URL's path and query and naming URL's host in
// the Host header, as a reverse proxy in front of a public URL forwards it; empty,
// the request goes to URL.
type Webhook struct {
	URL, Via string
}

// Inbound plays a customer texting body from the number from to the number to: it
// records the message (direction "inbound", status "received", visible to list and
// fetch) and posts Twilio's signed inbound-SMS webhook to webhookURL once, without
// retries (replay with PostInbound or PostWebhook). The message is recorded even
// when the post fails. It returns the new MessageSid and the webhook's HTTP status.
// A keyword (STOP, START, HELP, ...) also changes the opt-out state of the pair and,
// with Config.KeywordReplies, makes Twilio's reply, recorded before the post.
func (s *Server) Inbound(ctx context.Context, webhookURL, from, to, body string) (sid string, status int, err error) {
	return s.InboundMedia(ctx, webhookURL, from, to, body, nil)
}

// InboundMedia is Inbound for an MMS: the webhook carries NumMedia and, for each
// file, MediaUrlN and MediaContentTypeN; each file is served at its own media URL
// under the API (see Config.PublicMedia and Config.MediaRedirect), and its MessageSid
// starts with "MM". At most ten files, as Twilio delivers.
func (s *Server) InboundMedia(ctx context.Context, webhookURL, from, to, body string, media []Media) (sid string, status int, err error) {
	if len(media) > maxMedia {
		return "", 0, fmt.Errorf("smstest: %d media files, Twilio delivers at most %d", len(media), maxMedia)
	}
	sid = s.InboundOffline(from, to, body, media...)
	status, err = s.PostInbound(ctx, Webhook{URL: webhookURL}, sid)
	return sid, status, err
}

// InboundOffline records an inbound message, with its keyword handling, as Inbound
// does, but posts no webhook: a message that arrived while the receiver was down,
// for a catch-up through the list API. Post it later with PostInbound. More than
// ten media files are cut to ten.
func (s *Server) InboundOffline(from, to, body string, media ...Media) string {
	now := time.Now().UTC()
	m := &message{
		sid: newSID("SM"), direction: directionInbound, from: from, to: to,
		msid: s.cfg.MessagingServiceSID, body: body, status: statusReceived,
		created: now, updated: now, sent: now,
	}
	if len(media) > 0 {
		m.sid = newSID("MM")
	}
	s.mu.Lock()
	s.storeMediaLocked(m, media[:min(len(media), maxMedia)])
	s.add(m)
	reply := s.keywordLocked(m, now)
	s.mu.Unlock()
	if reply != nil {
		_, sent, _ := s.recordOutbound(reply)
		s.notifySent(sent)
		s.startLifecycle(reply)
	}
	return m.sid
}

// PostInbound posts the webhook of the recorded inbound message sid to hook once,
// with the same parameters, signature and idempotency token each time for the same
// hook, as Twilio's own retries. It returns the answer's HTTP status, as PostWebhook.
func (s *Server) PostInbound(ctx context.Context, hook Webhook, sid string) (int, error) {
	s.mu.Lock()
	m, ok := s.bySID[sid]
	var form url.Values
	if ok && m.direction == directionInbound {
		form = s.inboundForm(m)
	}
	s.mu.Unlock()
	if form == nil {
		return 0, fmt.Errorf("smstest: no inbound message %s", sid)
	}
	return s.PostWebhookTo(ctx, hook, form)
}

// inboundForm returns the parameters of Twilio's inbound-SMS webhook for m. The
// caller holds s.mu.
func (s *Server) inboundForm(m *message) url.Values {
	f := url.Values{
		"MessageSid": {m.sid}, "SmsMessageSid": {m.sid}, "SmsSid": {m.sid},
		"AccountSid": {s.cfg.AccountSID}, "From": {m.from}, "To": {m.to},
		"Body": {m.body}, "NumMedia": {strconv.Itoa(len(m.media))}, "NumSegments": {strconv.Itoa(segments(m.body))},
		"SmsStatus": {statusReceived}, "ApiVersion": {apiVersion},
		"FromCountry": {country(m.from)}, "FromState": {""}, "FromCity": {""}, "FromZip": {""},
		"ToCountry": {country(m.to)}, "ToState": {""}, "ToCity": {""}, "ToZip": {""},
	}
	for i, u := range m.media {
		f.Set("MediaUrl"+strconv.Itoa(i), u)
		f.Set("MediaContentType"+strconv.Itoa(i), s.media[m.mediaSIDs[i]].contentType)
	}
	if m.msid != "" {
		f.Set("MessagingServiceSid", m.msid)
	}
	if m.optOutType != "" {
		f.Set("OptOutType", m.optOutType)
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

// PostWebhook posts form to url once as Twilio posts a webhook: form-encoded, signed
// with X-Twilio-Signature, with Twilio's User-Agent and an I-Twilio-Idempotency-Token
// that is the same whenever url and form are (as for Twilio's own retries). It
// returns the HTTP status of the answer, or an error when there was none (after
// Twilio's 15 s webhook timeout at most, or when ctx ends or the Server closes).
func (s *Server) PostWebhook(ctx context.Context, url string, form url.Values) (int, error) {
	return s.PostWebhookTo(ctx, Webhook{URL: url}, form)
}

// PostWebhookTo is PostWebhook for a Webhook: signed for hook.URL, sent through
// hook.Via when that is set.
func (s *Server) PostWebhookTo(ctx context.Context, hook Webhook, form url.Values) (int, error) {
	if s.ctx.Err() != nil {
		return 0, errors.New("smstest: server closed")
	}
	target, err := hook.target()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if hook.Via != "" {
		u, _ := url.Parse(hook.URL) // target parsed it
		req.Host = u.Host
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Twilio-Signature", s.Sign(hook.URL, form))
	req.Header.Set("I-Twilio-Idempotency-Token", idempotencyToken(hook.URL, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// target returns the URL the request goes to: URL, or Via with URL's path and query.
func (h Webhook) target() (string, error) {
	u, err := url.Parse(h.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("smstest: webhook URL %q is not an absolute http(s) URL", h.URL)
	}
	if h.Via == "" {
		return h.URL, nil
	}
	via, err := url.Parse(h.Via)
	if err != nil || via.Host == "" || (via.Scheme != "http" && via.Scheme != "https") {
		return "", fmt.Errorf("smstest: webhook Via %q is not an absolute http(s) URL", h.Via)
	}
	via.Path, via.RawPath, via.RawQuery = u.Path, u.RawPath, u.RawQuery
	return via.String(), nil
}

func idempotencyToken(url, body string) string {
	sum := sha256.Sum256([]byte(url + "\n" + body))
	return hex.EncodeToString(sum[:16])
}
