package main

// End-to-end tests: the real binary, started from a TOML string, against the
// fake Twilio and the fake WhosOn, driven as Twilio and an operator would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector/sqlite"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// binary is the connectord built once for every test in this file.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connectord-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "connectord")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building connectord for the end-to-end tests failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const customerNumber = "+15557654321"
const companyNumber = "+15551230000"

// e2eHeader begins every end-to-end configuration; its three %q are
// state_dir, listen and public_url. The admin listener's address and the
// instance id (several instances on one database need their own) come from
// the environment.
const e2eHeader = `
[daemon]
instance_id = "${E2E_INSTANCE_ID}"
state_dir = %q
shutdown_timeout = "5s"

[log]
level = "debug"
format = "json"

[http]
listen = %q
public_url = %q
admin_listen = "${E2E_ADMIN_LISTEN}"
`

// e2eWhoson is the WhosOn block the SMS and Slack worlds share; its %q is
// the fake server's URL.
const e2eWhoson = `
[vendors.whoson.sales]
url = %q
domain = "www.example.com"
auth_string = "test-auth"
api_key = "e2e"
accept_timeout = "5s"
`

// e2eRetry retries quickly: the fakes answer at once.
const e2eRetry = `
[conversation]
retry_initial = "50ms"
retry_max = "500ms"
`

// e2eSMSBase is the SMS channel every world has; its %q are the fake
// Twilio's account SID, our number and its URL.
const e2eSMSBase = `
[channels.sms.main]
account_sid = %q
auth_token = "${E2E_TWILIO_TOKEN}"
from = %q
api_url = %q
`

// e2eSMS is e2eSMSBase without pacing: the fake Twilio sends at once, and
// a test's long lines must not wait a real long code's second per
// segment (pacing has tests of its own).
const e2eSMS = e2eSMSBase + `mps = 0.0
recipient_limit = 0
`

// e2eSlack is the Slack channel of the worlds that have one; its %q are
// the app token, the watched channel and the fake Slack's API URL.
const e2eSlack = `
[channels.slack.support]
bot_token = "${E2E_SLACK_BOT_TOKEN}"
app_token = %q
channels = [%q]
api_url = %q
post_interval = "20ms"
`

const e2eConfig = e2eHeader + e2eRetry + e2eSMS + e2eWhoson + `
[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`

// world is one test's fakes plus the daemon's configuration and state.
type world struct {
	t       *testing.T
	twilio  *smstest.Server
	whoson  *whosontest.Server
	dir     string
	addr    string
	admin   string // http.admin_listen: /metrics and the detailed /readyz
	cfgPath string
	proc    *process
	env     []string // more environment for the daemon
}

