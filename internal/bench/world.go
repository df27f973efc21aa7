package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// companyNumber is the daemon's SMS number in every benchmark.
const companyNumber = "+15551230000"

// tokenEnv carries the fake Twilio's auth token to the daemon, so that the
// configuration file holds no secret.
const tokenEnv = "CONNECTORD_BENCH_TWILIO_TOKEN"

// configTemplate is the daemon's configuration. Its %q are state_dir,
// listen, public_url, admin_listen (then admin_pprof), the fake Twilio's account SID and URL,
// and the fake WhosOn's URL. What would shape the measurement instead of
// the daemon is off: SMS pacing (the fake Twilio has no queue), the cap on
// open conversations and the per-customer send rate (a customer gets many
// answers a second here). Everything else is the shipped default.
const configTemplate = `
[daemon]
instance_id = "bench"
state_dir = %q
shutdown_timeout = "10s"

[log]
level = "warn"
format = "json"

[http]
listen = %q
public_url = %q
admin_listen = %q
admin_pprof = %t

[store]
driver = "sqlite"

[conversation]
customer_rate = "0s"
max_open = 0

[channels.sms.main]
account_sid = %q
auth_token = "${` + tokenEnv + `}"
from = "` + companyNumber + `"
api_url = %q
mps = 0.0
recipient_limit = 0

[vendors.whoson.sales]
url = %q
domain = "www.example.com"
auth_string = "test-auth"
api_key = "bench"

[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`

// world is a daemon's configuration and state with the fakes it talks to.
type world struct {
	twilio  *smstest.Server
	whoson  *whosontest.Server
	track   *tracker
	dir     string
	listen  string
	admin   string
	cfg     string
	hook    string // the webhook URL
	binary  string
	proc    *daemon
	client  *http.Client // scrapes and polls
	resumed *resumeLog
}

// newWorld starts the fakes and writes the configuration under parent.
func newWorld(parent, binary string, pprof bool) (*world, error) {
	w := &world{track: newTracker(), binary: binary, resumed: newResumeLog(),
		client: &http.Client{Timeout: 10 * time.Second}}
	var err error
	if w.dir, err = os.MkdirTemp(parent, "connectord-bench-"); err != nil {
		return nil, err
	}
	if w.twilio, err = smstest.New(smstest.Config{}); err != nil {
		w.close()
		return nil, err
	}
	// The operator answers every line at once; chats survive a restart
	// far longer than it takes.
	op := whosontest.Operator{Name: "Alice", Reply: w.track.reply}
	if w.whoson, err = whosontest.New(whosontest.Config{Operator: op, ResumeGrace: time.Hour}); err != nil {
		w.close()
		return nil, err
	}
	w.twilio.OnSent(w.track.sent)
	w.whoson.OnVisitorLine(w.track.line)
	w.whoson.OnResume(w.resumed.add)
	addrs, err := freeAddrs(2)
	if err != nil {
		w.close()
		return nil, err
	}
	w.listen, w.admin = addrs[0], addrs[1]
	w.hook = "http://" + w.listen + "/sms/main"
	text := fmt.Sprintf(configTemplate, filepath.Join(w.dir, "state"), w.listen, "http://"+w.listen,
		w.admin, pprof, w.twilio.AccountSID(), w.twilio.URL(), w.whoson.URL())
	w.cfg = filepath.Join(w.dir, "config.toml")
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// start runs the daemon and waits until it is ready; it returns how long
// that took.
func (w *world) start(ctx context.Context) (time.Duration, error) {
	began := time.Now()
	d, err := startDaemon(w.binary, w.cfg, w.admin, []string{tokenEnv + "=" + w.twilio.AuthToken()})
	if err != nil {
		return 0, err
	}
	w.proc = d
	return d.waitReady(ctx, w.client, began, 2*time.Minute)
}

// close stops the daemon and the fakes and removes the state.
func (w *world) close() {
	if w.proc != nil && !w.proc.exited() {
		w.proc.stop(15 * time.Second)
	}
	if w.whoson != nil {
		w.whoson.Close()
	}
	if w.twilio != nil {
		w.twilio.Close()
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
	}
}

// waitOutboxEmpty polls /metrics until the daemon's outbox is empty.
func (w *world) waitOutboxEmpty(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		m, err := w.proc.metrics(ctx, w.client)
		if err == nil && m.get("connectord_outbox_depth") == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("outbox not empty after %s (depth %v): %w", within, m.get("connectord_outbox_depth"), ctx.Err())
		case <-w.proc.done:
			return fmt.Errorf("connectord exited:\n%s", w.proc.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddrs returns n distinct free loopback addresses; every listener stays
// open until all are picked, so none is handed out twice.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// customer returns the phone number of customer i of a group; groups keep
// the load's customers apart from the footprint's.
func customer(group, i int) string {
	return fmt.Sprintf("+1555%d%06d", group, i)
}

// signedForm is one inbound webhook, encoded and signed ahead of time so
// that the load generator spends its CPU on sending.
type signedForm struct {
	body, sig string
}

// inboundForm returns Twilio's inbound-SMS webhook for a message, signed
// for hook. sid must be unique per message (the daemon drops repeats).
func inboundForm(tw *smstest.Server, hook, sid, from, body string) signedForm {
	f := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid},
		"AccountSid": {tw.AccountSID()}, "From": {from}, "To": {companyNumber},
		"Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"},
		"ApiVersion": {"2010-04-01"}, "FromCountry": {"US"}, "ToCountry": {"US"},
	}
	return signedForm{body: f.Encode(), sig: tw.Sign(hook, f)}
}

