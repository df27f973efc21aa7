package main

// The restart soak: the real binary under steady traffic from SMS and Slack
// customers, answered by scripted agents on WhosOn (which will not re-attach
// a chat after a restart, as its document allows) and on the Customer
// Channel simulator, while the daemon is SIGKILLed and SIGTERMed at random
// moments and restarted at once. A checker then counts every acknowledged
// customer line at the agent side and every agent line at the customer side.
//
// The traffic, the agents and the checker (type traffic, below the soak's
// own code) are shared with the chaos test, which runs several instances on
// one PostgreSQL.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// The soak's shape. 25 restarts, each after a random pause of up to
// soakMaxGap once the daemon is ready again, fit in about 70 s of traffic.
const (
	soakKills  = 20
	soakTerms  = 5
	soakMinGap = 300 * time.Millisecond
	soakMaxGap = 5 * time.Second
)

// soakRestart is one signal and how long the daemon took to be ready again.
type soakRestart struct {
	sig    syscall.Signal
	at     time.Time
	exit   time.Duration // from the signal to the exit
	window time.Duration // from the signal to /readyz answering 200
	code   int           // exit code; -1 for a kill
}

// soak is one daemon, restarted again and again, under traffic.
type soak struct {
	*traffic
	w     *world
	procs []*process // every generation of the daemon, oldest first
}

// TestRestartSoak asserts, after 20 SIGKILLs and 5 SIGTERMs under traffic:
// no acknowledged customer line lost; repeats only toward WhosOn (it has no
// message ids), at most one per conversation per SIGKILL; no customer told
// that a chat ended or that a line could not be delivered; each customer's
// lines reach the agent in the order they were committed; every Customer
// Channel agent line reaches its customer exactly once, and no WhosOn answer
// twice. SOAK_SEED replays a run's random moments.
func TestRestartSoak(t *testing.T) {
	seed := testSeed(t, "SOAK_SEED")
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	s := newSoak(t)
	s.start()
	var restarts []soakRestart
	run := s.run(seed, trafficShape{whoson: 3, ccSMS: 2, slack: 2, lineGap: 700 * time.Millisecond},
		func() { restarts = s.restarts(rng) })
	kills, terms := 0, 0
	var windows []time.Duration
	for _, r := range restarts {
		windows = append(windows, r.window)
		if r.sig == syscall.SIGKILL {
			kills++
		} else {
			terms++
		}
	}
	v := s.verify(kills)
	slices.SortFunc(windows, cmp.Compare)
	t.Logf("traffic %s with %d SIGKILLs and %d SIGTERMs; settled in %s", run.traffic.Round(time.Millisecond), kills, terms, run.settled.Round(time.Millisecond))
	t.Logf("restart window (signal to /readyz 200): min %v, median %v, max %v", windows[0].Round(time.Millisecond),
		windows[len(windows)/2].Round(time.Millisecond), windows[len(windows)-1].Round(time.Millisecond))
	v.log(t)
	if t.Failed() {
		keepLogs(t, "soak", s.logs())
	}
}

func newSoak(t *testing.T) *soak {
	tr := newTraffic(t, trafficOptions{refuseReattach: true, settle: 45 * time.Second})
	addrs := freeAddrs(t, 2)
	w := &world{t: t, twilio: tr.twilio, whoson: tr.whoson, dir: t.TempDir(), addr: addrs[0], admin: addrs[1]}
	w.cfgPath = filepath.Join(w.dir, "config.toml")
	text := fmt.Sprintf(e2eHeader, filepath.Join(w.dir, "state"), w.addr, "http://"+w.addr) + tr.adapters()
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(tr.env(), "E2E_ADMIN_LISTEN="+w.admin)
	tr.base = "http://" + w.addr
	tr.outbox = func() (int, error) { return outboxDepth(w.admin) }
	return &soak{traffic: tr, w: w}
}

