package connector_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

// countingServer is an httptest server that counts the connections it
// accepted and answers after a pause, so that concurrent requests overlap.
type countingServer struct {
	*httptest.Server
	accepted atomic.Int64
}

func newCountingServer(t *testing.T, pause time.Duration) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(pause)            // the request's work; not a wait for something to (not) happen
		if r.URL.RawQuery == "big" { // more than the transport reads ahead
			w.Write(make([]byte, 32<<10))
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.accepted.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// burst makes n GET requests at once and returns how many connections the
// server accepted meanwhile.
func (s *countingServer) burst(t *testing.T, c *http.Client, n int) int64 {
	t.Helper()
	before := s.accepted.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := c.Get(s.URL)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return s.accepted.Load() - before
}

// TestTransportPool: a burst of 200 requests opens at most Connections
// connections, and a second burst reuses them all. With Go's default pool
// (2 idle per host) both bursts open about 200.
func TestTransportPool(t *testing.T) {
	for _, n := range []int{1, 8, connector.DefaultConnections} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			srv := newCountingServer(t, 5*time.Millisecond)
			tr := connector.NewTransport(connector.TransportOptions{Connections: n})
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			if got := srv.burst(t, c, 200); got < 1 || got > int64(n) {
				t.Errorf("first burst opened %d connections, want 1..%d", got, n)
			}
			if got := srv.burst(t, c, 200); got != 0 {
				t.Errorf("second burst opened %d new connections, want 0", got)
			}
		})
	}
}

func TestNewTransportSettings(t *testing.T) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "example.com"}
	tr := connector.NewTransport(connector.TransportOptions{Connections: 300, TLS: conf, TLSHandshakeTimeout: 3 * time.Second})
	type settings struct {
		MaxConns, MaxIdlePerHost, MaxIdle int
		IdleTimeout, Handshake            time.Duration
		HTTP2, Proxy                      bool
		ServerName                        string
	}
	got := settings{tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tr.IdleConnTimeout,
		tr.TLSHandshakeTimeout, tr.ForceAttemptHTTP2, tr.Proxy != nil, tr.TLSClientConfig.ServerName}
	want := settings{300, 300, 300, 90 * time.Second, 3 * time.Second, true, true, "example.com"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transport (-want +got):\n%s", diff)
	}
	if tr.TLSClientConfig == conf {
		t.Error("the TLS configuration is shared, not cloned")
	}
	def := connector.NewTransport(connector.TransportOptions{})
	if def.MaxConnsPerHost != connector.DefaultConnections || def.MaxIdleConnsPerHost != connector.DefaultConnections ||
		def.MaxIdleConns < connector.DefaultConnections || def.TLSHandshakeTimeout != 10*time.Second {
		t.Errorf("zero options: MaxConnsPerHost %d, MaxIdleConnsPerHost %d, MaxIdleConns %d, handshake %v",
			def.MaxConnsPerHost, def.MaxIdleConnsPerHost, def.MaxIdleConns, def.TLSHandshakeTimeout)
	}
}

func TestCheckConnections(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{1, nil},
		{32, nil},
		{1024, nil},
		{0, []string{"http_connections: must be 1 to 1024 connections per host, not 0"}},
		{-3, []string{"http_connections: must be 1 to 1024 connections per host, not -3"}},
		{1025, []string{"http_connections: must be 1 to 1024 connections per host, not 1025"}},
	} {
		var got []string
		connector.CheckConnections(func(key, format string, args ...any) {
			got = append(got, key+": "+fmt.Sprintf(format, args...))
		}, tc.n)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%d: (-want +got):\n%s", tc.n, diff)
		}
	}
}

// TestDrainCloseKeepsTheConnection: an answer whose body was closed unread
// costs its connection; DrainClose keeps it for the next request.
func TestDrainCloseKeepsTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(io.ReadCloser)
		want  int64 // connections for 10 requests in a row
	}{
		{"DrainClose", connector.DrainClose, 1},
		{"Close unread", func(b io.ReadCloser) { b.Close() }, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountingServer(t, 0)
			tr := connector.NewTransport(connector.TransportOptions{Connections: 4})
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for range 10 {
				resp, err := c.Get(srv.URL + "/?big")
				if err != nil {
					t.Fatal(err)
				}
				tc.close(resp.Body)
			}
			if got := srv.accepted.Load(); got != tc.want {
				t.Errorf("10 requests opened %d connections, want %d", got, tc.want)
			}
		})
	}
}

// TestDrainOnClose: a library that closes answers it read only partly
// keeps its connection through DrainOnClose, and CloseIdleConnections still
// reaches the transport.
func TestDrainOnClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(http.RoundTripper) http.RoundTripper
		want int64 // connections for 10 requests in a row
	}{
		{"DrainOnClose", connector.DrainOnClose, 1},
		{"bare", func(rt http.RoundTripper) http.RoundTripper { return rt }, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountingServer(t, 0)
			tr := connector.NewTransport(connector.TransportOptions{Connections: 4})
			c := &http.Client{Transport: tc.wrap(tr)}
			for range 10 {
				resp, err := c.Get(srv.URL + "/?big")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Read(make([]byte, 100)) // a decoder that stops at the value's end
				resp.Body.Close()
			}
			if got := srv.accepted.Load(); got != tc.want {
				t.Errorf("10 requests opened %d connections, want %d", got, tc.want)
			}
			c.CloseIdleConnections()
			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			connector.DrainClose(resp.Body)
			defer c.CloseIdleConnections()
			if got := srv.accepted.Load(); got != tc.want+1 {
				t.Errorf("after CloseIdleConnections: %d connections in all, want %d (a new one)", got, tc.want+1)
			}
		})
	}
}
