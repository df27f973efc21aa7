package sms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/channels/sms/segment"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/richtext"
)

// Back-off the channel asks for; the router adds its own jitter.
const (
	// rateLimitedWait follows Twilio 20429 / HTTP 429; Twilio sends no
	// Retry-After with it.
	rateLimitedWait = 2 * time.Second
)

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
// attempt for the same message id looks again before resending.
//
// What attempts achieved is kept in the core's SendProgress store: each part
// Twilio confirmed except the last (the core's sent mark follows it), so that
// a failed part does not make a later attempt repeat the parts before it. A
// record that cannot be resumed from fails the message (Permanent) rather
// than risk repeating parts.
//
// Nothing is written before a call. A call that may have reached Twilio is
// looked for before the part is sent again: after an unknown outcome in this
// process (begun remembers when the call began), and for a message the core
// hands over as Recovered (a crash or a power loss may have cut an attempt
// short, or the store lost a mark or a record, which are kept without
// waiting for the disk), for each part in turn until one is not found. That
// keeps the synced writes per SMS at none, and a lost mark costs a list
// call, not a repeat.
func (c *Channel) Send(ctx context.Context, to string, m *connector.Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	d := c.destination(to)
	if err := c.checkOptOut(ctx, d.sender, d.to); err != nil {
		c.finished(m.ID)
		return "", err
	}
	parts, media := c.render(m)
	if len(parts) == 0 && len(media) == 0 {
		c.log.Debug("nothing to send: empty text", zap.Int64("message", m.ID))
		return "", nil
	}
	if len(parts) == 0 {
		parts = []string{""} // media only
	}
	look := recoveredSince(m)
	// A record is written only after a part that is not the last, so a
	// single SMS of this process's has none to read.
	p := progress{Parts: len(parts)}
	if len(parts) > 1 || !look.IsZero() {
		var err error
		if p, err = c.loadProgress(ctx, m.ID, len(parts)); err != nil {
			return "", err
		}
	}
	if t, ok := c.begun.since(m.ID); ok && p.Pending.IsZero() {
		p.Pending = t // the part whose call had no answer
	}
	for p.Sent < len(parts) {
		var partMedia []string
		if p.Sent == len(parts)-1 { // media go with the last part
			partMedia = media
		}
		if !look.IsZero() && p.Pending.IsZero() {
			p.Pending = look
		}
		sid, fresh, err := c.sendPart(ctx, m.ID, d, parts[p.Sent], partMedia, &p)
		if err != nil {
			if connector.IsPermanent(err) {
				c.finished(m.ID)
			}
			return "", err
		}
		if fresh { // created by this call: no later part went before
			look = time.Time{}
		}
		c.log.Debug("sms sent", zap.Int64("message", m.ID), zap.String("message_sid", sid),
			zap.Int("part", p.Sent), zap.Int("parts", len(parts)))
	}
	c.finished(m.ID)
	return p.SID, nil
}

// render returns m's text as SMS bodies, prepared as Split prepares them,
// and its MediaUrl values. Attachments beyond Twilio's limits are left out,
// and a last body tells the customer so (the same for every attempt, so a
// retry resumes the same parts).
func (c *Channel) render(m *connector.Message) (parts, media []string) {
	text := m.Text
	if m.Format == connector.FormatHTML {
		text = richtext.PlainText(text)
	}
	parts = c.Split(text)
	media, refused := c.outboundMedia(m.Attachments)
	if len(refused) > 0 {
		c.log.Warn("attachments left out of an SMS", zap.Int64("message", m.ID), zap.Any("refused", refused))
		parts = append(parts, c.Split(c.mediaNotice(refused))...)
	}
	return parts, media
}