func (s *soak) logs() map[string]*process {
	logs := map[string]*process{}
	for i, p := range s.procs {
		logs[fmt.Sprintf("daemon-%02d.log", i)] = p
	}
	return logs
}

// start launches a daemon generation and waits until /readyz answers 200.
func (s *soak) start() {
	s.t.Helper()
	p := startDaemon(s.t, s.w.cfgPath, s.w.env)
	s.w.proc = p
	s.procs = append(s.procs, p)
	if err := awaitReady(p, s.w.addr, 20*time.Second); err != nil {
		keepLogs(s.t, "soak", s.logs())
		s.t.Fatalf("generation %d: %v", len(s.procs), err)
	}
}

// restarts signals the daemon soakKills times with SIGKILL and soakTerms
// times with SIGTERM, in a random order at random moments, restarting it
// right after each exit.
func (s *soak) restarts(rng *rand.Rand) []soakRestart {
	var plan []syscall.Signal
	for range soakKills {
		plan = append(plan, syscall.SIGKILL)
	}
	for range soakTerms {
		plan = append(plan, syscall.SIGTERM)
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	var done []soakRestart
	for i, sig := range plan {
		time.Sleep(soakMinGap + time.Duration(rng.Int64N(int64(soakMaxGap-soakMinGap))))
		r := s.restart(sig)
		done = append(done, r)
		s.t.Logf("restart %2d: %-10v exit %2d after %v, ready again after %v", i+1, sig, r.code,
			r.exit.Round(time.Millisecond), r.window.Round(time.Millisecond))
	}
	return done
}

func (s *soak) restart(sig syscall.Signal) soakRestart {
	s.t.Helper()
	p := s.w.proc
	r := soakRestart{sig: sig, at: time.Now()}
	if err := p.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		keepLogs(s.t, "soak", s.logs())
		s.t.Fatalf("daemon still running 15s after %v", sig)
	}
	r.exit = time.Since(r.at)
	r.code = p.cmd.ProcessState.ExitCode()
	if sig == syscall.SIGTERM && r.code != 0 {
		s.t.Errorf("SIGTERM: exit code %d, want 0", r.code)
	}
	s.start()
	r.window = time.Since(r.at)
	return r
}

// The traffic harness, shared by the soak and the chaos test: the fakes,
// customers writing steadily, scripted agents answering, and the checker
// that counts both sides.

// trafficAdapters is the configuration after [http] that the soak and the
// chaos test share: two SMS channels and a Slack channel (its mode line is
// the first %s), WhosOn behind the first number, the Customer Channel
// simulator behind the second and behind Slack.
const trafficAdapters = `
[conversation]
retry_initial = "50ms"
retry_max = "500ms"

[channels.sms.main]
account_sid = %q
auth_token = "${E2E_TWILIO_TOKEN}"
from = %q
api_url = %q
mps = 0             # the traffic outruns a real number on purpose: the fake has no queue
recipient_limit = 0 # and writes each customer more than Twilio's loop protection allows

[channels.sms.cc]
account_sid = %q
auth_token = "${E2E_TWILIO_TOKEN}"
from = %q
api_url = %q
mps = 0             # the traffic outruns a real number on purpose: the fake has no queue
recipient_limit = 0 # and writes each customer more than Twilio's loop protection allows

[channels.slack.support]
bot_token = "${E2E_SLACK_BOT_TOKEN}"
%s
channels = [%q]
api_url = %q
post_interval = "20ms"
catch_up_interval = "10ms"
` + e2eWhoson + `
[vendors.customerchannel.hub]
url = %q
eio = 4
connector_id = "sms"
connector_name = "connectord connector"
deliver_via = "sms.cc"
reconnect_max = "500ms"

[[routes]]
channel = "sms.main"
vendor = "whoson.sales"

[[routes]]
channel = "sms.cc"
vendor = "customerchannel.hub"

[[routes]]
channel = "slack.support"
vendor = "customerchannel.hub"
`

