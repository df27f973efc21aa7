package sms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/richtext"
)

// Back-off the channel asks for; the router adds its own jitter.
const (
	// rateLimitedWait follows Twilio 20429 / HTTP 429, which comes without a
	// Retry-After that twilio-go would surface.
	rateLimitedWait = 2 * time.Second
	// pairLimitedWait follows Twilio 14107: more than 30 messages between the
	// same two numbers in 30 s fail for 30 s.
	pairLimitedWait = 30 * time.Second
)

// maxErrorBody bounds how much of an error answer is kept for twilio-go to decode.
const maxErrorBody = 64 << 10

// Send delivers m to the phone number to and returns the Twilio message SID.
//
// HTML text (agents' lines) is rendered as plain text; attachment URLs go as
// MediaUrl (MMS). Rendered text longer than MaxBody goes as several SMS in
// order, and the SID returned is the last one's.
//
// Errors: Twilio's rate limits (20429, HTTP 429, 14107) are
// connector.RetryAfter; other 4xx answers (opted out 21610, invalid number
// 21211, not SMS-capable 21614, ...) are connector.Permanent, except
// authentication and account errors (401, 403, 404), which are an operator's
// problem: they stay retryable so that the messages wait in the outbox, and
// Health reports them. 5xx answers and network failures are retryable.
//
// A call whose outcome is unknown (a timeout or a broken connection after the
// request may have reached Twilio) is reconciled before anything is sent
// again: Send lists the recent messages to the same number and takes one with
// the same body created since the attempt began as the sent message. If the
// list does not show it (yet), Send returns a retryable error and the next
// attempt for the same message id looks again before resending. This memory
// is per process: after a restart an unknown outcome may be sent twice.
func (c *Channel) Send(ctx context.Context, to string, m *connector.Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	parts, media := render(m)
	if len(parts) == 0 && len(media) == 0 {
		c.log.Debug("nothing to send: empty text", zap.Int64("message", m.ID))
		return "", nil
	}
	if len(parts) == 0 {
		parts = []string{""} // media only
	}
	p := c.loadProgress(m.ID)
	for p.sent < len(parts) {
		var partMedia []string
		if p.sent == len(parts)-1 { // media go with the last part
			partMedia = media
		}
		sid, err := c.sendPart(ctx, to, parts[p.sent], partMedia, &p)
		if err != nil {
			c.saveProgress(m.ID, p, connector.IsPermanent(err))
			return "", err
		}
		c.log.Debug("sms sent", zap.Int64("message", m.ID), zap.String("message_sid", sid),
			zap.Int("part", p.sent+1), zap.Int("parts", len(parts)))
		p.sent++
		p.sid = sid
	}
	c.saveProgress(m.ID, p, true)
	return p.sid, nil
}

// render returns m's text as SMS bodies and its media URLs.
func render(m *connector.Message) (parts, media []string) {
	text := m.Text
	if m.Format == connector.FormatHTML {
		text = richtext.PlainText(text)
	}
	for _, a := range m.Attachments {
		if a.URL != "" {
			media = append(media, a.URL)
		}
	}
	return split(text, MaxBody), media
}

// sendPart sends one body, reconciling an earlier unknown outcome first.
func (c *Channel) sendPart(ctx context.Context, to, body string, media []string, p *progress) (string, error) {
	if !p.unknown.IsZero() {
		sid, err := c.reconcile(ctx, to, body, p.unknown, p.sid)
		if err != nil {
			return "", fmt.Errorf("an earlier attempt may have sent it, and checking failed (not resending): %w", err)
		}
		p.unknown = time.Time{}
		if sid != "" {
			c.log.Info("earlier attempt with unknown outcome had sent it", zap.String("message_sid", sid))
			return sid, nil
		}
	}
	if err := c.pace(ctx, to); err != nil {
		return "", err
	}
	start := time.Now()
	sid, status, err := c.create(ctx, to, body, media)
	if err == nil {
		c.noteAPI("")
		return sid, nil
	}
	if !outcomeUnknown(err, status) {
		return "", c.classify(err, status)
	}
	c.noteAPI(err.Error())
	p.unknown = start
	if ctx.Err() != nil {
		return "", fmt.Errorf("outcome unknown, checked on the next attempt: %w", err)
	}
	sid, rerr := c.reconcile(ctx, to, body, start, p.sid)
	switch {
	case rerr != nil:
		return "", fmt.Errorf("outcome unknown (%w), and checking failed: %v", err, rerr)
	case sid == "":
		return "", fmt.Errorf("outcome unknown and not listed at Twilio yet, checked again before resending: %w", err)
	}
	p.unknown = time.Time{}
	c.noteAPI("")
	c.log.Info("send outcome was unknown; Twilio has the message", zap.String("message_sid", sid), zap.Error(err))
	return sid, nil
}

// pace is the seam for sending limits: a long code sends about one segment
// per second, and more than 30 messages between the same two numbers in 30 s
// fail with 14107. A limiter per (from, to) will wait here; for now it only
// honours ctx, and 14107 is answered with RetryAfter.
func (c *Channel) pace(ctx context.Context, _ string) error {
	return ctx.Err()
}