// sendPart sends one body, looking at Twilio first when an earlier attempt
// may have sent it (p.Pending set), and records in p the part as sent once
// Twilio confirmed it. fresh reports that this call created the message
// rather than finding it.
func (c *Channel) sendPart(ctx context.Context, id int64, d destination, body string, media []string, p *progress) (sid string, fresh bool, err error) {
	if !p.Pending.IsZero() {
		sid, err := c.reconcile(ctx, d, body, p.Pending, p.SID)
		if err != nil {
			return "", false, fmt.Errorf("an earlier attempt may have sent it, and checking failed (not resending): %w", err)
		}
		if sid != "" {
			c.log.Info("an earlier attempt had sent it", zap.Int64("message", id), zap.String("message_sid", sid))
			return sid, false, c.confirmPart(ctx, id, p, sid, body)
		}
	}
	if err := c.pace(ctx, d, body); err != nil {
		return "", false, err
	}
	start := time.Now()
	c.begun.note(id, start) // until Send ends, a repeat of this part looks first
	sid, status, err := c.create(ctx, d, body, media)
	if err == nil {
		c.noteAPI("")
		return sid, true, c.confirmPart(ctx, id, p, sid, body)
	}
	if !outcomeUnknown(err, status) {
		c.begun.drop(id)
		p.Pending = time.Time{}
		return "", false, c.classify(ctx, d, err, status)
	}
	c.noteAPI(connector.RedactError(err))
	if ctx.Err() != nil {
		return "", false, fmt.Errorf("outcome unknown, checked on the next attempt: %w", err)
	}
	sid, rerr := c.reconcile(ctx, d, body, start, p.SID)
	switch {
	case rerr != nil:
		return "", false, fmt.Errorf("outcome unknown (%w), and checking failed: %v", err, rerr)
	case sid == "":
		return "", false, fmt.Errorf("outcome unknown and not listed at Twilio yet, checked again before resending: %w", err)
	}
	c.noteAPI("")
	c.log.Info("send outcome was unknown; Twilio has the message", zap.String("message_sid", sid), zap.Error(err))
	return sid, false, c.confirmPart(ctx, id, p, sid, body)
}

// confirmPart records that Twilio has the next part, body, as sid, before
// the part after it is attempted, and counts its segments. If the record
// cannot be saved, the attempt stops, and the next one looks at Twilio for
// that part before sending it (begun, or Recovered after a restart).
//
// The record is kept without waiting for the disk (connector.NoteProgress):
// a power loss that forgets it makes the next process's attempt a Recovered
// one, which looks for each part before sending it. The last part is not
// recorded at all: the core's sent mark follows.
func (c *Channel) confirmPart(ctx context.Context, id int64, p *progress, sid, body string) error {
	c.metrics.countSent(body)
	p.Sent++
	p.SID = sid
	p.Pending = time.Time{}
	if p.Sent < p.Parts {
		if err := c.saveProgress(ctx, id, *p); err != nil {
			return err // begun still says when this part's call began
		}
	}
	c.begun.drop(id)
	return nil
}

// recoveredSince is, for a message recovered from an earlier process, its
// arrival: any of its parts may have reached Twilio since, unrecorded. It is
// zero for a message of this process's.
func recoveredSince(m *connector.Message) time.Time {
	switch {
	case !m.Recovered || m.ID == 0:
		return time.Time{}
	case m.CreatedAt.IsZero(): // arrival unknown: whatever Twilio lists
		return time.Unix(1, 0)
	}
	return m.CreatedAt
}

// create makes one Messages.json call. status is the HTTP status Twilio
// answered, 0 when there was no answer.
func (c *Channel) create(ctx context.Context, d destination, body string, media []string) (sid string, status int, err error) {
	form := url.Values{"To": {d.to}}
	if d.from != "" {
		form.Set("From", d.from)
	}
	if c.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", c.cfg.MessagingServiceSID)
	}
	if body != "" {
		form.Set("Body", body)
	}
	if len(media) > 0 { // MMS: Twilio fetches the URLs itself
		form["MediaUrl"] = media
	}
	if cb := c.statusCallbackURL(); cb != "" {
		form.Set("StatusCallback", cb)
	}
	msg, status, err := c.createMessage(ctx, form)
	if err != nil {
		return "", status, err
	}
	if msg.SID == "" {
		return "", status, errors.New("twilio answered without a message sid")
	}
	return msg.SID, status, nil
}

