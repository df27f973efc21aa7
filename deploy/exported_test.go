package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// prometheusMade are series Prometheus makes for every scrape target itself;
// the daemon never exports them.
func prometheusMade() []string {
	return []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
		"scrape_samples_post_metric_relabeling", "scrape_series_added"}
}

const (
	customerNumber = "+15557654321"
	companyNumber  = "+15551230000"
)

// daemonConfig is the daemon's configuration: one SMS channel against the
// fake Twilio, routed to the fake WhosOn, with a private state directory.
// Its %q are the state directory, the public and admin listeners, the
// public URL, the fake Twilio's account SID, our number and its URL, and
// the fake WhosOn's URL.
const daemonConfig = `
[daemon]
instance_id = "deploy-test"
state_dir = %q
shutdown_timeout = "5s"

[log]
level = "debug"
format = "json"

[http]
listen = %q
admin_listen = %q
public_url = %q

[conversation]
retry_initial = "50ms"
retry_max = "500ms"

[channels.sms.main]
account_sid = %q
auth_token = "${DEPLOY_TEST_TWILIO_TOKEN}"
from = %q
api_url = %q
mps = 0.0
recipient_limit = 0

[vendors.whoson.sales]
url = %q
domain = "www.example.com"
auth_string = "test-auth"
api_key = "deploy-test"
accept_timeout = "5s"

[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`

// TestUsedMetricsExported runs the real daemon against the fakes, relays
// one SMS to the agent and the agent's answer back, then scrapes /metrics:
// every metric the alert rules and the dashboard read must be there.
func TestUsedMetricsExported(t *testing.T) {
	used := ruleMetricNames(t)
	for name, where := range dashboardMetricNames(t, loadDashboard(t)) {
		used[name] = append(used[name], where...)
	}
	for _, name := range prometheusMade() {
		delete(used, name)
	}
	if len(used) == 0 {
		t.Fatal("the rules and the dashboard name no metric")
	}

	d := startDaemon(t)
	d.relayOneSMS(t)

	var exported []string
	missing := func() []string {
		var out []string
		for name := range used {
			if !slices.Contains(exported, name) {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	// Some series appear a moment after the deed they count (a webhook's
	// latency once its answer is written): scrape until all are there or
	// the give-up passes.
	giveUp := time.Now().Add(15 * time.Second)
	for {
		exported = sampleNames(d.scrape(t))
		if len(missing()) == 0 || time.Now().After(giveUp) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range missing() {
		t.Errorf("%s is not exported by connectord (used by %s)", name, strings.Join(used[name], ", "))
	}
	if t.Failed() {
		t.Logf("exported: %s", strings.Join(exported, " "))
	}
	d.stop(t)
}

// daemon is a running connectord and its fakes.
type daemon struct {
	cmd    *exec.Cmd
	log    *lockedBuffer
	done   chan error
	twilio *smstest.Server
	whoson *whosontest.Server
	public string // http.listen
	admin  string // http.admin_listen
}

// startDaemon builds connectord, starts it against fresh fakes and waits
// until it says it is ready.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	dir := t.TempDir()
	binary := buildDaemon(t, dir)
	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twilio.Close)
	whoson, err := whosontest.New(whosontest.Config{Operator: whosontest.Operator{Name: "Alice",
		Reply: func(s string) string { return "echo: " + s }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(whoson.Close)

	addrs := freeAddrs(t, 2)
	d := &daemon{log: &lockedBuffer{}, done: make(chan error, 1), twilio: twilio, whoson: whoson,
		public: addrs[0], admin: addrs[1]}
	cfg := filepath.Join(dir, "config.toml")
	text := fmt.Sprintf(daemonConfig, filepath.Join(dir, "state"), d.public, d.admin, "http://"+d.public,
		twilio.AccountSID(), companyNumber, twilio.URL(), whoson.URL())
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(binary, "run", "-config", cfg)
	d.cmd.Env = append(os.Environ(), "DEPLOY_TEST_TWILIO_TOKEN="+twilio.AuthToken())
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	d.waitReady(t)
	return d
}

// buildDaemon builds ./cmd/connectord into dir.
func buildDaemon(t *testing.T, dir string) string {
	t.Helper()
	binary := filepath.Join(dir, "connectord")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/connectord/connectord/cmd/connectord").CombinedOutput()
	if err != nil {
		t.Fatalf("building connectord: %v\n%s", err, out)
	}
	return binary
}

// freeAddrs returns n distinct loopback addresses free right now; every
// listener stays open until all are picked, so none is handed out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// waitReady polls the public /readyz until it answers 200, failing if the
// daemon exits first or is not ready within the give-up.
func (d *daemon) waitReady(t *testing.T) {
	t.Helper()
	giveUp := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + d.public + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("connectord exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(giveUp) {
			t.Fatal("connectord not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayOneSMS sends a customer SMS through the signed webhook and waits
// until the agent saw it and the agent's answer reached Twilio, so that
// the per-adapter, per-route and per-encoding series exist.
func (d *daemon) relayOneSMS(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, status, err := d.twilio.Inbound(ctx, "http://"+d.public+"/sms/main", customerNumber, companyNumber, "hello"); err != nil || status != http.StatusOK {
		t.Fatalf("inbound SMS webhook: status %d, %v", status, err)
	}
	if _, err := d.whoson.WaitVisitorLines(ctx, 1); err != nil {
		t.Fatalf("the agent never saw the SMS: %v", err)
	}
	for !slices.ContainsFunc(d.twilio.Sent(), func(s smstest.Sent) bool {
		return s.To == customerNumber && strings.Contains(s.Body, "echo: hello")
	}) {
		if ctx.Err() != nil {
			t.Fatalf("the agent's answer never reached Twilio; sent: %+v", d.twilio.Sent())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape reads the admin listener's /metrics.
func (d *daemon) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("connectord exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("connectord still running 30s after SIGTERM")
	}
}

// lockedBuffer collects the daemon's output from its two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
