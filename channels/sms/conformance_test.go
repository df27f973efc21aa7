package sms

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
)

// TestConformance runs the core's channel suite against the fake Twilio.
func TestConformance(t *testing.T) {
	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer twilio.Close()
	var current atomic.Pointer[http.ServeMux] // the routes of the channel the suite runs now
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().ServeHTTP(w, r)
	}))
	defer srv.Close()
	var seq atomic.Int64
	var base atomic.Int64 // messages Twilio had sent before the running subtest
	connectortest.TestChannel(t, connectortest.ChannelFixture{
		Start: func(t *testing.T, sink connector.ChannelSink, progress connector.SendProgress) connector.Channel {
			block := `account_sid = "` + twilio.AccountSID() + `"
auth_token = "` + twilio.AuthToken() + `"
from = "` + companyNumber + `"
api_url = "` + twilio.URL() + `"
request_timeout = "2s"
`
			ch, err := New(connector.ChannelEnv{Instance: instance(block), Logger: zap.NewNop(), Sink: sink,
				PublicURL: srv.URL, Progress: progress})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			for p, h := range ch.Routes() {
				mux.Handle(p, h)
			}
			current.Store(mux)
			base.Store(int64(len(twilio.Sent())))
			if err := ch.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return ch
		},
		Customer: customerNumber,
		Write: func(t *testing.T, text string) (bool, func() bool) {
			form := url.Values{"MessageSid": {newTestSID(seq.Add(1))}, "AccountSid": {twilio.AccountSID()},
				"From": {customerNumber}, "To": {companyNumber}, "Body": {text}, "NumMedia": {"0"}}
			post := func() bool {
				code, err := twilio.PostWebhook(context.Background(), srv.URL+"/sms/main", form)
				if err != nil {
					t.Fatal(err)
				}
				return code == http.StatusOK
			}
			return post(), post
		},
		Received: func(t *testing.T) []string {
			var out []string
			for _, s := range twilio.Sent()[base.Load():] {
				if s.To == customerNumber {
					out = append(out, s.Body)
				}
			}
			return out
		},
		Ignore: []goleak.Option{
			// Keep-alive connections between the fake and the test server.
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		},
	})
}

func newTestSID(n int64) string {
	const hex = "0123456789abcdef"
	b := []byte("SM00000000000000000000000000000000")
	for i := len(b) - 1; n > 0; i-- {
		b[i] = hex[n%16]
		n /= 16
	}
	return string(b)
}
