package smstest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// checkSigned fails the test unless r carries Twilio's headers and a signature that
// twilio-go's RequestValidator accepts for u, both from the body and from the form.
func checkSigned(t *testing.T, s *Server, u string, r hookRequest) {
	t.Helper()
	v := client.NewRequestValidator(s.AuthToken())
	sig := r.header.Get("X-Twilio-Signature")
	params := map[string]string{}
	for k := range r.form {
		params[k] = r.form.Get(k)
	}
	if !v.ValidateBody(u, r.body, sig) || !v.Validate(u, params, sig) {
		t.Errorf("signature %q of %s does not validate", sig, r.body)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/x-www-form-urlencoded",
		"User-Agent":   "TwilioProxy/1.1",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if r.header.Get("I-Twilio-Idempotency-Token") == "" {
		t.Error("no I-Twilio-Idempotency-Token header")
	}
}

func TestStatusCallbacks(t *testing.T) {
	tests := []struct {
		name        string
		undelivered int
		want        []string // final MessageStatus and ErrorCode
	}{
		{"delivered", 0, []string{"sent", "", "delivered", ""}},
		{"undelivered", 30003, []string{"sent", "", "undelivered", "30003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{StatusDelay: 10 * time.Millisecond})
			s.SetUndelivered("+15557654321", tt.undelivered)
			h := newHook(t)
			cb := h.srv.URL + "/sms/main/status?x=1"
			m, err := apiFor(t, s).CreateMessage((&openapi.CreateMessageParams{}).
				SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi").SetStatusCallback(cb))
			if err != nil {
				t.Fatal(err)
			}
			reqs := h.wait(t, 2)
			var got []string
			for _, r := range reqs {
				checkSigned(t, s, cb, r)
				got = append(got, r.form.Get("MessageStatus"), r.form.Get("ErrorCode"))
				want := url.Values{
					"MessageSid": {*m.Sid}, "SmsSid": {*m.Sid}, "AccountSid": {s.AccountSID()},
					"From": {"+15551230000"}, "To": {"+15557654321"}, "ApiVersion": {"2010-04-01"},
					"MessageStatus": r.form["MessageStatus"], "SmsStatus": r.form["MessageStatus"],
				}
				if r.form.Has("ErrorCode") {
					want["ErrorCode"] = r.form["ErrorCode"]
				}
				if diff := cmp.Diff(want, r.form); diff != "" {
					t.Errorf("callback form (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("callbacks (-want +got):\n%s", diff)
			}
			waitCallbacks(t, s, 2)
			final := tt.want[2]
			if sent, _ := s.Get(*m.Sid); sent.Status != final || sent.ErrorCode != tt.undelivered {
				t.Errorf("Get = %+v, want status %s, error code %d", sent, final, tt.undelivered)
			}
		})
	}
}

func TestStatusCallbackRetries(t *testing.T) {
	s := start(t, Config{StatusDelay: 10 * time.Millisecond})
	h := newHook(t, 503, 200, 404)
	cb := h.srv.URL + "/status"
	_, err := apiFor(t, s).CreateMessage((&openapi.CreateMessageParams{}).
		SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi").SetStatusCallback(cb))
	if err != nil {
		t.Fatal(err)
	}
	reqs := h.wait(t, 3)
	if a, b := reqs[0].header.Get("I-Twilio-Idempotency-Token"), reqs[1].header.Get("I-Twilio-Idempotency-Token"); a != b {
		t.Errorf("retry has idempotency token %q, first attempt %q", b, a)
	}
	got := waitCallbacks(t, s, 2)
	for i := range got {
		got[i].SID = ""
	}
	want := []Callback{
		{Status: "sent", URL: cb, HTTPStatus: 200, Attempts: 2},
		{Status: "delivered", URL: cb, HTTPStatus: 404, Attempts: 1}, // a 4xx is not retried
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Callbacks (-want +got):\n%s", diff)
	}
}

func waitCallbacks(t *testing.T, s *Server, n int) []Callback {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Callbacks()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("Callbacks = %+v, want %d", s.Callbacks(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s.Callbacks()
}

func TestInbound(t *testing.T) {
	s := start(t, Config{MessagingServiceSID: "MG0123"})
	h := newHook(t)
	u := h.srv.URL + "/sms/main"
	sid, status, err := s.Inbound(t.Context(), u, "+15557654321", "+15551230000", "Hello 👋")
	if err != nil || status != 200 {
		t.Fatalf("Inbound = %d, %v; want 200", status, err)
	}
	if !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
		t.Errorf("sid = %q, want SM + 32 hex", sid)
	}
	r := h.wait(t, 1)[0]
	checkSigned(t, s, u, r)
	want := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {s.AccountSID()},
		"MessagingServiceSid": {"MG0123"}, "From": {"+15557654321"}, "To": {"+15551230000"},
		"Body": {"Hello 👋"}, "NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"},
		"ApiVersion": {"2010-04-01"}, "FromCountry": {"US"}, "ToCountry": {"US"},
		"FromState": {""}, "FromCity": {""}, "FromZip": {""}, "ToState": {""}, "ToCity": {""}, "ToZip": {""},
	}
	if diff := cmp.Diff(want, r.form); diff != "" {
		t.Errorf("inbound form (-want +got):\n%s", diff)
	}

	// A replay of the same form carries the same MessageSid, signature and token.
	if status, err := s.PostWebhook(t.Context(), u, r.form); err != nil || status != 200 {
		t.Fatalf("PostWebhook = %d, %v", status, err)
	}
	replay := h.wait(t, 2)[1]
	for _, k := range []string{"X-Twilio-Signature", "I-Twilio-Idempotency-Token"} {
		if replay.header.Get(k) != r.header.Get(k) {
			t.Errorf("replay %s = %q, first %q", k, replay.header.Get(k), r.header.Get(k))
		}
	}
	if sid2, _, _ := s.Inbound(t.Context(), u, "+15557654321", "+15551230000", "again"); sid2 == sid {
		t.Errorf("second Inbound reused MessageSid %s", sid)
	}
}

func TestInboundStopOptsOut(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	u := newHook(t).srv.URL
	c := apiFor(t, s)
	send := func() error {
		_, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi"))
		return err
	}
	s.Inbound(t.Context(), u, "+15557654321", "+15551230000", " stop ")
	if err := send(); err == nil || restError(t, err).Code != 21610 {
		t.Errorf("send after STOP: %v, want code 21610", err)
	}
	s.Inbound(t.Context(), u, "+15557654321", "+15551230000", "START")
	if err := send(); err != nil {
		t.Errorf("send after START: %v", err)
	}
}

func TestInboundUnreachable(t *testing.T) {
	s := start(t, Config{})
	h := newHook(t)
	u := h.srv.URL
	h.srv.Close()
	if _, status, err := s.Inbound(t.Context(), u, "+15557654321", "+15551230000", "hi"); err == nil {
		t.Errorf("Inbound to a closed webhook = %d, nil; want an error", status)
	}
}

func TestSign(t *testing.T) {
	// The example of twilio-go's own validator tests.
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	form := url.Values{
		"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"},
		"ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
	if got, want := sign("12345", u, form), "vOEb5UThFn24KEfnOFLQY2AE5FY="; got != want {
		t.Errorf("sign = %q, want %q", got, want)
	}

	s := start(t, Config{})
	v := client.NewRequestValidator(s.AuthToken())
	params := map[string]string{"Body": "a b&c=d", "From": "+15557654321", "MessageSid": "SM1"}
	form = url.Values{}
	for k, val := range params {
		form.Set(k, val)
	}
	target := "https://connector.example.com/sms/main?q=1"
	sig := s.Sign(target, form)
	if !v.Validate(target, params, sig) {
		t.Errorf("twilio-go rejects Sign(%q, %v) = %q", target, form, sig)
	}
	params["Body"] = "tampered"
	if v.Validate(target, params, sig) {
		t.Error("twilio-go accepts Sign's signature for a tampered body")
	}
	other := client.NewRequestValidator("0123456789abcdef0123456789abcdef")
	if other.Validate(target, map[string]string{"MessageSid": "SM1"}, s.Sign(target, url.Values{"MessageSid": {"SM1"}})) {
		t.Error("a signature validates with another auth token")
	}
}

func TestCloseIsIdempotentAndStopsWork(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	if _, err := apiFor(t, s).CreateMessage((&openapi.CreateMessageParams{}).
		SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi").SetStatusCallback("http://127.0.0.1:1/x")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if _, _, err := s.Inbound(t.Context(), "http://127.0.0.1:1/x", "+15557654321", "+15551230000", "hi"); err == nil {
		t.Error("Inbound after Close succeeded")
	}
	if n := len(s.Sent()); n != 1 {
		t.Errorf("after Close, Sent has %d messages, want 1", n)
	}
}

// TestWebhooksReuseConnections: rounds of webhooks posted at once to one
// receiver reuse the connections of the rounds before, beyond Go's
// default of two kept per host, as Twilio's pooled senders do.
func TestWebhooksReuseConnections(t *testing.T) {
	const inFlight, rounds = 64, 5
	var (
		opened  atomic.Int64
		mu      sync.Mutex
		arrived *sync.WaitGroup // this round's requests that reached the handler
		release chan struct{}   // closed once they all did
	)
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a, rel := arrived, release
		mu.Unlock()
		a.Done()
		<-rel // every round holds inFlight requests at once
	}))
	hook.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	hook.Start()
	t.Cleanup(hook.Close)
	s := start(t, Config{})
	for range rounds {
		mu.Lock()
		arrived, release = new(sync.WaitGroup), make(chan struct{})
		arrived.Add(inFlight)
		a, rel := arrived, release
		mu.Unlock()
		var posted sync.WaitGroup
		for i := range inFlight {
			posted.Go(func() {
				code, err := s.PostWebhook(context.Background(), hook.URL+"/sms", url.Values{"Body": {strconv.Itoa(i)}})
				if err != nil || code != http.StatusOK {
					t.Errorf("PostWebhook: %d, %v", code, err)
				}
			})
		}
		a.Wait()
		close(rel)
		posted.Wait()
	}
	// The first round opens inFlight connections; the next ones need none.
	if n := opened.Load(); n > inFlight {
		t.Errorf("%d rounds of %d webhooks at once opened %d connections, want %d", rounds, inFlight, n, inFlight)
	}
}