const (
	ccNumber      = "+15551230002" // sms.cc's own number
	contextStart  = "[connectord] This chat continues one that was disconnected."
	watchInterval = 250 * time.Millisecond // how often the checker looks at the agents' side during traffic
)

// trafficOptions sets up the fakes.
type trafficOptions struct {
	refuseReattach bool          // WhosOn will not re-attach a chat to a new socket
	slackEvents    bool          // Slack posts events (to base) instead of using Socket Mode
	settle         time.Duration // bound on waiting for the counts to converge
}

// trafficShape is who writes and how often.
type trafficShape struct {
	whoson, ccSMS, slack int           // SMS customers of WhosOn and of the Customer Channel, Slack customers
	lineGap              time.Duration // a customer's mean pause between lines
}

// trafficCustomer is one customer writing steadily.
type trafficCustomer struct {
	name   string // prefix of each of their lines: "w1-0007 ..."
	vendor string // "whoson" or "cc"
	number string // SMS: their phone number; "" for Slack
	to     string // SMS: the number they write to
	user   string // Slack: their user id
	root   string // Slack: their thread, set by the first line
}

// trafficLine is one customer line and what its source heard back.
type trafficLine struct {
	cust    *trafficCustomer
	text    string
	acked   bool   // SMS: the webhook answered 200 (perhaps on a retry)
	eventID string // Slack: acked is decided at the end from the fake's acks
	at      time.Time
	ackedAt time.Time // the first acknowledgement: the line was committed by then
}

// traffic is the fakes, the customers and what the checker saw.
type traffic struct {
	t      *testing.T
	opts   trafficOptions
	twilio *smstest.Server
	whoson *whosontest.Server
	slack  *slacktest.Server
	sim    *customerchanneltest.Server
	// base is where the fakes post webhooks and events: "http://" and the
	// daemon's listener, or the load balancer in front of several.
	base string
	// outbox reads the daemon's outbox depth (every instance's).
	outbox func() (int, error)
	// slackAcks says when each Slack event was first acknowledged, by event id.
	slackAcks func() map[string]time.Time

	mu        sync.Mutex
	customers []*trafficCustomer
	lines     []*trafficLine
	replies   map[string]int       // WhosOn operator answers, by text
	arrived   map[string]time.Time // when the checker first saw each customer line at an agent
}

