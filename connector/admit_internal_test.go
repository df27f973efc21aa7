package connector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// Past http.max_inflight webhooks in hand, the next is refused at once with
// 503 and Retry-After, and counted; once one finishes, webhooks are taken
// again. Health checks are never refused.
func TestAdmission(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTP.MaxInflight = 2
	d := &Daemon{cfg: &cfg, log: zap.NewNop(), metrics: NewMetrics()}
	hold := make(chan struct{})
	var entered sync.WaitGroup
	h := d.instrument("POST /sms/main", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Done()
		<-hold
	}))
	var done sync.WaitGroup
	entered.Add(2)
	for range 2 {
		done.Add(1)
		go func() {
			defer done.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/sms/main", nil))
		}()
	}
	entered.Wait()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/sms/main", nil))
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" ||
		!strings.Contains(body.Error, "http.max_inflight") {
		t.Errorf("third webhook: %d Retry-After %q %q", rec.Code, rec.Header().Get("Retry-After"), body.Error)
	}
	if n := testutil.ToFloat64(d.metrics.Refused.WithLabelValues("POST /sms/main")); n != 1 {
		t.Errorf("refused counter = %v", n)
	}
	close(hold)
	done.Wait()
	entered.Add(1)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/sms/main", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after the others finished: %d", rec.Code)
	}
}

// Resume readiness waits for the stored sessions, but no longer than
// daemon.ready_wait after the Router started.
func TestResumeChecker(t *testing.T) {
	r := &Router{}
	c := resumeChecker{r: r, wait: time.Hour}
	if h := c.Health(); !h.Ready {
		t.Errorf("nothing to resume: %+v", h)
	}
	r.started = time.Now()
	r.resumes.total.Store(3)
	r.resumes.left.Store(2)
	if h := c.Health(); h.Ready || h.Detail != "resuming 2 of 3 stored vendor sessions" {
		t.Errorf("two left: %+v", h)
	}
	r.started = time.Now().Add(-2 * time.Hour)
	if h := c.Health(); !h.Ready || !strings.Contains(h.Detail, "still resuming after daemon.ready_wait") {
		t.Errorf("past ready_wait: %+v", h)
	}
	r.resumes.left.Store(0)
	if h := c.Health(); !h.Ready {
		t.Errorf("all resumed: %+v", h)
	}
}

// /debug/pprof/ is on the admin listener only when http.admin_pprof is set.
func TestAdminPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := defaultConfig()
		cfg.HTTP.AdminPprof = on
		d := &Daemon{cfg: &cfg, log: zap.NewNop(), metrics: NewMetrics()}
		rec := httptest.NewRecorder()
		d.adminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; rec.Code != want {
			t.Errorf("admin_pprof = %v: /debug/pprof/ answered %d, want %d", on, rec.Code, want)
		}
		rec = httptest.NewRecorder()
		d.publicHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("admin_pprof = %v: the public listener answered /debug/pprof/ with %d", on, rec.Code)
		}
	}
}

// A webhook handler that panics gives its slot back: net/http recovers the
// panic, and a slot kept by each one would shrink the limit for good.
func TestAdmissionSlotOutlivesPanic(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTP.MaxInflight = 1
	d := &Daemon{cfg: &cfg, log: zap.NewNop(), metrics: NewMetrics()}
	h := d.instrument("POST /sms/main", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("a bad form")
	}))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/sms/main", nil))
	}()
	if n := d.inflight.Load(); n != 0 {
		t.Errorf("%d webhooks counted in flight after the panic, want 0", n)
	}
}
