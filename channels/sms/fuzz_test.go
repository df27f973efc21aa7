package sms

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
)

// FuzzInboundWebhook feeds webhook bodies through the form parser and the
// inbound mapping: never a panic, and what reaches the core stays within
// the field bounds.
func FuzzInboundWebhook(f *testing.F) {
	f.Add("MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B15557654321&To=%2B15551230000&Body=hi&NumMedia=0")
	f.Add("MessageSid=SM1&From=%2B1555&NumMedia=2&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm%2FME1&MediaContentType0=image%2Fjpeg&MediaUrl1=x")
	f.Add("MessageSid=SM1&From=a&Body=a&Body=b")
	f.Add("MessageSid=SM1&From=a&NumMedia=99999999999999999999&MediaUrl9=u&MediaUrl10=v")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := parseWebhookForm(body)
		if err != nil {
			return
		}
		if len(form) > maxFormParams {
			t.Fatalf("%d parameters kept", len(form))
		}
		in, err := inboundOf("sms.main", form)
		if err != nil {
			if in.SourceID != "" || in.Customer != "" {
				t.Fatalf("error %v with a message %+v", err, in)
			}
			return
		}
		if in.SourceID == "" || len(in.SourceID) > maxSIDLen || in.Customer == "" || len(in.Customer) > maxAddressLen ||
			len(in.Text) > maxInboundBody || len(in.Attachments) > maxMedia || in.Profile.Phone != in.Customer {
			t.Fatalf("out of bounds: sid %d, from %d, body %d, %d attachments",
				len(in.SourceID), len(in.Customer), len(in.Text), len(in.Attachments))
		}
		for _, a := range in.Attachments {
			if a.URL == "" || len(a.URL) > maxMediaURLLen || len(a.ContentType) > maxContentTypeLen {
				t.Fatalf("attachment out of bounds: %d / %d bytes", len(a.URL), len(a.ContentType))
			}
		}
	})
}

// FuzzStatusCallback feeds status callback bodies through the form parser
// and the status mapping: only final states are stored, with a short reason.
func FuzzStatusCallback(f *testing.F) {
	f.Add("MessageSid=SM1&MessageStatus=delivered")
	f.Add("MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003")
	f.Add("MessageSid=SM1&MessageStatus=failed&ErrorCode=0")
	f.Add("MessageSid=SM1&MessageStatus=queued")
	f.Add("MessageSid=SM1&MessageStatus=sent&MessageStatus=failed")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := parseWebhookForm(body)
		if err != nil {
			return
		}
		st, err := statusOf(form)
		if err != nil {
			return
		}
		if st.sid == "" || len(st.sid) > maxSIDLen || len(st.status) > maxStatusLen {
			t.Fatalf("out of bounds: sid %d, status %d bytes", len(st.sid), len(st.status))
		}
		switch st.state {
		case connector.DeliverySent, connector.DeliveryDelivered:
			if !st.final || st.reason != "" {
				t.Fatalf("%+v", st)
			}
		case connector.DeliveryFailed:
			if !st.final || !strings.HasPrefix(st.reason, "twilio ") || len(st.reason) > 100 {
				t.Fatalf("%+v", st)
			}
		case "":
			if st.final {
				t.Fatalf("final without a state: %+v", st)
			}
		default:
			t.Fatalf("unknown state %q", st.state)
		}
	})
}

// FuzzAPIError feeds error answers through their decoder: the message kept
// is short and valid UTF-8 when the input was.
func FuzzAPIError(f *testing.F) {
	f.Add(400, []byte(`{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`))
	f.Add(429, []byte(`{"code":"20429","message":"Too Many Requests"}`))
	f.Add(502, []byte(`<html>Bad Gateway</html>`))
	f.Add(400, []byte(`{"code":-1,"message":null}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeAPIError(status, body)
		if e.Status != status || e.Code < 0 || len(e.Message) > maxErrorMessage+len("...") {
			t.Fatalf("%+v", e)
		}
		if utf8.Valid(body) && !utf8.ValidString(e.Message) {
			t.Fatalf("message cut inside a rune: %q", e.Message)
		}
		if len(e.Error()) > maxErrorMessage+64 {
			t.Fatalf("error text of %d bytes", len(e.Error()))
		}
	})
}

// FuzzProgressRecord feeds stored send-progress records to the decoder:
// never a panic, and a record it accepts fits the message and re-encodes
// within the record bound.
func FuzzProgressRecord(f *testing.F) {
	f.Add([]byte(`{"parts":2,"sent":1,"sid":"SM0123456789abcdef0123456789abcdef"}`), 2)
	f.Add([]byte(`{"parts":1,"sent":0,"pending":"2026-12-04T18:16:35.123456789Z"}`), 1)
	f.Add([]byte(`{"parts":2,"sent":-1}`), 2)
	f.Add([]byte(`{"parts":2,"sent":1,"sid":"SM1"} {}`), 2)
	f.Fuzz(func(t *testing.T, b []byte, parts int) {
		p, err := decodeProgress(b, parts)
		if err != nil {
			if !errors.Is(err, errBadProgress) {
				t.Fatalf("error %v is not errBadProgress", err)
			}
			return
		}
		if p.Parts != parts || p.Sent < 0 || p.Sent > p.Parts || len(p.SID) > maxSIDLen {
			t.Fatalf("accepted %+v for %d parts", p, parts)
		}
		out, err := json.Marshal(p)
		if err != nil || len(out) > maxProgressRecord {
			t.Fatalf("re-encoded to %d bytes, %v", len(out), err)
		}
	})
}

// FuzzWebhookSignature feeds a body, a signature and a request URI through
// the whole check: never a panic; a signature is accepted only when it is
// the one Twilio would compute for the URL (in one of its port spellings);
// errors stay short.
func FuzzWebhookSignature(f *testing.F) {
	const token = "0123456789abcdef0123456789abcdef"
	good := "MessageSid=SM1&From=%2B1555&Body=hi"
	form, _ := parseWebhookForm(good)
	f.Add(good, twilioSignature(token, "https://c.example.com/sms/main?x=1", form), "https://c.example.com", "/sms/main?x=1")
	f.Add(good, twilioSignature(token, "https://c.example.com:443/sms/main", form), "https://c.example.com", "/sms/main")
	f.Add("a=1&a=2", "", "http://[::1]:80", "/%zz")
	f.Add("%", "x", "https://h:99999", "/")
	f.Fuzz(func(t *testing.T, body, sig, public, uri string) {
		if len(body) > maxWebhookBody || len(public) > 512 || len(uri) > 2048 {
			return
		}
		form, err := parseWebhookForm(body)
		if err != nil {
			if len(err.Error()) > 256 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		u := public + uri
		ok := validSignature(token, u, form, sig)
		if !ok {
			return
		}
		for _, v := range portVariants(u) {
			if twilioSignature(token, v, form) == sig {
				return
			}
		}
		t.Fatalf("accepted %q for %q, which no variant has", sig, u)
	})
}