// create makes one Messages.json call. status is the HTTP status Twilio
// answered, 0 when there was no answer.
func (c *Channel) create(ctx context.Context, to, body string, media []string) (sid string, status int, err error) {
	params := &openapi.CreateMessageParams{}
	params.SetTo(to)
	if c.cfg.From != "" {
		params.SetFrom(c.cfg.From)
	}
	if c.cfg.MessagingServiceSID != "" {
		params.SetMessagingServiceSid(c.cfg.MessagingServiceSID)
	}
	if body != "" {
		params.SetBody(body)
	}
	if len(media) > 0 { // MMS: Twilio fetches the URLs itself
		params.SetMediaUrl(media)
	}
	if cb := c.statusCallbackURL(); cb != "" {
		params.SetStatusCallback(cb)
	}
	api, call := c.api(ctx)
	defer call.done()
	msg, err := api.CreateMessage(params)
	if err != nil {
		return "", call.status, err
	}
	if msg.Sid == nil || *msg.Sid == "" {
		return "", call.status, errors.New("twilio answered without a message sid")
	}
	return *msg.Sid, call.status, nil
}

// classify maps a failed call whose outcome is known to the router's error
// classes, and records network and auth failures for Health.
func (c *Channel) classify(err error, status int) error {
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		if status == 0 { // refused before anything was sent
			c.noteAPI(err.Error())
			return err
		}
		te = &client.TwilioRestError{Status: status} // an error answer twilio-go could not decode
	}
	switch {
	case te.Code == 20429 || te.Status == http.StatusTooManyRequests:
		c.noteAPI("")
		return connector.RetryAfter(err, rateLimitedWait)
	case te.Code == 14107:
		c.noteAPI("")
		return connector.RetryAfter(err, pairLimitedWait)
	case te.Code == 20003 || te.Code == 21222 || te.Code == 21224 || // twilio-go's own credential checks
		te.Status == http.StatusUnauthorized || te.Status == http.StatusForbidden ||
		te.Status == http.StatusNotFound:
		c.noteAPI(err.Error())
		return fmt.Errorf("check account_sid and auth_token: %w", err)
	case te.Status >= 500 || te.Code == 0 && te.Status == 0:
		c.noteAPI("")
		return err
	case te.Status >= 400:
		c.noteAPI("")
		if te.Code == 0 { // not Twilio's own answer (a proxy's?): do not give up on it
			return err
		}
		return connector.Permanent(err)
	}
	return err
}

// outcomeUnknown reports whether a failed create may still have created the
// message: there was no error answer, and the failure was not one that
// happens before a request is sent (dialing, DNS).
func outcomeUnknown(err error, status int) bool {
	var te *client.TwilioRestError
	if errors.As(err, &te) || status >= 300 {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

// reconcile looks for a message to the number to with the given body that
// Twilio created since start (with a little room for clock skew), other than
// skip. It returns its SID, or "" when there is none.
//
// It lists by To and From without Twilio's DateSent filter, which leaves out
// messages that are still queued; Twilio lists newest first, and one page
// covers the last minutes of one customer's conversation.
func (c *Channel) reconcile(ctx context.Context, to, body string, start time.Time, skip string) (string, error) {
	params := &openapi.ListMessageParams{}
	params.SetTo(to)
	if c.cfg.From != "" {
		params.SetFrom(c.cfg.From)
	}
	params.SetPageSize(reconcilePage)
	api, call := c.api(ctx)
	defer call.done()
	page, err := api.PageMessage(params, "", "")
	if err != nil {
		return "", fmt.Errorf("list messages: %w", err)
	}
	since := start.Truncate(time.Second).Add(-clockSkew)
	for _, m := range page.Messages {
		if str(m.Sid) == "" || str(m.Sid) == skip || str(m.To) != to || str(m.Body) != body {
			continue
		}
		if d := str(m.Direction); d != "" && d != "outbound-api" {
			continue
		}
		created, err := time.Parse(time.RFC1123Z, str(m.DateCreated))
		if err != nil || created.Before(since) {
			continue
		}
		return str(m.Sid), nil
	}
	return "", nil
}

const (
	reconcilePage = 50
	// clockSkew is how far Twilio's clock may be behind ours.
	clockSkew = 2 * time.Second
)

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// apiCall is one API call's transport state.
type apiCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	base   http.RoundTripper
	api    *url.URL
	status int // the last answer's HTTP status, 0 before one
}

// api returns a Twilio API client for one call bounded by ctx and
// request_timeout: twilio-go takes no context, so the call's transport
// carries it. The caller must call done.
func (c *Channel) api(ctx context.Context) (*openapi.ApiService, *apiCall) {
	u, _ := url.Parse(c.cfg.APIURL) // checked by decodeConfig
	call := &apiCall{base: c.transport, api: u}
	call.ctx, call.cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
	cl := &client.Client{
		Credentials: client.NewCredentials(c.cfg.AccountSID, c.cfg.AuthToken.Reveal()),
		HTTPClient: &http.Client{
			Transport:     call,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	cl.SetAccountSid(c.cfg.AccountSID)
	// A RequestHandler literal, not NewRequestHandler: the latter reads
	// TWILIO_EDGE and TWILIO_REGION from the environment and rewrites the host.
	return openapi.NewApiService(&client.RequestHandler{Client: cl}), call
}

func (a *apiCall) done() { a.cancel() }

// RoundTrip sends req to api_url's scheme and host under the call's context.
// It reads error answers into memory, because twilio-go never closes their
// bodies.
func (a *apiCall) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(a.ctx)
	r.URL.Scheme, r.URL.Host, r.Host = a.api.Scheme, a.api.Host, ""
	resp, err := a.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	a.status = resp.StatusCode
	if resp.StatusCode >= 400 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read error answer (HTTP %d): %w", resp.StatusCode, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}
