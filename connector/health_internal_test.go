package connector

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// pingStore is a Store whose Ping the test scripts; nothing else is called.
type pingStore struct {
	Store
	ping func(ctx context.Context) error
}

func (s pingStore) Ping(ctx context.Context) error { return s.ping(ctx) }

// Readiness follows writes: a store that reads fine but cannot commit (full
// or read-only disk) is not ready, and a write stuck on a frozen disk makes
// it unready within the budget while Health itself answers at once.
func TestWriteProbe(t *testing.T) {
	var failures atomic.Int32
	var fail atomic.Pointer[error]
	setFail := func(err error) { fail.Store(&err) }
	setFail(nil)
	release := make(chan struct{})
	var stall atomic.Bool
	st := pingStore{ping: func(ctx context.Context) error {
		if stall.Load() {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return *fail.Load()
	}}
	p := newWriteProbe(st, time.Hour, 100*time.Millisecond, func() { failures.Add(1) })
	if h := p.Health(); h.Ready {
		t.Errorf("ready before any probe: %+v", h)
	}
	if err := p.probe(context.Background()); err != nil || !p.Health().Ready {
		t.Fatalf("healthy store: %v %+v", err, p.Health())
	}

	setFail(errors.New("sqlite: disk I/O error: database or disk is full (open file:///x?secret=1)"))
	p.probe(context.Background())
	h := p.Health()
	if h.Ready || !strings.Contains(h.Detail, "disk is full") || strings.Contains(h.Detail, "secret") {
		t.Errorf("full disk: %+v; want not ready, the cause, no query string", h)
	}
	if failures.Load() != 1 {
		t.Errorf("failures = %d, want 1", failures.Load())
	}

	setFail(nil)
	stall.Store(true)
	done := make(chan struct{})
	go func() { p.probe(context.Background()); close(done) }()
	// The write stays stuck until the test closes release, so every Health
	// below answers while it is stuck, or never.
	for h = healthNow(t, p); !strings.Contains(h.Detail, "has not committed"); h = healthNow(t, p) {
		time.Sleep(5 * time.Millisecond) // until the 100ms budget has passed
	}
	if h.Ready {
		t.Errorf("stuck write: %+v, want not ready", h)
	}
	close(release)
	<-done
	if !p.Health().Ready {
		t.Errorf("not ready again once the write committed: %+v", p.Health())
	}
	if failures.Load() != 2 {
		t.Errorf("failures = %d, want 2 (the stall counted once)", failures.Load())
	}
}

// healthNow is p.Health, failing the test if it does not answer at all:
// the 10 s is a give-up deadline, not a speed claim.
func healthNow(t *testing.T, p *writeProbe) Health {
	t.Helper()
	got := make(chan Health, 1)
	go func() { got <- p.Health() }()
	select {
	case h := <-got:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("Health blocked on a stuck write")
		return Health{}
	}
}

// The public listener takes at most http.max_connections at once.
func TestListenerConnectionLimit(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTP.Listen, cfg.HTTP.AdminListen, cfg.HTTP.MaxConnections = "127.0.0.1:0", "", 2
	d := &Daemon{cfg: &cfg, log: zap.NewNop()}
	if err := d.listen(); err != nil {
		t.Fatal(err)
	}
	defer d.ln.Close()
	var served atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	})}
	go srv.Serve(d.ln)
	defer srv.Close()
	var idle []net.Conn
	for range 2 { // two clients that connect and say nothing hold both slots
		c, err := net.Dial("tcp", d.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + d.ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a third connection was served while two were open: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("after a slot freed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not served after a slot freed")
	}
	idle[1].Close()
}

// Log lines carry no URL userinfo or query, and one message repeated in a
// burst is sampled, with the dropped lines counted.
func TestObserveLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	m := NewMetrics()
	log := observeLogs(zap.New(core), m).With(zap.String("url", "wss://u:pw@chat.example.com/ws?key=k1"))
	log.Warn("dial failed", zap.Error(errors.New(`Get "https://api.example.com/x?token=abc#f": EOF`)))
	e := logs.All()[0]
	all := e.Message + " " + e.ContextMap()["url"].(string) + " " + e.ContextMap()["error"].(string)
	for _, secret := range []string{"pw", "k1", "abc", "token"} {
		if strings.Contains(all, secret) {
			t.Errorf("log line carries %q: %s", secret, all)
		}
	}
	if !strings.Contains(all, "wss://chat.example.com/ws") || !strings.Contains(all, "https://api.example.com/x") {
		t.Errorf("redaction lost the host and path: %s", all)
	}
	for range 1000 {
		log.Warn("malformed frame skipped")
	}
	if n := logs.FilterMessage("malformed frame skipped").Len(); n > 30 {
		t.Errorf("%d of 1000 repeated lines written, want sampling", n)
	}
	if dropped := testutil.ToFloat64(m.LogDropped.WithLabelValues("warn")); dropped < 900 {
		t.Errorf("dropped-lines metric = %v, want the ~%d left out", dropped, 1000-logs.FilterMessage("malformed frame skipped").Len())
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pass@host.example.com:8443/p/a?t=1#frag": "https://host.example.com:8443/p/a",
		"wss://h/ws?auth=x":       "wss://h/ws",
		"not a url":               "[url]",
		"http://[::1]:80/metrics": "http://[::1]:80/metrics",
		"ftp://h/?":               "ftp://h/",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	in := `dial "wss://a:b@h1/x?k=v": refused; then https://h2/y?z=1, and plain text`
	want := `dial "wss://h1/x": refused; then https://h2/y, and plain text`
	if got := RedactText(in); got != want {
		t.Errorf("RedactText = %q, want %q", got, want)
	}
}

// checkedChannel is a Channel whose Health the test sets.
type checkedChannel struct {
	Channel
	h Health
}

func (c checkedChannel) Name() string   { return "slack.support" }
func (c checkedChannel) Health() Health { return c.h }

// Whatever an adapter puts in its health detail, /readyz shows no URL
// userinfo or query string.
func TestReadyRedactsAdapterDetails(t *testing.T) {
	st := pingStore{ping: func(context.Context) error { return nil }}
	d := &Daemon{probe: newWriteProbe(st, time.Hour, time.Second, nil),
		channels: []Channel{checkedChannel{h: Health{Detail: `dial "wss://bot:xoxb-1@wss.example.com/link?ticket=T1&app=A": EOF`}}}}
	d.started.Store(true)
	d.probe.probe(context.Background())
	rd := d.Ready(context.Background())
	got := rd.Adapters["slack.support"].Detail
	if strings.Contains(got, "xoxb") || strings.Contains(got, "ticket") || !strings.Contains(got, "wss://wss.example.com/link") {
		t.Errorf("detail = %q", got)
	}
	if rd.Ready {
		t.Errorf("ready with an adapter down")
	}
}
