package sms

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

func inboundForm(w *world, sid, body string) url.Values {
	return url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {w.twilio.AccountSID()},
		"From": {customerNumber}, "To": {companyNumber}, "Body": {body}, "NumMedia": {"0"}}
}

const sid1 = "SM0123456789abcdef0123456789abcdef"

func TestInboundFromTwilio(t *testing.T) {
	w := newWorld(t, setup{})
	before := time.Now().Round(0) // ReceivedAt is wall time, without a monotonic reading
	sid, status, err := w.twilio.Inbound(context.Background(), w.public+"/sms/main", customerNumber, companyNumber, "Hello <there> & you")
	after := time.Now().Round(0)
	if err != nil || status != http.StatusOK {
		t.Fatalf("Inbound = %d, %v; want 200", status, err)
	}
	got := w.sink.received()
	want := []connector.Inbound{{Channel: "sms.main", Customer: customerNumber, Text: "Hello <there> & you",
		SourceID: sid, Profile: connector.Profile{Phone: customerNumber}}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(connector.Inbound{}, "ReceivedAt")); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	if len(got) == 1 && (got[0].ReceivedAt.Before(before) || got[0].ReceivedAt.After(after)) {
		t.Errorf("ReceivedAt = %v, want the time of the webhook, between %v and %v", got[0].ReceivedAt, before, after)
	}
}