func newWorld(t *testing.T, op whosontest.Operator, grace time.Duration) *world {
	t.Helper()
	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twilio.Close)
	whoson, err := whosontest.New(whosontest.Config{Operator: op, ResumeGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(whoson.Close)
	addrs := freeAddrs(t, 2)
	w := &world{t: t, twilio: twilio, whoson: whoson, dir: t.TempDir(), addr: addrs[0], admin: addrs[1]}
	w.cfgPath = filepath.Join(w.dir, "config.toml")
	text := fmt.Sprintf(e2eConfig, filepath.Join(w.dir, "state"), w.addr, "http://"+w.addr,
		twilio.AccountSID(), companyNumber, twilio.URL(), whoson.URL())
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func echoOperator() whosontest.Operator {
	return whosontest.Operator{Name: "Alice", Reply: func(s string) string { return "echo: " + s }}
}

// freeAddrs returns n distinct loopback addresses free right now. Every
// listener stays open until all are picked: one closed at once could be
// handed out again (the public and admin listeners got the same port).
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

// process is a running daemon and what it logged.
type process struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the daemon and waits until /readyz says ready.
func (w *world) start() {
	w.t.Helper()
	p := w.launch()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + w.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			w.t.Fatalf("daemon exited before it was ready: %v\n%s", err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("daemon not ready after 15s\n%s", p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launch starts the daemon and returns at once.
func (w *world) launch() *process {
	w.t.Helper()
	p := &process{log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "run", "-config", w.cfgPath)
	p.cmd.Env = append(os.Environ(), "E2E_TWILIO_TOKEN="+w.twilio.AuthToken(), "E2E_ADMIN_LISTEN="+w.admin, "E2E_INSTANCE_ID=e2e")
	p.cmd.Env = append(p.cmd.Env, w.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	w.proc = p
	w.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if w.t.Failed() {
			w.t.Logf("daemon log:\n%s", p.log.String())
		}
	})
	return p
}

// signal sends sig and waits for the exit, returning its code.
func (w *world) signal(sig syscall.Signal, within time.Duration) (int, time.Duration) {
	w.t.Helper()
	start := time.Now()
	if err := w.proc.cmd.Process.Signal(sig); err != nil {
		w.t.Fatal(err)
	}
	select {
	case <-w.proc.done:
	case <-time.After(within):
		w.t.Fatalf("daemon still running %s after %v", within, sig)
	}
	return w.proc.cmd.ProcessState.ExitCode(), time.Since(start)
}

func (w *world) webhook() string { return "http://" + w.addr + "/sms/main" }

func (w *world) sms(text string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, status, err := w.twilio.Inbound(ctx, w.webhook(), customerNumber, companyNumber, text)
	if err != nil || status != http.StatusOK {
		w.t.Fatalf("inbound %q: status %d, %v", text, status, err)
	}
}

func (w *world) visitorLines(n int) []string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	lines, err := w.whoson.WaitVisitorLines(ctx, n)
	if err != nil {
		w.t.Fatalf("waiting for %d visitor lines: %v (have %q)", n, err, w.whoson.AllVisitorLines())
	}
	return lines
}

// smsTo waits for an SMS to the customer whose body contains want.
func (w *world) smsTo(want string) smstest.Sent {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range w.twilio.Sent() {
			if s.To == customerNumber && strings.Contains(s.Body, want) {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatalf("no SMS to %s containing %q; sent: %+v", customerNumber, want, w.twilio.Sent())
	return smstest.Sent{}
}

func TestConversationEndToEnd(t *testing.T) {
	w := newWorld(t, echoOperator(), 0)
	w.start()
	w.sms("hello there")
	if diff := cmp.Diff([]string{"hello there"}, w.visitorLines(1)); diff != "" {
		t.Errorf("operator saw (-want +got):\n%s", diff)
	}
	got := w.smsTo("echo: hello there")
	if got.From != companyNumber {
		t.Errorf("reply sent from %q, want %q", got.From, companyNumber)
	}
	w.smsTo("You are now chatting with Alice")
	chats := w.whoson.Chats()
	if len(chats) != 1 || !strings.Contains(fmt.Sprint(chats[0].Fields), customerNumber) {
		t.Errorf("chats = %+v, want one carrying the phone number in its fields", chats)
	}
	if code, took := w.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d after %s, want 0", code, took)
	}
}

func TestBadSignatureStoresNothing(t *testing.T) {
	w := newWorld(t, echoOperator(), 0)
	w.start()
	form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "From": {customerNumber},
		"To": {companyNumber}, "Body": {"forged"}, "AccountSid": {w.twilio.AccountSID()}}
	for name, sig := range map[string]string{"missing": "", "wrong": "bm90IGEgc2lnbmF0dXJl",
		"other url": w.twilio.Sign("http://"+w.addr+"/sms/other", form)} {
		req, _ := http.NewRequest(http.MethodPost, w.webhook(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			req.Header.Set("X-Twilio-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s signature: status %d, want 403", name, resp.StatusCode)
		}
	}
	if code, _ := w.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(w.dir, "state", "connectord.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range stats.Conversations {
		total += n
	}
	if total != 0 || stats.OutboxDepth != 0 {
		t.Errorf("store holds %d conversations and %d outbox entries after forged webhooks, want none", total, stats.OutboxDepth)
	}
	if n := len(w.whoson.Chats()); n != 0 {
		t.Errorf("whoson saw %d chats", n)
	}
}

func TestRepeatedMessageSidOnce(t *testing.T) {
	w := newWorld(t, echoOperator(), 0)
	w.start()
	form := url.Values{"MessageSid": {"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "SmsSid": {"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		"From": {customerNumber}, "To": {companyNumber}, "Body": {"only once"},
		"AccountSid": {w.twilio.AccountSID()}, "NumMedia": {"0"}}
	for i := range 3 {
		status, err := w.twilio.PostWebhook(context.Background(), w.webhook(), form)
		if err != nil || status != http.StatusOK {
			t.Fatalf("post %d: status %d, %v", i+1, status, err)
		}
	}
	w.visitorLines(1)
	w.sms("after")
	lines := w.visitorLines(2)
	if diff := cmp.Diff([]string{"only once", "after"}, lines); diff != "" {
		t.Errorf("operator saw (-want +got):\n%s", diff)
	}
}

// SIGKILL right after the last of several webhooks was acknowledged, while
// the lane is still relaying them and before the operator answered: after a
// restart every acknowledged message reaches the operator, in order, and
// every operator answer reaches the customer exactly once.
//
// WhosOn has no message ids, no acknowledgement and no history, so a line
// written to the socket in the instant before the kill, and not yet marked
// sent, cannot be told apart from one that never left: it is written again
// (at least once beats lost; the delivery promise excludes doubles only
// where the destination gives a way to tell). The test allows that one line, and only
// that one, to arrive twice.
func TestKillAfterAckLosesNothing(t *testing.T) {
	slow := whosontest.Operator{Name: "Alice", Reply: func(s string) string {
		time.Sleep(300 * time.Millisecond) // answers come after the restart
		return "echo: " + s
	}}
	w := newWorld(t, slow, 0)
	w.start()
	want := []string{"one", "two", "three", "four", "five"}
	for _, text := range want {
		w.sms(text)
	}
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.start()
	w.visitorLines(len(want))
	w.smsTo("echo: five")
	w.sms("six")
	w.smsTo("echo: six")
	time.Sleep(500 * time.Millisecond) // a late duplicate would show up now

	lines := w.whoson.AllVisitorLines()
	if diff := cmp.Diff(append(want, "six"), slices.Compact(slices.Clone(lines))); diff != "" {
		t.Errorf("operator saw %q; without repeats (-want +got):\n%s", lines, diff)
	}
	if extra := len(lines) - len(slices.Compact(slices.Clone(lines))); extra > 1 {
		t.Errorf("operator saw %q: %d repeated lines, at most the one in flight at the kill may repeat", lines, extra)
	} else if extra == 1 {
		t.Logf("the line in flight at the kill was written again: %q", lines)
	}
	for _, line := range slices.Compact(slices.Clone(lines)) {
		answers := countValue(lines, line) // the operator answered each copy
		if got := countBody(w.twilio.Sent(), "echo: "+line); got != answers {
			t.Errorf("%q reached the customer %d times, the operator said it %d times", "echo: "+line, got, answers)
		}
	}
}

// The same kill, against a WhosOn that does not re-attach a chat to a new
// socket (its document allows that): every acknowledged line still reaches
// an operator, in order, at most the one in flight twice, on the new chat that
// the context line starts; the customer is never told that the chat ended.
func TestKillAfterAckWithoutReattach(t *testing.T) {
	slow := whosontest.Operator{Name: "Alice", Reply: func(s string) string {
		time.Sleep(300 * time.Millisecond)
		return "echo: " + s
	}}
	w := newWorld(t, slow, 0)
	w.whoson.RefuseReattach(true)
	w.start()
	want := []string{"one", "two", "three", "four", "five"}
	for _, text := range want {
		w.sms(text)
	}
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.start()
	w.sms("six")
	w.smsTo("echo: six")
	var lines []string // customer lines, without the context line
	contexts := 0
	for _, l := range w.whoson.AllVisitorLines() {
		if strings.HasPrefix(l, "[connectord]") {
			contexts++
		} else {
			lines = append(lines, l)
		}
	}
	// One context line when the chat was lost and opened again; none when
	// the kill came after WhosOn accepted the chat but before connectord
	// stored it (the next process opens a chat as for a new conversation).
	if n := len(w.whoson.Chats()); n < 2 || contexts > 1 {
		t.Errorf("whoson has %d chats and saw %d context lines: want the chat lost and one new chat", n, contexts)
	}
	if diff := cmp.Diff(append(want, "six"), slices.Compact(slices.Clone(lines))); diff != "" {
		t.Errorf("operators saw %q; without repeats (-want +got):\n%s", lines, diff)
	}
	if extra := len(lines) - len(slices.Compact(slices.Clone(lines))); extra > 1 {
		t.Errorf("operators saw %q: %d repeated lines, at most the one in flight at the kill may repeat", lines, extra)
	}
	for _, m := range w.twilio.Sent() {
		if strings.Contains(m.Body, "ended") || strings.Contains(m.Body, "could not keep") {
			t.Errorf("customer told %q", m.Body)
		}
	}
}

func countValue(ss []string, v string) int {
	n := 0
	for _, s := range ss {
		if s == v {
			n++
		}
	}
	return n
}

// A customer line acknowledged while WhosOn was unreachable, then a SIGKILL,
// then a WhosOn that will not re-attach the chat (its document does not
// promise that it does): the line still reaches an operator, on a new chat
// that starts with the context line; the customer reads "reconnected" and
// never that the chat ended.
func TestKillWhenChatCannotResume(t *testing.T) {
	w := newWorld(t, echoOperator(), 0)
	w.start()
	w.sms("hello")
	w.visitorLines(1)
	w.smsTo("echo: hello")
	w.whoson.SetDown(true)
	w.sms("are you there?") // acknowledged: stored, not yet at WhosOn
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.whoson.RefuseReattach(true)
	w.whoson.SetDown(false)
	w.start()
	w.smsTo("We were briefly disconnected")
	w.smsTo("echo: are you there?")
	lines := w.whoson.AllVisitorLines()
	var context int
	for i, l := range lines {
		if strings.HasPrefix(l, "[connectord] This chat continues one that was disconnected.") {
			context++
			if i+1 >= len(lines) || lines[i+1] != "are you there?" || !strings.Contains(l, "customer: hello | agent: echo: hello") {
				t.Errorf("operator saw %q: want the context line (with the last lines), then the waiting line", lines)
			}
		}
	}
	if context != 1 || countValue(lines, "are you there?") != 1 {
		t.Errorf("operator saw %q: want one context line and the waiting line once", lines)
	}
	if n := len(w.whoson.Chats()); n < 2 {
		t.Errorf("whoson saw %d chats, want a new one after the refused resume", n)
	}
	for _, m := range w.twilio.Sent() {
		if strings.Contains(m.Body, "ended") || strings.Contains(m.Body, "could not keep") {
			t.Errorf("customer told %q", m.Body)
		}
	}
}

func TestSigtermWithinTenSeconds(t *testing.T) {
	w := newWorld(t, whosontest.Operator{Name: "Slow", JoinDelay: time.Hour}, 0)
	w.start()
	w.sms("waiting in the queue")
	w.visitorLines(1)
	code, took := w.signal(syscall.SIGTERM, 10*time.Second)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	t.Logf("SIGTERM to exit: %s", took)
	if !strings.Contains(w.proc.log.String(), "draining") {
		t.Errorf("no drain in the log")
	}
}

func TestHTTPSurface(t *testing.T) {
	w := newWorld(t, echoOperator(), 0)
	w.start()
	base, admin := "http://"+w.addr, "http://"+w.admin
	// The public listener answers load balancers with a word and serves no
	// metrics and no details; the admin listener has both.
	for path, want := range map[string]struct {
		code int
		body string
	}{"/readyz": {200, "ready\n"}, "/livez": {200, "alive\n"}, "/metrics": {404, ""}} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || (want.body != "" && string(body) != want.body) {
			t.Errorf("public GET %s: %d %q, want %d %q", path, resp.StatusCode, body, want.code, want.body)
		}
	}
	var ready struct {
		Ready bool `json:"ready"`
		Store struct {
			Ready bool `json:"ready"`
		} `json:"store"`
		Adapters map[string]struct {
			Ready bool `json:"ready"`
		} `json:"adapters"`
	}
	getJSON(t, admin+"/readyz", http.StatusOK, &ready)
	if !ready.Ready || !ready.Store.Ready {
		t.Errorf("/readyz = %+v, want ready with the store ready", ready)
	}
	for _, name := range []string{"sms.main", "whoson.sales"} {
		if a, ok := ready.Adapters[name]; !ok || !a.Ready {
			t.Errorf("/readyz adapters = %+v, want %s ready", ready.Adapters, name)
		}
	}
	var nf struct{ Error string }
	resp, err := http.Post(base+"/sms/nosuch", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, http.StatusNotFound, &nf)
	if nf.Error != `no sms channel named "nosuch"` {
		t.Errorf("404 error = %q", nf.Error)
	}
	resp, err = http.Get(base + "/sms/main") // someone opens the webhook in a browser
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, http.StatusMethodNotAllowed, &nf)
	if got := resp.Header.Get("Allow"); got != "POST" {
		t.Errorf("GET /sms/main: Allow %q, want POST", got)
	}
	w.sms("count me")
	w.smsTo("echo: count me")
	resp, err = http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`connectord_messages_in_total{adapter="sms.main"} 1`,
		`connectord_messages_out_total{adapter="whoson.sales"} 1`, "connectord_outbox_depth",
		`connectord_delivery_failures_total{adapter="whoson.sales"} 0`, // there from the start
		`connectord_adapter_up{adapter="whoson.sales"} 1`, `connectord_adapter_up{adapter="sms.main"} 1`,
		"connectord_webhook_duration_seconds_bucket", `connectord_conversations{state="active"} 1`,
		"connectord_store_up 1", "connectord_store_write_errors_total 0", `connectord_poison_messages_total{adapter="sms.main"} 0`,
		`connectord_relay_duration_seconds_count{adapter="whoson.sales"} 1`, `connectord_relay_duration_seconds_bucket{adapter="sms.main"`,
		`connectord_held_total{adapter="sms.main",limit="max_open"} 0`, `connectord_webhooks_refused_total{route="POST /sms/main"} 0`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	out, err := exec.Command(binary, "check-config", "-config", "../../config.example.toml").CombinedOutput()
	if err != nil {
		t.Errorf("check-config config.example.toml: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	text := `[daemon]
shutdown_timeout = "soon"
ready_wait = "-1s"
bogus = 1
[http]
public_url = "https://x.example.com"
[channels.sms.main]
account_sid = "AC1"
auth_token = "secret-token-value"
[vendors.whoson.sales]
url = "ws://127.0.0.1:1"
domain = "d"
auth_string_file = "/nonexistent/whoson-auth"
[vendors.customerchannel.hub]
url = "http://127.0.0.1:1"
connector_id = "sms"
deliver_via = "sms.other"
[[routes]]
channel = "sms.main"
vendor = "whoson.nope"
`
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "check-config", "-config", bad)
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("exit %d (%v), want 1", cmd.ProcessState.ExitCode(), err)
	}
	for _, want := range []string{"daemon.shutdown_timeout", "daemon.ready_wait: must not be negative", "routes[0].vendor", "channels.sms.main", "from or messaging_service_sid",
		`vendors.customerchannel.hub.deliver_via: names no configured channel "sms.other"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "secret-token-value") {
		t.Errorf("a secret was printed:\n%s", out)
	}
	// The unreadable file is the one complaint about its key: no "is
	// required" for the value it should have held, no "unknown key".
	if !strings.Contains(string(out), "vendors.whoson.sales.auth_string_file: cannot read /nonexistent/whoson-auth") ||
		strings.Contains(string(out), "auth_string: is required") || strings.Contains(string(out), "auth_string_file: unknown key") {
		t.Errorf("unreadable auth_string_file reported as:\n%s", out)
	}
}

func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		input string
		want  []string
	}{
		{"SMS", nil, "what are your hours?\n",
			[]string{"you -> agent", "You are now chatting with Alice", "We are open 9am–5pm"}},
		// The Slack demo's first line starts a thread and the next replies in
		// it; Alice's answers to both are in that thread, under her name.
		{"Slack", []string{"-channel", "slack"}, "hello\nhow are you?\n",
			[]string{"message {root}  Sam: hello", "thread {root}  Sam: how are you?",
				"thread {root}  connectord: You are now chatting with Alice.",
				`thread {root}  Alice: Thanks, I got: "hello".`,
				`thread {root}  Alice: Thanks, I got: "how are you?".`,
				"message {root}  reactions: :speech_balloon:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, append([]string{"demo", "-settle", "2s"}, tc.args...)...)
			cmd.Stdin = strings.NewReader(tc.input)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out)
			}
			root := ""
			if _, rest, ok := strings.Cut(string(out), "slack #support message "); ok {
				root, _, _ = strings.Cut(rest, " ")
			}
			for _, want := range tc.want {
				want = strings.ReplaceAll(want, "{root}", root)
				if !strings.Contains(string(out), want) {
					t.Errorf("demo output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func countBody(sent []smstest.Sent, body string) int {
	n := 0
	for _, s := range sent {
		if s.Body == body {
			n++
		}
	}
	return n
}

func getJSON(t *testing.T, u string, status int, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, status, v)
}

func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d", resp.Request.URL, resp.StatusCode, status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Errorf("%s: %v", resp.Request.URL, err)
	}
}
