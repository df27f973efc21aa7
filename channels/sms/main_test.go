package sms

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	companyNumber  = "+15551230000"
	customerNumber = "+15557654321"
)

// world is a channel wired to a fake Twilio, its webhooks served by an
// httptest server, and a recording sink.
type world struct {
	t      *testing.T
	twilio *smstest.Server
	ch     *Channel
	sink   *fakeSink
	srv    *httptest.Server
	public string // what the channel believes http.public_url is
	client *http.Client
	logs   *observer.ObservedLogs
	env    connector.ChannelEnv // what ch was built with
}

type setup struct {
	extra  string // more config lines, replacing the defaults' keys
	public string // default: the httptest server's URL
	token  string // default: the fake's token
	twilio smstest.Config
	// progress is the channel's SendProgress; nil builds it without one, as
	// without the core.
	progress connector.SendProgress
	// metrics is the channel's registry; nil: a private one.
	metrics prometheus.Registerer
	// optOuts and receipts are the core's stores of them; nil: none.
	optOuts  connector.OptOuts
	receipts connector.Receipts
}

func newWorld(t *testing.T, s setup) *world {
	t.Helper()
	if s.twilio.StatusDelay == 0 {
		s.twilio.StatusDelay = 5 * time.Millisecond
	}
	twilio, err := smstest.New(s.twilio)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twilio.Close)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	w := &world{t: t, twilio: twilio, sink: newFakeSink(), srv: srv, public: srv.URL,
		client: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(w.client.CloseIdleConnections)
	if s.public != "" {
		w.public = s.public
	}
	if s.token == "" {
		s.token = twilio.AuthToken()
	}
	block := dedupe(`account_sid = "` + twilio.AccountSID() + `"
auth_token = "` + s.token + `"
from = "` + companyNumber + `"
api_url = "` + twilio.URL() + `"
request_timeout = "2s"
mps = 0
` + s.extra)
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	w.logs = logs
	w.env = connector.ChannelEnv{Instance: instance(block), Logger: log, Sink: w.sink, PublicURL: w.public,
		Progress: s.progress, Metrics: s.metrics, OptOuts: s.optOuts, Receipts: s.receipts}
	w.ch, err = New(w.env)
	if err != nil {
		t.Fatal(err)
	}
	for p, h := range w.ch.Routes() {
		mux.Handle(p, h)
	}
	if err := w.ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.ch.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() {
		for _, e := range logs.All() {
			if strings.Contains(e.Message+" "+fieldsText(e), twilio.AuthToken()) {
				t.Errorf("the auth token was logged: %s %v", e.Message, e.ContextMap())
			}
		}
	})
	return w
}

func fieldsText(e observer.LoggedEntry) string { return fmt.Sprint(e.ContextMap()) }

// post sends form to the channel at path, signed with sig ("" for none).
func (w *world) post(path string, form url.Values, sig string) *http.Response {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp
}

// signedPost posts form signed for the public URL of path, as Twilio would.
func (w *world) signedPost(path string, form url.Values) *http.Response {
	w.t.Helper()
	return w.post(path, form, w.twilio.Sign(w.public+path, form))
}

// fakeSink records what the channel hands to the core.
type fakeSink struct {
	mu       sync.Mutex
	inbound  []connector.Inbound
	statuses []statusCall
	err      error         // returned by both methods
	gate     chan struct{} // when set, Receive waits until it is closed
}

type statusCall struct {
	Channel, RemoteID string
	State             connector.Delivery
	Reason            string
}

var _ connector.ChannelSink = (*fakeSink)(nil)

func newFakeSink() *fakeSink { return &fakeSink{} }

func (s *fakeSink) Receive(ctx context.Context, in connector.Inbound) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.inbound = append(s.inbound, in)
	return nil
}

func (s *fakeSink) DeliveryStatus(_ context.Context, channel, remoteID string, state connector.Delivery, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.statuses = append(s.statuses, statusCall{channel, remoteID, state, reason})
	return nil
}

func (s *fakeSink) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *fakeSink) received() []connector.Inbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]connector.Inbound(nil), s.inbound...)
}

func (s *fakeSink) delivery() []statusCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]statusCall(nil), s.statuses...)
}

// eventually fails t unless cond holds within 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
