package smstest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start starts a Server that the test closes when it ends.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// rewrite sends requests for https://api.twilio.com to the fake, as connectord's
// api_url setting does. It bounds each exchange by timeout itself and hands back the
// body read in full: twilio-go never closes the body of an error answer, so with
// http.Client.Timeout and a RoundTripper that is not an *http.Transport a goroutine
// would linger until the timeout after every error answer.
type rewrite struct {
	base    *url.URL
	next    http.RoundTripper
	timeout time.Duration
}

func (rw rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), rw.timeout)
	defer cancel()
	req = req.Clone(ctx)
	req.URL.Scheme, req.URL.Host, req.Host = rw.base.Scheme, rw.base.Host, ""
	resp, err := rw.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// api returns a twilio-go Messages client of s authenticating as user:pass, with the
// given HTTP timeout.
func api(t *testing.T, s *Server, user, pass string, timeout time.Duration) *openapi.ApiService {
	t.Helper()
	base, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rewrite{base, tr, timeout}},
	}
	c.SetAccountSid(user)
	return openapi.NewApiServiceWithClient(c)
}

// apiFor returns a well-authenticated client of s.
func apiFor(t *testing.T, s *Server) *openapi.ApiService {
	return api(t, s, s.AccountSID(), s.AuthToken(), 5*time.Second)
}

// restError returns err as a *client.TwilioRestError, failing the test otherwise.
func restError(t *testing.T, err error) *client.TwilioRestError {
	t.Helper()
	var re *client.TwilioRestError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *client.TwilioRestError", err, err)
	}
	return re
}

// hook is a webhook receiver that records every request and answers with the next
// status of its script (200 once the script is used up).
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []hookRequest
	script []int
	got    chan struct{}
}

type hookRequest struct {
	header http.Header
	body   []byte
	form   url.Values
	host   string   // the Host header
	target *url.URL // path and query as requested
}

func newHook(t *testing.T, script ...int) *hook {
	t.Helper()
	h := &hook{script: script, got: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	h.mu.Lock()
	h.reqs = append(h.reqs, hookRequest{r.Header.Clone(), body, form, r.Host, r.URL})
	status := http.StatusOK
	if len(h.script) > 0 {
		status, h.script = h.script[0], h.script[1:]
	}
	h.mu.Unlock()
	w.WriteHeader(status)
	h.got <- struct{}{}
}

// wait waits until the hook has received n requests and returns them.
func (h *hook) wait(t *testing.T, n int) []hookRequest {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		reqs := append([]hookRequest(nil), h.reqs...)
		h.mu.Unlock()
		if len(reqs) >= n {
			return reqs
		}
		select {
		case <-h.got:
		case <-timeout:
			t.Fatalf("hook got %d requests, want %d", len(reqs), n)
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return strconv.Itoa(i) }

func errorIs(err, target error) bool { return errors.Is(err, target) }