// classify maps a failed call to d whose outcome is known to the router's
// error classes, records network and auth failures for Health, and records
// the opt-out Twilio reports with 21610.
func (c *Channel) classify(ctx context.Context, d destination, err error, status int) error {
	te, ok := isAPIError(err)
	if !ok {
		if status == 0 { // refused before anything was sent
			c.noteAPI(connector.RedactError(err))
			return err
		}
		te = &apiError{Status: status}
	}
	switch {
	case te.Code == 20429 || te.Status == http.StatusTooManyRequests:
		c.noteAPI("")
		c.pacer.rateLimited(d.paceKey(), rateLimitedWait)
		return connector.RetryAfter(err, rateLimitedWait)
	case te.Code == 14107:
		c.noteAPI("")
		c.pacer.pairLimited(d.paceKey(), d.to)
		return connector.RetryAfter(err, c.cfg.RecipientWindow)
	case te.Code == 20003 || te.Status == http.StatusUnauthorized || te.Status == http.StatusForbidden ||
		te.Status == http.StatusNotFound:
		c.noteAPI(connector.RedactError(err))
		return fmt.Errorf("check account_sid and auth_token: %w", err)
	case te.Status >= 500 || te.Code == 0 && te.Status == 0:
		c.noteAPI("")
		return err
	case te.Code == codeOptedOut:
		c.noteAPI("")
		c.noteOptedOut(ctx, d.sender, d.to)
		return connector.Permanent(err)
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
	if _, ok := isAPIError(err); ok || status >= 300 {
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
// skip, and that has not failed (failedAtTwilio). It returns its SID, or ""
// when there is none.
//
// It lists by To and From without Twilio's DateSent filter, which leaves out
// messages that are still queued; Twilio lists newest first, and one page
// covers the last minutes of one customer's conversation.
func (c *Channel) reconcile(ctx context.Context, d destination, body string, start time.Time, skip string) (string, error) {
	to := d.to
	query := url.Values{"To": {to}, "PageSize": {strconv.Itoa(reconcilePage)}}
	if d.from != "" {
		query.Set("From", d.from)
	}
	page, err := c.listMessages(ctx, query)
	if err != nil {
		return "", fmt.Errorf("list messages: %w", err)
	}
	since := start.Truncate(time.Second).Add(-clockSkew)
	for _, m := range page.Messages[:min(len(page.Messages), reconcilePage)] {
		if m.SID == "" || m.SID == skip || m.To != to || m.Body != body {
			continue
		}
		if m.Direction != "" && m.Direction != "outbound-api" {
			continue
		}
		if failedAtTwilio(m.Status) { // did not reach the customer: not this message's send
			continue
		}
		created, err := time.Parse(time.RFC1123Z, m.DateCreated)
		if err != nil || created.Before(since) {
			continue
		}
		return m.SID, nil
	}
	return "", nil
}

// failedAtTwilio reports whether a listed message's status says it never
// reached the customer. The reconcile skips those: a message that failed
// that way and was sent again by an operator's retry must go out again,
// not be matched with its failed first send.
func failedAtTwilio(status string) bool {
	switch status {
	case "failed", "undelivered", "canceled":
		return true
	}
	return false
}

// codeOptedOut is Twilio's error for a recipient who opted out of the sender.
const codeOptedOut = 21610

// destination is where one message goes: the customer's number, the number
// it goes from ("" when a Messaging Service picks) and the sender their
// opt-out is recorded against.
type destination struct {
	to, from, sender, service string
}

// destination reads a conversation's address (see address.go).
func (c *Channel) destination(addr string) destination {
	customer, number := c.parseAddress(addr)
	return destination{to: customer, from: c.fromNumber(number), sender: c.optOutSender(number),
		service: c.cfg.MessagingServiceSID}
}

// paceKey is the sender whose queue at Twilio a message joins: its number,
// or the Messaging Service when the service picks one.
func (d destination) paceKey() string {
	if d.from != "" {
		return d.from
	}
	return d.service
}

// bodySegments is how many segments a create of body costs the sender's
// rate: an MMS without text counts as one.
func bodySegments(body string) int { return segment.Count(body).Segments }

const (
	reconcilePage = 50
	// clockSkew is how far Twilio's clock may be behind ours.
	clockSkew = 2 * time.Second
)
