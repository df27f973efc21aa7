package sms

import (
	"context"
	"net/http"
	"testing"

	"github.com/connectord/connectord/channels/sms/smstest"
)

// Twilio signs the webhook URL exactly as configured in its console: a
// port written out (even the scheme's default), a query string, a path
// under http.public_url. The request reaches connectord through a proxy,
// at another address; the signature is checked against public_url + the
// path and query the proxy forwarded.
func TestSignedAsConfiguredAtTwilio(t *testing.T) {
	tests := []struct {
		name, public, hook string
		want               int
	}{
		{"port and query", "https://connector.example.com:8443", "https://connector.example.com:8443/sms/main?tenant=a%20b&x=1", 200},
		{"default port written at Twilio", "https://connector.example.com", "https://connector.example.com:443/sms/main", 200},
		{"default port written in public_url", "https://connector.example.com:443", "https://connector.example.com/sms/main?q", 200},
		{"a path prefix", "https://example.com/connectord", "https://example.com/connectord/sms/main", 200},
		{"another host", "https://connector.example.com", "https://evil.example.com/sms/main", 403},
		{"another port", "https://connector.example.com:8443", "https://connector.example.com:9443/sms/main", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, setup{public: tt.public,
				twilio: smstest.Config{MessagingServiceSID: "MG0123456789abcdef0123456789abcdef"}})
			// What the proxy forwards: the configured URL's path (less the
			// public URL's own path) and query.
			hook := smstest.Webhook{URL: tt.hook, Via: w.srv.URL}
			if tt.name == "a path prefix" {
				w.mountUnder("/connectord")
			}
			sid := w.twilio.InboundOffline(customerNumber, companyNumber, "via a messaging service")
			status, err := w.twilio.PostInbound(context.Background(), hook, sid)
			if err != nil || status != tt.want {
				t.Fatalf("webhook answered %d, %v; want %d", status, err, tt.want)
			}
			if n := len(w.sink.received()); (n == 1) != (tt.want == http.StatusOK) {
				t.Errorf("%d messages stored", n)
			}
		})
	}
}

// mountUnder serves the channel's routes also under prefix, stripped, as a
// proxy that publishes connectord under a path does.
func (w *world) mountUnder(prefix string) {
	inner := w.srv.Config.Handler
	w.srv.Config.Handler = http.StripPrefix(prefix, inner)
}