// newTraffic starts the fakes: Twilio, WhosOn with an echoing operator,
// Slack with a shared #support, and the Customer Channel simulator with an
// echoing agent.
func newTraffic(t *testing.T, opts trafficOptions) *traffic {
	tr := &traffic{t: t, opts: opts, replies: map[string]int{}, arrived: map[string]time.Time{}}
	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twilio.Close)
	op := whosontest.Operator{Name: "Alice", Reply: func(text string) string {
		reply := "echo: " + text
		tr.mu.Lock()
		tr.replies[reply]++
		tr.mu.Unlock()
		return reply
	}}
	whoson, err := whosontest.New(whosontest.Config{Operator: op})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(whoson.Close)
	whoson.RefuseReattach(opts.refuseReattach)
	tr.twilio, tr.whoson = twilio, whoson
	tr.slack = slacktest.NewServer()
	t.Cleanup(tr.slack.Close)
	tr.slack.SetRetryDelay(200 * time.Millisecond)
	tr.slack.AddChannel(slacktest.Channel{ID: slackSupport, Name: "support", Shared: true})
	tr.slackAcks = tr.socketAcks
	tr.sim = customerchanneltest.StartTest(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// adapters is trafficAdapters filled in for these fakes.
func (tr *traffic) adapters() string {
	mode := fmt.Sprintf("app_token = %q", tr.slack.AppToken)
	if tr.opts.slackEvents {
		mode = `signing_secret = "${E2E_SLACK_SIGNING_SECRET}"`
	}
	tw := tr.twilio
	return fmt.Sprintf(trafficAdapters, tw.AccountSID(), companyNumber, tw.URL(), tw.AccountSID(), ccNumber, tw.URL(),
		mode, slackSupport, tr.slack.APIURL(), tr.whoson.URL(), tr.sim.URL)
}

// env is the environment the configuration's ${NAME}s read.
func (tr *traffic) env() []string {
	return []string{"E2E_TWILIO_TOKEN=" + tr.twilio.AuthToken(), "E2E_SLACK_BOT_TOKEN=" + tr.slack.BotToken,
		"E2E_SLACK_SIGNING_SECRET=" + tr.slack.SigningSecret, "E2E_INSTANCE_ID=e2e"}
}

// socketAcks reads the Socket Mode acks.
func (tr *traffic) socketAcks() map[string]time.Time {
	acks := map[string]time.Time{}
	for _, a := range tr.slack.Acks() {
		if at, ok := acks[a.EventID]; !ok || a.Time.Before(at) {
			acks[a.EventID] = a.Time
		}
	}
	return acks
}

// addCustomers makes the shape's customers, named w1.. (WhosOn), c1..
// (Customer Channel by SMS) and s1.. (by Slack).
func (tr *traffic) addCustomers(shape trafficShape) {
	for i := 1; i <= shape.whoson; i++ {
		tr.customers = append(tr.customers, &trafficCustomer{name: fmt.Sprintf("w%d", i), vendor: "whoson",
			number: fmt.Sprintf("+155570%05d", i), to: companyNumber})
	}
	for i := 1; i <= shape.ccSMS; i++ {
		tr.customers = append(tr.customers, &trafficCustomer{name: fmt.Sprintf("c%d", i), vendor: "cc",
			number: fmt.Sprintf("+155580%05d", i), to: ccNumber})
	}
	for i := 1; i <= shape.slack; i++ {
		c := &trafficCustomer{name: fmt.Sprintf("s%d", i), vendor: "cc", user: fmt.Sprintf("U0SOAK%04d", i)}
		tr.slack.AddUser(slacktest.User{ID: c.user, Name: c.name, RealName: "Soak " + c.name, DisplayName: c.name})
		tr.customers = append(tr.customers, c)
	}
}

// trafficRun is how long a run's traffic flowed and its counts took to settle.
type trafficRun struct {
	began            time.Time
	traffic, settled time.Duration
}

// run lets the shape's customers write while disrupt runs and a second
// longer, then waits for the counts to settle. Each customer's pauses come
// from seed.
func (tr *traffic) run(seed uint64, shape trafficShape, disrupt func()) trafficRun {
	tr.addCustomers(shape)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var talking, watching sync.WaitGroup
	for i, c := range tr.customers {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		talking.Go(func() { tr.talk(ctx, c, r, shape.lineGap) })
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer func() { stopWatch(); watching.Wait() }()
	watching.Go(func() { tr.watch(watchCtx) })
	run := trafficRun{began: time.Now()}
	disrupt()
	time.Sleep(time.Second) // a last stretch of traffic with the daemon up
	stop()
	talking.Wait()
	run.traffic = time.Since(run.began)
	run.settled = tr.settle()
	return run
}

// watch looks at the agents' side until ctx ends, so that arrival times
// are known to within watchInterval.
func (tr *traffic) watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchInterval):
		}
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tr.observe(octx) //nolint:errcheck // a missed look is made up by the next
		cancel()
	}
}