func TestInboundAnswersEmptyTwiML(t *testing.T) {
	w := newWorld(t, setup{})
	resp := w.signedPost("/sms/main", inboundForm(w, sid1, "hi"))
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/xml" ||
		string(body) != `<?xml version="1.0" encoding="UTF-8"?><Response></Response>` {
		t.Errorf("answer %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestInboundAnswersOnlyOnceStored(t *testing.T) {
	w := newWorld(t, setup{})
	w.sink.gate = make(chan struct{})
	done := make(chan int)
	go func() {
		resp := w.signedPost("/sms/main", inboundForm(w, sid1, "hi"))
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case code := <-done:
		t.Fatalf("answered %d before the sink returned", code)
	case <-time.After(100 * time.Millisecond):
	}
	close(w.sink.gate)
	if code := <-done; code != http.StatusOK {
		t.Errorf("status %d, want 200", code)
	}
	if n := len(w.sink.received()); n != 1 {
		t.Errorf("%d received", n)
	}
}

func TestInboundSinkFailure(t *testing.T) {
	w := newWorld(t, setup{})
	w.sink.setErr(errors.New("disk full"))
	resp := w.signedPost("/sms/main", inboundForm(w, sid1, "hi"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500 so that Twilio retries", resp.StatusCode)
	}
	// A message the core can never store is acknowledged, not retried
	// forever (the contract's Permanent).
	w.sink.setErr(connector.Permanent(errors.New("no route for channel sms.main")))
	resp = w.signedPost("/sms/main", inboundForm(w, "SM0123456789abcdef0123456789abcdee", "hi"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("permanent refusal: status %d, want 200", resp.StatusCode)
	}
}

func TestInboundDuplicateIsPassedOn(t *testing.T) {
	// The core de-duplicates by SourceID and returns nil for a duplicate.
	w := newWorld(t, setup{})
	form := inboundForm(w, sid1, "hi")
	for range 2 {
		resp := w.signedPost("/sms/main", form)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	for _, in := range w.sink.received() {
		if in.SourceID != sid1 {
			t.Errorf("SourceID %q", in.SourceID)
		}
	}
}

func TestInboundSignatureRefused(t *testing.T) {
	w := newWorld(t, setup{})
	form := inboundForm(w, sid1, "forged")
	tampered := inboundForm(w, sid1, "tampered")
	tests := []struct {
		name string
		form url.Values
		sig  string
	}{
		{"missing", form, ""},
		{"garbage", form, "bm90IGEgc2lnbmF0dXJl"},
		{"other path", form, w.twilio.Sign(w.public+"/sms/other", form)},
		{"status path", form, w.twilio.Sign(w.public+"/sms/main/status", form)},
		{"body changed", tampered, w.twilio.Sign(w.public+"/sms/main", form)},
		{"with a query Twilio did not call", form, w.twilio.Sign(w.public+"/sms/main?x=1", form)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := w.post("/sms/main", tt.form, tt.sig)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	if got := w.sink.received(); len(got) != 0 {
		t.Errorf("sink got %d messages from forged requests", len(got))
	}
	warns := w.logs.FilterMessage("webhook refused").FilterField(zap.String("message_sid", sid1)).All()
	if len(warns) != len(tests) {
		t.Errorf("%d refusals logged with the MessageSid, want %d", len(warns), len(tests))
	}
	for _, e := range warns {
		if e.ContextMap()["reason"] == "" {
			t.Errorf("refusal logged without a reason: %v", e.ContextMap())
		}
	}
}

// TestInboundBehindProxy checks that signatures are computed over
// http.public_url, not over the address the request reached.
func TestInboundBehindProxy(t *testing.T) {
	w := newWorld(t, setup{public: "https://connector.example.com"})
	form := inboundForm(w, sid1, "hi")
	resp := w.post("/sms/main", form, w.twilio.Sign(w.srv.URL+"/sms/main", form))
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("signed for the local URL: status %d, want 403", resp.StatusCode)
	}
	resp = w.post("/sms/main", form, w.twilio.Sign("https://connector.example.com/sms/main", form))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signed for the public URL: status %d, want 200", resp.StatusCode)
	}
	// Twilio signs the URL with and without the default port alike.
	resp = w.post("/sms/main", form, w.twilio.Sign("https://connector.example.com:443/sms/main", form))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signed with :443: status %d, want 200", resp.StatusCode)
	}
}

func TestInboundWithQuery(t *testing.T) {
	w := newWorld(t, setup{})
	form := inboundForm(w, sid1, "hi")
	resp := w.post("/sms/main?source=sms", form, w.twilio.Sign(w.public+"/sms/main?source=sms", form))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}

func TestInboundMissingFields(t *testing.T) {
	w := newWorld(t, setup{})
	for _, key := range []string{"MessageSid", "From"} {
		form := inboundForm(w, sid1, "hi")
		form.Del(key)
		resp := w.signedPost("/sms/main", form)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("without %s: status %d, want 400", key, resp.StatusCode)
		}
	}
	if n := len(w.sink.received()); n != 0 {
		t.Errorf("%d received", n)
	}
}

func TestInboundMedia(t *testing.T) {
	w := newWorld(t, setup{})
	form := inboundForm(w, sid1, "")
	form.Set("NumMedia", "2")
	form.Set("MediaUrl0", "https://api.twilio.com/media/ME1")
	form.Set("MediaContentType0", "image/jpeg")
	form.Set("MediaUrl1", "https://api.twilio.com/media/ME2")
	form.Set("MediaContentType1", "application/pdf")
	resp := w.signedPost("/sms/main", form)
	resp.Body.Close()
	got := w.sink.received()
	if resp.StatusCode != http.StatusOK || len(got) != 1 {
		t.Fatalf("status %d, %d received", resp.StatusCode, len(got))
	}
	// The agent gets links to connectord, named by Twilio's media SIDs.
	want := []connector.Attachment{
		{URL: w.public + "/sms/main/media/ME1/ME1.jpg?", Name: "ME1.jpg", ContentType: "image/jpeg"},
		{URL: w.public + "/sms/main/media/ME2/ME2.pdf?", Name: "ME2.pdf", ContentType: "application/pdf"},
	}
	prefix := cmp.Transformer("prefix", func(a connector.Attachment) connector.Attachment {
		a.URL, _, _ = strings.Cut(a.URL, "?")
		return a
	})
	for i := range want {
		want[i].URL = strings.TrimSuffix(want[i].URL, "?")
	}
	if diff := cmp.Diff(want, got[0].Attachments, prefix); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestInboundNotAForm(t *testing.T) {
	w := newWorld(t, setup{})
	resp, err := w.client.Post(w.srv.URL+"/sms/main", "application/x-www-form-urlencoded", strings.NewReader("a=%zz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestStatusCallbacks(t *testing.T) {
	tests := []struct {
		status, code string
		want         []statusCall
	}{
		{"queued", "", nil},
		{"accepted", "", nil},
		{"sending", "", nil},
		{"sent", "", nil}, // the core's sent mark already says it
		{"delivered", "", []statusCall{{"sms.main", sid1, connector.DeliveryDelivered, ""}}},
		{"undelivered", "30003", []statusCall{{"sms.main", sid1, connector.DeliveryFailed,
			"twilio ErrorCode 30003 (unreachable destination handset)"}}},
		{"failed", "30007", []statusCall{{"sms.main", sid1, connector.DeliveryFailed,
			"twilio ErrorCode 30007 (filtered by the carrier)"}}},
	}
	w := newWorld(t, setup{})
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			before := len(w.sink.delivery())
			form := url.Values{"MessageSid": {sid1}, "MessageStatus": {tt.status}, "SmsStatus": {tt.status},
				"AccountSid": {w.twilio.AccountSID()}, "From": {companyNumber}, "To": {customerNumber}}
			if tt.code != "" {
				form.Set("ErrorCode", tt.code)
			}
			resp := w.signedPost("/sms/main/status", form)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
			if diff := cmp.Diff(tt.want, w.sink.delivery()[before:], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("DeliveryStatus calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusCallbackRefusedAndFailing(t *testing.T) {
	w := newWorld(t, setup{})
	form := url.Values{"MessageSid": {sid1}, "MessageStatus": {"delivered"}}
	resp := w.post("/sms/main/status", form, w.twilio.Sign(w.public+"/sms/main", form))
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("signed for another URL: status %d, want 403", resp.StatusCode)
	}
	resp = w.signedPost("/sms/main/status", url.Values{"MessageStatus": {"delivered"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("without MessageSid: status %d, want 400", resp.StatusCode)
	}
	w.sink.setErr(errors.New("database gone"))
	resp = w.signedPost("/sms/main/status", form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("sink failing: status %d, want 500", resp.StatusCode)
	}
	if n := len(w.sink.delivery()); n != 0 {
		t.Errorf("%d DeliveryStatus calls recorded", n)
	}
}

// firstValues is form with only the first value of each key: what a
// validator that reads first values only (twilio-go's) checks.
func firstValues(form url.Values) url.Values {
	out := url.Values{}
	for k, v := range form {
		out.Set(k, v[0])
	}
	return out
}

// TestRepeatedKeyRefused: a body with a key given twice, signed over the
// first values only, is refused with 400 naming the key at both webhooks,
// and nothing reaches the core.
func TestRepeatedKeyRefused(t *testing.T) {
	w := newWorld(t, setup{})
	inbound := inboundForm(w, sid1, "signed words")
	inbound.Add("Body", "smuggled words")
	status := url.Values{"MessageSid": {sid1}, "MessageStatus": {"delivered"}}
	status.Add("MessageStatus", "failed")
	for _, tc := range []struct {
		path string
		form url.Values
		key  string
	}{
		{"/sms/main", inbound, "Body"},
		{"/sms/main/status", status, "MessageStatus"},
	} {
		resp := w.post(tc.path, tc.form, w.twilio.Sign(w.public+tc.path, firstValues(tc.form)))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"`+tc.key+`"`) {
			t.Errorf("%s: answer %d %q, want 400 naming %q", tc.path, resp.StatusCode, body, tc.key)
		}
	}
	if n, m := len(w.sink.received()), len(w.sink.delivery()); n+m != 0 {
		t.Errorf("stored %d messages and %d statuses from bodies with a repeated key", n, m)
	}
}

// TestInboundFieldBounds: a signed webhook whose fields are longer than
// Twilio ever sends is refused with 400 naming the field, and a body past
// the limit with 413; nothing reaches the core.
func TestInboundFieldBounds(t *testing.T) {
	w := newWorld(t, setup{})
	for _, tc := range []struct {
		key, value string
	}{
		{"Body", strings.Repeat("é", maxInboundBody/2+1)},
		{"From", "+1" + strings.Repeat("5", maxAddressLen)},
		{"MessageSid", "SM" + strings.Repeat("0", maxSIDLen)},
		{"MediaUrl0", "https://example.com/" + strings.Repeat("m", maxMediaURLLen)},
		{"MediaContentType0", strings.Repeat("t", maxContentTypeLen+1)},
	} {
		form := inboundForm(w, sid1, "hi")
		form.Set("MediaUrl0", "https://example.com/m.png")
		form.Set(tc.key, tc.value)
		resp := w.signedPost("/sms/main", form)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.key+" is longer") {
			t.Errorf("long %s: answer %d %q, want 400 naming it", tc.key, resp.StatusCode, body)
		}
	}
	form := inboundForm(w, sid1, strings.Repeat("x", maxWebhookBody))
	resp := w.signedPost("/sms/main", form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: status %d, want 413", len(form.Encode()), resp.StatusCode)
	}
	if n := len(w.sink.received()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
	// The largest message Twilio sends still goes through.
	resp = w.signedPost("/sms/main", inboundForm(w, sid1, strings.Repeat("😀", MaxBody/2)))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a 1600-unit body: status %d, want 200", resp.StatusCode)
	}
}