// messageSID makes a unique MessageSid from a kind (load or open), a step
// and a sequence number.
func messageSID(kind, step, seq int) string {
	return fmt.Sprintf("SM%08x%08x%016x", kind, step, seq)
}

// post sends one signed webhook and returns the HTTP status.
func post(ctx context.Context, client *http.Client, hook string, f signedForm) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, strings.NewReader(f.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", f.sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	drain(resp)
	return resp.StatusCode, nil
}

// tracker times each load message at the agent and its answer at the
// customer. A message's body is "b" + its index in the current step; the
// operator answers "echo: " + body. Other lines (conversation openers,
// notices) are not tracked.
type tracker struct {
	base time.Time
	cur  atomic.Pointer[stepTimes]
}

// stepTimes are one step's timestamps, in nanoseconds since tracker.base
// (0: not yet), indexed by message.
type stepTimes struct {
	atAgent, replied, atCustomer []atomic.Int64
	agents, customers            atomic.Int64 // how many of each arrived
}

func newTracker() *tracker { return &tracker{base: time.Now()} }

// begin starts tracking a step of n messages.
func (t *tracker) begin(n int) *stepTimes {
	st := &stepTimes{atAgent: make([]atomic.Int64, n), replied: make([]atomic.Int64, n),
		atCustomer: make([]atomic.Int64, n)}
	t.cur.Store(st)
	return st
}

func (t *tracker) now() int64 { return int64(time.Since(t.base)) }

// at converts a tracked timestamp back to a time.
func (t *tracker) at(ns int64) time.Time { return t.base.Add(time.Duration(ns)) }

// index finds a tracked message's index in text after prefix.
func (t *tracker) index(text, prefix string) (*stepTimes, int, bool) {
	st := t.cur.Load()
	rest, ok := strings.CutPrefix(text, prefix)
	if st == nil || !ok {
		return nil, 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(st.atAgent) {
		return nil, 0, false
	}
	return st, i, true
}

// line is the fake WhosOn's OnVisitorLine hook.
func (t *tracker) line(_, text string) {
	if st, i, ok := t.index(text, "b"); ok && st.atAgent[i].CompareAndSwap(0, t.now()) {
		st.agents.Add(1)
	}
}

// reply is the operator: it answers every line at once, noting when.
func (t *tracker) reply(text string) string {
	if st, i, ok := t.index(text, "b"); ok {
		st.replied[i].CompareAndSwap(0, t.now())
	}
	return "echo: " + text
}

// sent is the fake Twilio's OnSent hook.
func (t *tracker) sent(s smstest.Sent) {
	if st, i, ok := t.index(s.Body, "echo: b"); ok && st.atCustomer[i].CompareAndSwap(0, t.now()) {
		st.customers.Add(1)
	}
}

// resumeLog records which chats the fake WhosOn saw resumed.
type resumeLog struct {
	mu   sync.Mutex
	uids map[string]bool
}

func newResumeLog() *resumeLog { return &resumeLog{uids: make(map[string]bool)} }

func (r *resumeLog) add(uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uids[uid] = true
}

// count returns how many distinct chats were resumed.
func (r *resumeLog) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.uids)
}

func (r *resumeLog) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.uids)
}