// talk sends the customer's lines until ctx ends, one at a time as a person
// would: an SMS is retried (same MessageSid, as Twilio does) until the
// webhook answers 200 or 15 s have passed.
func (tr *traffic) talk(ctx context.Context, c *trafficCustomer, r *rand.Rand, gap time.Duration) {
	words := []string{"printer", "invoice", "kettle", "router", "parcel", "refund", "login", "blue", "today", "again"}
	for seq := 1; ctx.Err() == nil; seq++ {
		text := fmt.Sprintf("%s-%04d %s %s", c.name, seq, words[r.IntN(len(words))], words[r.IntN(len(words))])
		l := &trafficLine{cust: c, text: text, at: time.Now()}
		if c.number != "" {
			if l.acked = tr.sendSMS(c, text); l.acked {
				l.ackedAt = time.Now()
			}
		} else {
			tr.mu.Lock()
			root := c.root
			tr.mu.Unlock()
			m := tr.slack.Post(slacktest.Post{Channel: slackSupport, User: c.user, ThreadTS: root, Text: text})
			l.eventID = m.EventID
			tr.mu.Lock()
			if c.root == "" {
				c.root = m.TS
			}
			tr.mu.Unlock()
		}
		tr.mu.Lock()
		tr.lines = append(tr.lines, l)
		tr.mu.Unlock()
		pause := time.Duration(r.Int64N(int64(2 * gap)))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (tr *traffic) sendSMS(c *trafficCustomer, text string) bool {
	tw := tr.twilio
	hook := tr.base + "/sms/main"
	if c.vendor == "cc" {
		hook = tr.base + "/sms/cc"
	}
	post := func(f func(ctx context.Context) (int, error)) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		status, err := f(ctx)
		return err == nil && status == http.StatusOK
	}
	var sid string
	if post(func(ctx context.Context) (status int, err error) {
		sid, status, err = tw.Inbound(ctx, hook, c.number, c.to, text)
		return status, err
	}) {
		return true
	}
	form := url.Values{"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid},
		"AccountSid": {tw.AccountSID()}, "From": {c.number}, "To": {c.to}, "Body": {text},
		"NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if post(func(ctx context.Context) (int, error) { return tw.PostWebhook(ctx, hook, form) }) {
			return true
		}
	}
	return false
}

// tally is what both sides saw, counted by text.
type tally struct {
	atAgent      map[string]int   // customer lines at WhosOn and the Customer Channel
	agentOrder   map[string][]int // each customer's sequence numbers in arrival order
	contexts     int              // context lines the agents got
	ccSaid       map[string]int   // Customer Channel agent lines
	atCustomer   map[string]int   // agent lines (echo: ...) customers got
	notices      []string         // everything else customers got, "customer: text"
	contextEcho  int              // agents' answers to context lines, at customers
	outboxDepth  int
	acked, total int
}

// observe reads both sides now, and notes the time of the customer lines
// the agents have that it had not seen before.
func (tr *traffic) observe(ctx context.Context) (tally, error) {
	tl := tally{atAgent: map[string]int{}, agentOrder: map[string][]int{}, ccSaid: map[string]int{}, atCustomer: map[string]int{}}
	agentLine := func(text string) {
		if strings.HasPrefix(text, contextStart) {
			tl.contexts++
			return
		}
		tl.atAgent[text]++
		if name, rest, ok := strings.Cut(text, "-"); ok && tl.atAgent[text] == 1 {
			seq, _ := strconv.Atoi(strings.Fields(rest)[0])
			tl.agentOrder[name] = append(tl.agentOrder[name], seq)
		}
	}
	for _, l := range tr.whoson.AllVisitorLines() {
		agentLine(l)
	}
	st, err := tr.sim.State(ctx)
	if err != nil {
		return tl, err
	}
	for _, c := range st.Conversations {
		for _, m := range c.Messages {
			switch {
			case m.Text == "":
			case m.From.ID == c.CustomerParticipantID:
				agentLine(m.Text)
			case m.Tag != "whisper" && strings.HasPrefix(m.Text, "echo: "):
				tl.ccSaid[m.Text]++
			}
		}
	}
	now := time.Now()
	tr.mu.Lock()
	for text := range tl.atAgent {
		if _, ok := tr.arrived[text]; !ok {
			tr.arrived[text] = now
		}
	}
	tr.mu.Unlock()
	customerGot := func(who, text string) {
		switch {
		case strings.HasPrefix(text, "echo: "+contextStart):
			tl.contextEcho++
		case strings.HasPrefix(text, "echo: "):
			tl.atCustomer[text]++
		default:
			tl.notices = append(tl.notices, who+": "+text)
		}
	}
	for _, m := range tr.twilio.Sent() {
		customerGot(m.To, m.Body)
	}
	tr.mu.Lock()
	roots := map[string]*trafficCustomer{}
	for _, c := range tr.customers {
		if c.root != "" {
			roots[c.root] = c
		}
	}
	tr.mu.Unlock()
	for root, c := range roots {
		for _, m := range tr.slack.Replies(slackSupport, root) {
			if m.User != c.user {
				customerGot(c.name, m.Text)
			}
		}
	}
	return tl, nil
}

