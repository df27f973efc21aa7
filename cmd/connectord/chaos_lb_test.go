package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chaosLB is the load balancer in front of the chaos test's instances, so
// that the fake Twilio and Slack post to one URL. It does what a real one
// does: round robin over the instances whose /readyz answered 200 at the
// last health check (over all of them when none did), and a request whose
// connection was refused goes to the next instance. A request that an
// instance took and then died on gets 502, and its sender retries it.
type chaosLB struct {
	srv      *httptest.Server
	backends []string // host:port of each instance's public listener
	next     atomic.Uint64
	direct   http.RoundTripper
	// answered, when set, is told of every request the balancer answered:
	// its path, body, status and when.
	answered func(path string, body []byte, status int, at time.Time)

	mu      sync.Mutex
	healthy []bool
}

var _ http.RoundTripper = (*chaosLB)(nil)

// newChaosLB starts a balancer over backends, with a health check every
// interval, until the test ends.
func newChaosLB(t *testing.T, backends []string, interval time.Duration) *chaosLB {
	lb := &chaosLB{backends: backends, healthy: make([]bool, len(backends)),
		// A fresh connection per request: a killed instance shows as a
		// refused connection, not as a dead kept-alive one.
		direct: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", backends[0] // RoundTrip picks the instance
			pr.Out.Host = pr.In.Host
		},
		Transport: lb,
		ErrorLog:  log.New(io.Discard, "", 0), // the sender sees the 502
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(rec, r)
		if lb.answered != nil {
			lb.answered(r.URL.Path, body, rec.status, time.Now())
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	var checking sync.WaitGroup
	checking.Go(func() { lb.check(ctx, interval) })
	t.Cleanup(func() {
		cancel()
		checking.Wait()
		lb.srv.Close()
	})
	return lb
}

// URL is where the fakes post.
func (lb *chaosLB) URL() string { return lb.srv.URL }

// RoundTrip sends req to the next instance in turn, and on to the ones
// after it while connections are refused.
func (lb *chaosLB) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	for _, backend := range lb.order() {
		out := req.Clone(req.Context())
		out.URL.Host = backend
		if req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		resp, rerr := lb.direct.RoundTrip(out)
		if rerr == nil {
			return resp, nil
		}
		err = rerr
		var op *net.OpError
		if !errors.As(rerr, &op) || op.Op != "dial" {
			return nil, rerr // the instance may have taken it: only its sender may retry
		}
	}
	return nil, err
}

// order is every instance, starting with the next in turn, the healthy ones first.
func (lb *chaosLB) order() []string {
	n := len(lb.backends)
	start := int(lb.next.Add(1) % uint64(n))
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var up, down []string
	for i := range n {
		j := (start + i) % n
		if lb.healthy[j] {
			up = append(up, lb.backends[j])
		} else {
			down = append(down, lb.backends[j])
		}
	}
	return append(up, down...)
}

// check asks every instance's /readyz each interval until ctx ends.
func (lb *chaosLB) check(ctx context.Context, interval time.Duration) {
	client := &http.Client{Timeout: interval, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		for i, b := range lb.backends {
			ok := false
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b+"/readyz", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
			lb.mu.Lock()
			lb.healthy[i] = ok
			lb.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
