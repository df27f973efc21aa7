package sms

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxWebhookBody bounds a webhook body. The core server applies its own
// limit; Twilio's are a few kilobytes.
const maxWebhookBody = 256 << 10

// maxMedia is the most media items Twilio attaches to one MMS.
const maxMedia = 10

// emptyTwiML answers an inbound message without replying to it.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Routes returns the webhooks: "POST /sms/NAME" for inbound messages and
// "POST /sms/NAME/status" for delivery reports. Both check X-Twilio-Signature
// against http.public_url and answer 2xx only once the core has committed
// what they carry, so Twilio retries anything not stored.
func (c *Channel) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + c.path:             http.HandlerFunc(c.serveInbound),
		"POST " + c.path + "/status": http.HandlerFunc(c.serveStatus),
	}
}

// serveInbound takes one customer message.
func (c *Channel) serveInbound(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verifiedForm(w, r)
	if !ok {
		return
	}
	sid, from := form.Get("MessageSid"), form.Get("From")
	if sid == "" || from == "" {
		c.log.Warn("inbound webhook without MessageSid or From", zap.String("message_sid", sid))
		http.Error(w, "MessageSid and From are required", http.StatusBadRequest)
		return
	}
	in := connector.Inbound{
		Channel:     c.name,
		Customer:    from,
		Text:        form.Get("Body"),
		Attachments: media(form),
		SourceID:    sid,
		Profile:     connector.Profile{Phone: from},
		ReceivedAt:  time.Now().UTC(),
	}
	if !c.screen(r.Context(), &in) {
		writeTwiML(w)
		return
	}
	if err := c.sink.Receive(r.Context(), in); err != nil {
		c.log.Error("inbound message not stored; Twilio will retry",
			zap.String("message_sid", sid), zap.Error(err))
		http.Error(w, "not stored", http.StatusInternalServerError)
		return
	}
	c.log.Debug("inbound message stored", zap.String("message_sid", sid),
		zap.Int("attachments", len(in.Attachments)))
	writeTwiML(w)
}

// screen is the seam for what SMS needs before a message reaches the core:
// carrier keywords (single-word STOP, START, HELP and their synonyms, which
// Twilio also acts on itself), answered here and not passed on as chat text.
// It reports whether in goes on to the core, and may adjust it. It passes
// everything on for now.
func (c *Channel) screen(_ context.Context, _ *connector.Inbound) bool {
	return true
}

// media returns the MMS attachments of an inbound form: MediaUrlN with
// MediaContentTypeN for N from 0 to NumMedia-1.
func media(form url.Values) []connector.Attachment {
	n, err := strconv.Atoi(form.Get("NumMedia"))
	if err != nil || n <= 0 {
		// Be lenient: use whatever MediaUrlN fields are there.
		n = maxMedia
	}
	var out []connector.Attachment
	for i := range min(n, maxMedia) {
		u := form.Get("MediaUrl" + strconv.Itoa(i))
		if u == "" {
			continue
		}
		out = append(out, connector.Attachment{URL: u, ContentType: form.Get("MediaContentType" + strconv.Itoa(i))})
	}
	return out
}

// serveStatus takes one delivery report.
func (c *Channel) serveStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verifiedForm(w, r)
	if !ok {
		return
	}
	sid, status := form.Get("MessageSid"), form.Get("MessageStatus")
	if sid == "" || status == "" {
		c.log.Warn("status callback without MessageSid or MessageStatus", zap.String("message_sid", sid))
		http.Error(w, "MessageSid and MessageStatus are required", http.StatusBadRequest)
		return
	}
	state, reason, final := deliveryOf(status, form.Get("ErrorCode"))
	if !final {
		c.log.Debug("status callback ignored", zap.String("message_sid", sid), zap.String("status", status))
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := c.sink.DeliveryStatus(r.Context(), c.name, sid, state, reason); err != nil {
		c.log.Error("delivery status not stored; Twilio will retry", zap.String("message_sid", sid),
			zap.String("status", status), zap.Error(err))
		http.Error(w, "not stored", http.StatusInternalServerError)
		return
	}
	c.log.Debug("delivery status stored", zap.String("message_sid", sid), zap.String("status", status))
	w.WriteHeader(http.StatusOK)
}

// verifiedForm reads the POST form and checks its X-Twilio-Signature. On
// failure it has answered (400 for an unreadable body, 403 for a bad
// signature) and logged the reason.
func (c *Channel) verifiedForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
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
	form, err := url.ParseQuery(string(body))
	if err != nil {
		c.log.Warn("webhook body is not a form", zap.String("path", r.URL.Path), zap.Error(err))
		http.Error(w, "body must be application/x-www-form-urlencoded", http.StatusBadRequest)
		return nil, false
	}
	if reason := c.checkSignature(r, body); reason != "" {
		c.log.Warn("webhook refused", zap.String("reason", reason), zap.String("path", r.URL.Path),
			zap.String("message_sid", form.Get("MessageSid")), zap.String("remote", r.RemoteAddr))
		http.Error(w, "invalid signature", http.StatusForbidden)
		return nil, false
	}
	return form, true
}

// checkSignature returns why r's signature is not valid, or "". Twilio signs
// the URL it called, which is http.public_url plus the path, never what this
// process sees behind a proxy.
func (c *Channel) checkSignature(r *http.Request, body []byte) string {
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" {
		return "missing X-Twilio-Signature"
	}
	u := c.publicURL + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	if !c.validator.ValidateBody(u, body, sig) {
		return "X-Twilio-Signature does not match " + u
	}
	return ""
}

func writeTwiML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	// An error here means Twilio went away; it retries, and the retry is a duplicate.
	_, _ = io.WriteString(w, emptyTwiML)
}