// outboxDepth reads connectord_outbox_depth from an admin listener's /metrics.
func outboxDepth(admin string) (int, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "connectord_outbox_depth "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no connectord_outbox_depth in /metrics")
}

// ackedLines decides which Slack lines were acknowledged and returns every
// line sent.
func (tr *traffic) ackedLines() []*trafficLine {
	acks := tr.slackAcks()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, l := range tr.lines {
		if l.eventID != "" {
			l.ackedAt, l.acked = acks[l.eventID]
		}
	}
	return slices.Clone(tr.lines)
}

// converged reports whether nothing more is on its way: every acknowledged
// line reached an agent, every answer the agents gave reached its customer
// or (WhosOn) had its chat lost, and the daemon's outbox is empty.
func (tr *traffic) converged(tl tally) bool {
	for _, l := range tr.ackedLines() {
		if l.acked && tl.atAgent[l.text] == 0 {
			return false
		}
	}
	for text, n := range tl.ccSaid {
		if tl.atCustomer[text] < n {
			return false
		}
	}
	return tl.outboxDepth == 0
}

// settle waits, bounded, until the counts converge and hold still for a
// moment (the operators may still be answering), and reports how long.
func (tr *traffic) settle() time.Duration {
	began := time.Now()
	var last tally
	stable := 0
	for time.Since(began) < tr.opts.settle {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tl, err := tr.observe(ctx)
		cancel()
		if err == nil {
			tl.outboxDepth, err = tr.outbox()
		}
		if err == nil && tr.converged(tl) && sameCounts(tl, last) {
			if stable++; stable >= 3 {
				return time.Since(began)
			}
		} else {
			stable = 0
		}
		last = tl
		time.Sleep(300 * time.Millisecond)
	}
	tr.t.Errorf("counts did not converge within %s", tr.opts.settle)
	return time.Since(began)
}

func sameCounts(a, b tally) bool {
	return sum(a.atAgent) == sum(b.atAgent) && sum(a.atCustomer) == sum(b.atCustomer) &&
		a.contexts == b.contexts && len(a.notices) == len(b.notices) && sum(a.ccSaid) == sum(b.ccSaid)
}

// verdict is what verify counted.
type verdict struct {
	sent, acked, lost, unackedArrived int
	distinct, contexts                int
	whosonDups, ccDups                int
	dupsBy                            map[string]int // repeats at the agent, by customer
	ccSaid, ccAgentLost, ccAgentDup   int
	whosonSaid, whosonGot, agentDup   int
	contextEcho, notices              int
	// ackToAgent is the longest time from a line's acknowledgement to the
	// checker seeing it at the agent (to within watchInterval).
	ackToAgent time.Duration
}

