package sms

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxWebhookBody bounds a webhook body. Twilio's are a few kilobytes: the
// largest, an inbound MMS, carries a 1600-character body (at most 6400
// bytes percent-encoded UTF-8 is 4800 raw) and ten media URLs.
const maxWebhookBody = 64 << 10

// maxMedia is the most media items Twilio attaches to one MMS.
const maxMedia = 10

// Field bounds of a webhook. Twilio's own values are far shorter (a SID is
// 34 characters, a number 16, a body 1600 UTF-16 units); the bounds keep
// what a forged or broken request can put in the store and the logs small.
const (
	maxSIDLen         = 64
	maxAddressLen     = 64 // E.164, a short code, "whatsapp:+..." or an alphanumeric sender
	maxInboundBody    = 4 * MaxBody
	maxMediaURLLen    = 2048
	maxContentTypeLen = 255
	maxStatusLen      = 32
	maxErrorCodeLen   = 10
)

// emptyTwiML answers an inbound message without replying to it.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// replyTwiML answers with one SMS; %s is the XML-escaped body.
const replyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Message>%s</Message></Response>`

// Routes returns the webhooks: "POST /sms/NAME" for inbound messages and
// "POST /sms/NAME/status" for delivery reports. Both check X-Twilio-Signature
// against http.public_url and answer 2xx only once the core has committed
// what they carry, so Twilio retries anything not stored.
func (c *Channel) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + c.path:             http.HandlerFunc(c.serveInbound),
		"POST " + c.path + "/status": http.HandlerFunc(c.serveStatus),
		"GET " + c.path + mediaRoute: http.HandlerFunc(c.serveMedia),
	}
}

// serveInbound takes one customer message.
func (c *Channel) serveInbound(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verifiedForm(w, r)
	if !ok {
		return
	}
	in, err := c.inboundOf(form)
	if err != nil {
		c.log.Warn("inbound webhook refused", zap.String("message_sid", clip(form.Get("MessageSid"), maxSIDLen)),
			zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	in.ReceivedAt = time.Now().UTC()
	v, err := c.take(r.Context(), form, in)
	if err != nil {
		http.Error(w, "not stored", http.StatusInternalServerError)
		return
	}
	writeTwiML(w, c.answer(v, in))
}

// verdict is what screening made of an inbound message.
type verdict struct {
	deliver bool    // it goes on to the core
	answer  keyword // the keyword acted on, answered when opt_out_replies is on
	word    string  // the keyword as written, normalised
}

// take screens and commits one inbound message. An error (logged) means it
// is not stored: the webhook answers 500 so that Twilio retries.
func (c *Channel) take(ctx context.Context, form webhookForm, in connector.Inbound) (verdict, error) {
	sid := in.SourceID
	v, err := c.screen(ctx, form, &in)
	if err != nil {
		c.log.Error("inbound message not screened; Twilio will retry", zap.String("message_sid", sid), zap.Error(err))
		return v, err
	}
	if !v.deliver {
		return v, nil
	}
	if err := c.sink.Receive(ctx, in); err != nil {
		if connector.IsPermanent(err) {
			// It can never be stored: a retry would fail the same way.
			c.log.Error("inbound message refused for good; acknowledged so that Twilio does not retry it",
				zap.String("message_sid", sid), zap.Error(err))
			return v, nil
		}
		c.log.Error("inbound message not stored; Twilio will retry",
			zap.String("message_sid", sid), zap.Error(err))
		return v, err
	}
	c.log.Debug("inbound message stored", zap.String("message_sid", sid),
		zap.Int("attachments", len(in.Attachments)), zap.Bool("end", in.End))
	return v, nil
}

// inboundOf is the message an inbound webhook's form carries: MessageSid,
// From (with To when it is one of numbers: the address), Body and the
// media. An error names the field that is missing or too long; ReceivedAt
// is left for the caller.
func (c *Channel) inboundOf(form webhookForm) (connector.Inbound, error) {
	in, err := inboundOf(c.name, form)
	if err != nil {
		return in, err
	}
	if to := form.Get("To"); len(to) <= maxAddressLen {
		in.Customer = c.addressOf(in.Customer, to)
	}
	c.linkMedia(in.SourceID, in.Attachments)
	return in, nil
}

// inboundOf reads the fields every inbound webhook has, for channel; the
// customer's address is their number.
func inboundOf(channel string, form webhookForm) (connector.Inbound, error) {
	sid, from, body := form.Get("MessageSid"), form.Get("From"), form.Get("Body")
	switch {
	case sid == "" || from == "":
		return connector.Inbound{}, errors.New("MessageSid and From are required")
	case len(sid) > maxSIDLen:
		return connector.Inbound{}, fmt.Errorf("MessageSid is longer than %d bytes", maxSIDLen)
	case len(from) > maxAddressLen:
		return connector.Inbound{}, fmt.Errorf("From is longer than %d bytes", maxAddressLen)
	case len(body) > maxInboundBody:
		return connector.Inbound{}, fmt.Errorf("Body is longer than %d bytes", maxInboundBody)
	}
	attachments, err := media(form)
	if err != nil {
		return connector.Inbound{}, err
	}
	return connector.Inbound{
		Channel:     channel,
		Customer:    from,
		Text:        body,
		Attachments: attachments,
		SourceID:    sid,
		Profile:     connector.Profile{Phone: from},
	}, nil
}

// screen applies the carrier keywords and opt-outs to in before it reaches
// the core, and says whether it goes on (possibly changed) and which
// keyword to answer:
//   - an opt-out keyword records the opt-out of the pair (our number or
//     Messaging Service, the customer) and goes on as End with OptedOut:
//     the core ends the open conversation telling the agent, and sends the
//     customer nothing;
//   - an opt-in keyword from an opted-out customer lifts the opt-out and
//     stops here; from anyone else it is a chat line ("yes");
//   - a help keyword goes on, answered, unless the customer opted out;
//   - anything else from an opted-out customer stops here, logged: no
//     conversation starts for a customer nothing may be sent to.
//
// Twilio's Advanced Opt-Out names the keyword it matched in OptOutType
// (its lists may be longer than ours); that wins. An error means the
// store could not be read or written: nothing was passed on.
func (c *Channel) screen(ctx context.Context, form webhookForm, in *connector.Inbound) (verdict, error) {
	kind, word := c.keywordOf(form, in.Text)
	customer, number := c.parseAddress(in.Customer)
	sender := c.optOutSender(number)
	if kind == keywordOptOut {
		if err := c.optOuts.SetOptOut(ctx, c.name, sender, customer, true); err != nil {
			return verdict{}, fmt.Errorf("record opt-out: %w", err)
		}
		c.log.Info("customer opted out", zap.String("message_sid", in.SourceID), zap.String("sender", sender))
		in.End, in.OptedOut = true, true
		return verdict{deliver: true, answer: kind, word: word}, nil
	}
	out, err := c.optOuts.OptedOut(ctx, c.name, sender, customer)
	if err != nil {
		return verdict{}, fmt.Errorf("read opt-out: %w", err)
	}
	switch {
	case out && kind == keywordOptIn:
		if err := c.optOuts.SetOptOut(ctx, c.name, sender, customer, false); err != nil {
			return verdict{}, fmt.Errorf("record opt-in: %w", err)
		}
		c.log.Info("customer opted back in", zap.String("message_sid", in.SourceID), zap.String("sender", sender))
		return verdict{answer: kind, word: word}, nil
	case out:
		c.log.Info("message from an opted-out customer dropped (they may opt in with a keyword)",
			zap.String("message_sid", in.SourceID), zap.String("sender", sender), zap.Stringer("keyword", kind))
		return verdict{}, nil
	case kind == keywordHelp:
		return verdict{deliver: true, answer: kind, word: word}, nil
	}
	return verdict{deliver: true}, nil
}

// keywordOf is the keyword a message is: Twilio's OptOutType when Advanced
// Opt-Out matched one, else ours.
func (c *Channel) keywordOf(form webhookForm, body string) (keyword, string) {
	kind, word := c.keywords.match(body)
	switch form.Get("OptOutType") {
	case "STOP":
		kind = keywordOptOut
	case "START":
		kind = keywordOptIn
	case "HELP":
		kind = keywordHelp
	}
	return kind, word
}

// answer is the reply the webhook's TwiML carries: the keyword reply when
// opt_out_replies is on and a keyword was acted on, else "". Twilio sends
// a webhook answer's <Message> once per acknowledged webhook, so a webhook
// retried after a 500 is not answered twice, and the reply goes from the
// number the customer wrote to. A reply that cannot be rendered is logged
// and left out.
func (c *Channel) answer(v verdict, in connector.Inbound) string {
	if !c.cfg.OptOutReplies || v.answer == keywordNone {
		return ""
	}
	_, number := c.parseAddress(in.Customer)
	text, err := c.keywords.reply(v.answer, replyData{Number: c.fromNumber(number), Keyword: v.word})
	if err != nil {
		c.log.Warn("keyword reply not rendered", zap.Stringer("keyword", v.answer), zap.Error(err))
		return ""
	}
	return text
}

// media returns the MMS attachments of an inbound form: MediaUrlN with
// MediaContentTypeN for N from 0 to NumMedia-1 (at most maxMedia). An error
// names a field that is too long.
func media(form webhookForm) ([]connector.Attachment, error) {
	n, err := strconv.Atoi(form.Get("NumMedia"))
	if err != nil || n <= 0 {
		// Be lenient: use whatever MediaUrlN fields are there.
		n = maxMedia
	}
	var out []connector.Attachment
	for i := range min(n, maxMedia) {
		urlKey, typeKey := "MediaUrl"+strconv.Itoa(i), "MediaContentType"+strconv.Itoa(i)
		u, typ := form.Get(urlKey), form.Get(typeKey)
		switch {
		case u == "":
			continue
		case len(u) > maxMediaURLLen:
			return nil, fmt.Errorf("%s is longer than %d bytes", urlKey, maxMediaURLLen)
		case len(typ) > maxContentTypeLen:
			return nil, fmt.Errorf("%s is longer than %d bytes", typeKey, maxContentTypeLen)
		}
		out = append(out, connector.Attachment{URL: u, ContentType: typ})
	}
	return out, nil
}

// serveStatus takes one delivery report.
func (c *Channel) serveStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verifiedForm(w, r)
	if !ok {
		return
	}
	st, err := statusOf(form)
	if err != nil {
		c.log.Warn("status callback refused", zap.String("message_sid", clip(form.Get("MessageSid"), maxSIDLen)),
			zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if st.code == strconv.Itoa(codeOptedOut) {
		c.statusOptedOut(r.Context(), form)
	}
	if !st.final {
		c.log.Debug("status callback ignored", zap.String("message_sid", st.sid), zap.String("status", st.status))
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := c.sink.DeliveryStatus(r.Context(), c.name, st.sid, st.state, st.reason); err != nil {
		c.log.Error("delivery status not stored; Twilio will retry", zap.String("message_sid", st.sid),
			zap.String("status", st.status), zap.Error(err))
		http.Error(w, "not stored", http.StatusInternalServerError)
		return
	}
	c.log.Debug("delivery status stored", zap.String("message_sid", st.sid), zap.String("status", st.status))
	w.WriteHeader(http.StatusOK)
}

// statusReport is what a status callback says about one message.
type statusReport struct {
	sid, status string
	state       connector.Delivery
	reason      string
	code        string // ErrorCode, "" without one
	final       bool   // false: an intermediate or unknown status, acknowledged and ignored
}

// statusOf reads a status callback's form. An error names the field that
// is missing or too long.
func statusOf(form webhookForm) (statusReport, error) {
	sid, status, code := form.Get("MessageSid"), form.Get("MessageStatus"), form.Get("ErrorCode")
	switch {
	case sid == "" || status == "":
		return statusReport{}, errors.New("MessageSid and MessageStatus are required")
	case len(sid) > maxSIDLen:
		return statusReport{}, fmt.Errorf("MessageSid is longer than %d bytes", maxSIDLen)
	case len(status) > maxStatusLen:
		return statusReport{}, fmt.Errorf("MessageStatus is longer than %d bytes", maxStatusLen)
	case len(code) > maxErrorCodeLen:
		return statusReport{}, fmt.Errorf("ErrorCode is longer than %d bytes", maxErrorCodeLen)
	}
	state, reason, final := deliveryOf(status, code)
	return statusReport{sid: sid, status: status, state: state, reason: reason, code: code, final: final}, nil
}

// statusOptedOut records the opt-out a status callback reports (a message
// that failed with 21610 after Twilio accepted it): To is the customer,
// From the number it went from.
func (c *Channel) statusOptedOut(ctx context.Context, form webhookForm) {
	to, from := form.Get("To"), form.Get("From")
	if to == "" || len(to) > maxAddressLen {
		return
	}
	number := ""
	if slices.Contains(c.cfg.Numbers, from) {
		number = from
	}
	c.noteOptedOut(ctx, c.optOutSender(number), to)
}

// verifiedForm reads the POST form and checks its X-Twilio-Signature. On
// failure it has answered (413 for a body over maxWebhookBody, 400 for a
// body that is not a form or repeats a parameter, 403 for a bad signature)
// and logged the reason.
func (c *Channel) verifiedForm(w http.ResponseWriter, r *http.Request) (webhookForm, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "cannot read body", http.StatusBadRequest)
		}
		c.log.Warn("webhook body unreadable", zap.String("path", r.URL.Path), zap.Error(err))
		return nil, false
	}
	form, err := parseWebhookForm(string(body))
	if err != nil {
		c.log.Warn("webhook body refused", zap.String("path", r.URL.Path), zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	if reason := c.checkSignature(r, form); reason != "" {
		c.log.Warn("webhook refused", zap.String("reason", reason), zap.String("path", r.URL.Path),
			zap.String("message_sid", clip(form.Get("MessageSid"), maxSIDLen)), zap.String("remote", r.RemoteAddr))
		http.Error(w, "invalid signature", http.StatusForbidden)
		return nil, false
	}
	return form, true
}

// checkSignature returns why r's signature of form is not valid, or "".
// Twilio signs the URL it called, which is http.public_url plus the path,
// never what this process sees behind a proxy.
func (c *Channel) checkSignature(r *http.Request, form webhookForm) string {
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" {
		return "missing X-Twilio-Signature"
	}
	u := c.publicURL + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	if !validSignature(c.cfg.AuthToken.Reveal(), u, form, sig) {
		// The query is left out: it is the caller's, and may be anything.
		return "X-Twilio-Signature does not match " + connector.RedactURL(u)
	}
	return ""
}

// clip cuts s to at most n bytes, for a log field taken from a request.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// writeTwiML acknowledges a webhook with TwiML that sends reply, or
// nothing when reply is "".
func writeTwiML(w http.ResponseWriter, reply string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	doc := emptyTwiML
	if reply != "" {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(reply)) // a strings.Builder never fails
		doc = fmt.Sprintf(replyTwiML, b.String())
	}
	// An error here means Twilio went away; it retries, and the retry is a duplicate.
	_, _ = io.WriteString(w, doc)
}
