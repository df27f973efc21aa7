package cention

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// restVendor is a vendor whose base_url is a scripted HTTP server.
func restVendor(t *testing.T, h http.HandlerFunc) (*Vendor, *sink) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	keys := baseKeys(srv.URL + "/s/demo")
	keys["request_timeout"] = `"2s"`
	sk := newSink()
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopVendor(t, v) })
	return v, sk
}

// A canchat answer without agentsAvailable: agentlist decides; none
// active refuses the chat before any socket.
func TestAgentListDecides(t *testing.T) {
	var paths []string
	v, sk := restVendor(t, func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		if r.Header.Get("Origin") != "https://www.example.com" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/s/demo/socket/external.api/canchat":
			_, _ = w.Write([]byte(`{"chatOpen":true}`))
		case "/s/demo/socket/external.api/agentlist":
			_, _ = w.Write([]byte(`{"agents":[]}`))
		default:
			http.NotFound(w, r)
		}
	})
	c := &connector.Conversation{ID: 1, Channel: "sms.main", Customer: "+15550001111"}
	sess, err := v.Open(ctxFor(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := parseSession(sess); !st.NoAgent {
		t.Errorf("session %s", sess)
	}
	evs := sk.all()
	if len(evs) != 1 || evs[0].Type != connector.EventNoAgent || evs[0].Text != "no agent is available" {
		t.Errorf("events %s", describe(evs))
	}
	want := []string{"/s/demo/socket/external.api/canchat?area=2", "/s/demo/socket/external.api/agentlist?areas=2&who=active"}
	if len(paths) != 2 || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("calls %q, want %q", paths, want)
	}
}

// canchat's errors: Retry-After is honoured; every other failure is
// retried too (a 4xx means a configuration to fix, which /readyz shows);
// nothing is reported to the sink.
func TestCanChatErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		header    string
		permanent bool
		after     time.Duration
	}{
		{http.StatusServiceUnavailable, "7", false, 7 * time.Second},
		{http.StatusInternalServerError, "", false, 0},
		{http.StatusNotFound, "", false, 0},
		{http.StatusTooManyRequests, "", false, 0},
	} {
		v, sk := restVendor(t, func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(tc.status)
		})
		_, err := v.Open(ctxFor(t), &connector.Conversation{ID: 1, Channel: "sms.main", Customer: "+15550001111"})
		after, _ := connector.RetryDelay(err)
		if err == nil || connector.IsPermanent(err) != tc.permanent || after != tc.after {
			t.Errorf("HTTP %d: %v (permanent %v, after %s)", tc.status, err, connector.IsPermanent(err), after)
		}
		if n := len(sk.all()); n != 0 {
			t.Errorf("HTTP %d: %d events", tc.status, n)
		}
	}
}