// verify asserts the delivery targets after kills SIGKILLs and returns the
// counts: no acknowledged customer line lost; repeats only toward WhosOn
// (it has no message ids), at most one per conversation per SIGKILL; no
// customer told that a chat ended or that a line could not be delivered;
// each customer's lines at the agent in the order they were committed;
// every Customer Channel agent line at its customer exactly once, and no
// WhosOn answer twice.
func (tr *traffic) verify(kills int) verdict {
	t := tr.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := tr.observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines := tr.ackedLines()
	v := verdict{sent: len(lines), dupsBy: map[string]int{}, distinct: len(tl.atAgent), contexts: tl.contexts,
		contextEcho: tl.contextEcho, notices: len(tl.notices)}
	tr.verifyLines(tl, lines, &v)
	// WhosOn has no message ids: a line written in the instant before a
	// SIGKILL, not yet marked sent, is written again. One conversation has
	// at most one such line per kill.
	for name, n := range v.dupsBy {
		if strings.HasPrefix(name, "w") && n > kills {
			t.Errorf("WhosOn customer %s: %d repeated lines, more than one per SIGKILL (%d)", name, n, kills)
		}
	}
	tr.checkOrder(tl, lines)
	for _, n := range tl.notices {
		low := strings.ToLower(n)
		if strings.Contains(low, "ended") || strings.Contains(low, "could not keep") ||
			strings.Contains(low, "no agent could") || strings.Contains(low, "could not be delivered") {
			t.Errorf("customer notice after a restart: %q", n)
		}
	}
	tr.verifyAgentLines(tl, &v)
	return v
}

// verifyLines counts the customer lines at the agents.
func (tr *traffic) verifyLines(tl tally, lines []*trafficLine, v *verdict) {
	t := tr.t
	tr.mu.Lock()
	arrived := maps.Clone(tr.arrived)
	tr.mu.Unlock()
	for _, l := range lines {
		n := tl.atAgent[l.text]
		if l.acked {
			v.acked++
			if at, ok := arrived[l.text]; ok {
				v.ackToAgent = max(v.ackToAgent, at.Sub(l.ackedAt))
			}
		} else if n > 0 {
			v.unackedArrived++
		}
		if l.acked && n == 0 {
			v.lost++
			told := "nothing"
			for _, n := range tl.notices {
				if strings.Contains(n, l.text) {
					told = strconv.Quote(n)
				}
			}
			t.Errorf("LOST: %s line %q (sent %s, acknowledged) reached no agent; its customer was told %s",
				l.cust.vendor, l.text, l.at.Format("15:04:05.000"), told)
		}
		if n > 1 {
			v.dupsBy[l.cust.name] += n - 1
			if l.cust.vendor == "whoson" {
				v.whosonDups += n - 1
			} else {
				v.ccDups += n - 1
				t.Errorf("DUPLICATE: %q reached the Customer Channel agent %d times (it has message ids)", l.text, n)
			}
		}
	}
}

// verifyAgentLines counts the agent lines at the customers. The Customer
// Channel keeps its history: each reaches its customer exactly once. A
// WhosOn answer given while the daemon was down may die with a chat WhosOn
// will not re-attach, so it is counted, not required; none may arrive twice.
func (tr *traffic) verifyAgentLines(tl tally, v *verdict) {
	t := tr.t
	for text, n := range tl.ccSaid {
		v.ccSaid += n
		switch got := tl.atCustomer[text]; {
		case got < n:
			v.ccAgentLost += n - got
			t.Errorf("agent line %q said %d times on the Customer Channel, reached its customer %d times", text, n, got)
		case got > n:
			v.ccAgentDup += got - n
			t.Errorf("agent line %q said %d times on the Customer Channel, reached its customer %d times", text, n, got)
		}
	}
	tr.mu.Lock()
	replies := maps.Clone(tr.replies)
	tr.mu.Unlock()
	for text, n := range replies {
		if strings.HasPrefix(text, "echo: "+contextStart) {
			continue
		}
		got := tl.atCustomer[text]
		v.whosonSaid += n
		v.whosonGot += min(got, n)
		if got > n {
			v.agentDup += got - n
			t.Errorf("WhosOn answer %q said %d times, reached its customer %d times", text, n, got)
		}
	}
	for text := range tl.atCustomer {
		if _, ok := tl.ccSaid[text]; !ok && replies[text] == 0 {
			t.Errorf("customer got %q, which no agent said", text)
		}
	}
}

