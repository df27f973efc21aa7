package smstest

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

func TestWebhookSignsTheConfiguredURL(t *testing.T) {
	tests := []struct {
		name, url, path, query string
	}{
		{"plain", "https://connector.example.com/sms/main", "/sms/main", ""},
		{"default port written out", "https://connector.example.com:443/sms/main", "/sms/main", ""},
		{"other port and query", "https://connector.example.com:8443/sms/main?tenant=a%20b&x=1", "/sms/main", "tenant=a%20b&x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{MessagingServiceSID: msid})
			h := newHook(t)
			sid := s.InboundOffline(customer, ours, "hello")
			status, err := s.PostInbound(t.Context(), Webhook{URL: tt.url, Via: h.srv.URL}, sid)
			if err != nil || status != 200 {
				t.Fatalf("PostInbound = %d, %v", status, err)
			}
			r := h.wait(t, 1)[0]
			checkSigned(t, s, tt.url, r)
			u, _ := url.Parse(tt.url)
			if r.target.Path != tt.path || r.target.RawQuery != tt.query || r.host != u.Host {
				t.Errorf("request for %s?%s with Host %s; want %s?%s, Host %s", r.target.Path, r.target.RawQuery, r.host, tt.path, tt.query, u.Host)
			}
			if r.form.Get("MessagingServiceSid") != msid || r.form.Get("MessageSid") != sid {
				t.Errorf("form %v: want MessagingServiceSid %s and MessageSid %s", r.form, msid, sid)
			}
			// A port other than the default is signed, not dropped.
			v := client.NewRequestValidator(s.AuthToken())
			if u.Port() == "8443" && v.ValidateBody("https://"+u.Hostname()+u.RequestURI(), r.body, r.header.Get("X-Twilio-Signature")) {
				t.Error("signature validates without the port 8443")
			}
		})
	}
	s := start(t, Config{})
	for _, hook := range []Webhook{{URL: "/relative"}, {URL: "https://example.com/", Via: "127.0.0.1:1"}} {
		if _, err := s.PostWebhookTo(t.Context(), hook, url.Values{}); err == nil {
			t.Errorf("PostWebhookTo(%+v) succeeded", hook)
		}
	}
}

func TestCatchUpThroughTheList(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	h := newHook(t)
	gone := h.srv.URL
	h.srv.Close()
	begin := time.Now().Add(-2 * time.Second)
	var want []string
	for i := range 5 {
		if i%2 == 0 {
			sid, _, err := s.Inbound(t.Context(), gone, customer, ours, "while down "+itoa(i))
			if err == nil {
				t.Fatal("Inbound to a closed webhook succeeded")
			}
			want = append(want, sid)
		} else {
			want = append(want, s.InboundOffline(customer, ours, "offline "+itoa(i)))
		}
	}
	s.InboundOffline(customer, ours2, "to another number")
	// Newest first, in pages of two, filtered as a channel catching up would.
	got, err := apiFor(t, s).ListMessage((&openapi.ListMessageParams{}).
		SetTo(ours).SetDateSentAfter(begin).SetPageSize(2))
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	for _, m := range got {
		sids = append(sids, *m.Sid)
	}
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i]
	}
	if diff := cmp.Diff(want, sids); diff != "" {
		t.Errorf("caught-up sids (-want +got):\n%s", diff)
	}
	if _, err := s.PostInbound(t.Context(), Webhook{URL: gone}, "SM00000000000000000000000000000000"); err == nil {
		t.Error("PostInbound of an unknown sid succeeded")
	}
}