// log writes the counts to the test log.
func (v verdict) log(t *testing.T) {
	t.Logf("customer lines: %d sent, %d acknowledged, %d lost, %d unacknowledged that arrived anyway", v.sent, v.acked, v.lost, v.unackedArrived)
	t.Logf("at agents: %d distinct lines, %d repeats to WhosOn %v, %d repeats to the Customer Channel, %d context lines", v.distinct, v.whosonDups, v.dupsBy, v.ccDups, v.contexts)
	t.Logf("agent lines: Customer Channel %d said, %d lost, %d doubled; WhosOn %d answers, %d reached customers, %d doubled (the rest died with chats WhosOn would not re-attach)",
		v.ccSaid, v.ccAgentLost, v.ccAgentDup, v.whosonSaid, v.whosonGot, v.agentDup)
	t.Logf("customers also got %d answers to context lines and %d notices", v.contextEcho, v.notices)
	t.Logf("longest from acknowledgement to the agent: %v (seen to within %v)", v.ackToAgent.Round(time.Millisecond), watchInterval)
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// checkOrder checks that each customer's lines reached the agent in the
// order the daemon committed them, which its acknowledgements show. Slack
// redelivers an event the killed daemon never acknowledged after the ones
// that followed it: that line comes later because it was committed later.
func (tr *traffic) checkOrder(tl tally, lines []*trafficLine) {
	byName := map[string]map[int]*trafficLine{}
	for _, l := range lines {
		name, rest, _ := strings.Cut(l.text, "-")
		seq, _ := strconv.Atoi(strings.Fields(rest)[0])
		if byName[name] == nil {
			byName[name] = map[int]*trafficLine{}
		}
		byName[name][seq] = l
	}
	late := 0
	for name, seqs := range tl.agentOrder {
		reported := false
		for i, a := range seqs {
			for _, b := range seqs[i+1:] {
				if b > a {
					continue
				}
				// b was written before a but reached the agent after it.
				lb, la := byName[name][b], byName[name][a]
				if lb == nil || la == nil || !lb.acked || !la.acked || lb.ackedAt.After(la.ackedAt) {
					late++
					continue
				}
				if !reported {
					tr.t.Errorf("customer %s: line %d was acknowledged before line %d but reached the agent after it (arrival order %v)", name, b, a, seqs)
					reported = true
				}
			}
		}
	}
	if late > 0 {
		tr.t.Logf("%d line pairs reached agents in the order their source delivered them (a redelivery), not the order they were written", late)
	}
}

// testSeed returns the seed in the environment variable name, or a new one,
// and logs how to replay it.
func testSeed(t *testing.T, name string) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(name); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, name, seed)
	return seed
}

// startDaemon runs the binary on cfgPath with env added to the environment
// and returns at once. Unlike world.launch it does not dump the log when
// the test fails (dozens of generations would flood the output; keepLogs
// saves them instead).
func startDaemon(t *testing.T, cfgPath string, env []string) *process {
	p := &process{log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "run", "-config", cfgPath)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// awaitReady waits until the daemon p, listening on addr, answers /readyz
// with 200.
func awaitReady(p *process, addr string, within time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // for whoever waits on the exit next
			return fmt.Errorf("daemon exited before it was ready: %v; the end of its log:\n%s", err, lastBytes(p.log.String(), 4096))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not ready after %s", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// keepLogs saves the daemons' logs, by file name, in a directory that
// outlives the test, for a failure to be read.
func keepLogs(t *testing.T, kind string, logs map[string]*process) {
	dir, err := os.MkdirTemp("", "connectord-"+kind+"-logs-")
	if err != nil {
		t.Log(err)
		return
	}
	for name, p := range logs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(p.log.String()), 0o600); err != nil {
			t.Log(err)
		}
	}
	t.Logf("daemon logs of all %d processes kept in %s", len(logs), dir)
}

// lastBytes returns the end of s, at most n bytes of it: a daemon's whole
// log would bury the reason it stopped.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
