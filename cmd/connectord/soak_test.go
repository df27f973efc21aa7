package main

// The restart soak: the real binary under steady traffic from SMS and Slack
// customers, answered by scripted agents on WhosOn (which will not re-attach
// a chat after a restart, as its document allows) and on the Customer
// Channel simulator, while the daemon is SIGKILLed and SIGTERMed at random
// moments and restarted at once. A checker then counts every acknowledged
// customer line at the agent side and every agent line at the customer side.

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
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

const soakConfig = e2eHeader + `
[conversation]
retry_initial = "50ms"
retry_max = "500ms"

[channels.sms.main]
account_sid = %q
auth_token = "${E2E_TWILIO_TOKEN}"
from = %q
api_url = %q

[channels.sms.cc]
account_sid = %q
auth_token = "${E2E_TWILIO_TOKEN}"
from = %q
api_url = %q

[channels.slack.support]
bot_token = "${E2E_SLACK_BOT_TOKEN}"
app_token = %q
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

// The soak's shape. 25 restarts, each after a random pause of up to
// soakMaxGap once the daemon is ready again, fit in about 70 s of traffic.
const (
	soakKills    = 20
	soakTerms    = 5
	soakMinGap   = 300 * time.Millisecond
	soakMaxGap   = 5 * time.Second
	soakLineGap  = 700 * time.Millisecond // a customer's mean pause between lines
	soakSettle   = 45 * time.Second       // bound on waiting for counts to converge
	ccNumber     = "+15551230002"         // sms.cc's own number
	contextStart = "[connectord] This chat continues one that was disconnected."
)

// soakCustomer is one customer writing steadily.
type soakCustomer struct {
	name   string // prefix of each of their lines: "w1-0007 ..."
	vendor string // "whoson" or "cc"
	number string // SMS: their phone number; "" for Slack
	to     string // SMS: the number they write to
	user   string // Slack: their user id
	root   string // Slack: their thread, set by the first line
}

// soakLine is one customer line and what its source heard back.
type soakLine struct {
	cust    *soakCustomer
	text    string
	acked   bool   // SMS: the webhook answered 200 (perhaps on a retry)
	eventID string // Slack: acked is decided at the end from the fake's acks
	at      time.Time
	ackedAt time.Time // the first acknowledgement: the line was committed by then
}

// soakRestart is one signal and how long the daemon took to be ready again.
type soakRestart struct {
	sig    syscall.Signal
	at     time.Time
	exit   time.Duration // from the signal to the exit
	window time.Duration // from the signal to /readyz answering 200
	code   int           // exit code; -1 for a kill
}

// soak is the whole test's state.
type soak struct {
	t     *testing.T
	w     *world
	slack *slacktest.Server
	sim   *customerchanneltest.Server
	procs []*process // every generation of the daemon, oldest first

	mu      sync.Mutex
	lines   []*soakLine
	replies map[string]int // WhosOn operator answers, by text
}

// TestRestartSoak asserts, after 20 SIGKILLs and 5 SIGTERMs under traffic:
// no acknowledged customer line lost; repeats only toward WhosOn (it has no
// message ids), at most one per conversation per SIGKILL; no customer told
// that a chat ended or that a line could not be delivered; each customer's
// lines reach the agent in the order they were committed; every Customer
// Channel agent line reaches its customer exactly once, and no WhosOn answer
// twice. SOAK_SEED replays a run's random moments.
func TestRestartSoak(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SOAK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SOAK_SEED: %v", err)
		}
	}
	t.Logf("seed %d (rerun with SOAK_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	s := newSoak(t)
	s.start()
	customers := s.customers()

	ctx, stopTraffic := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	for i, c := range customers {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		traffic.Go(func() { s.talk(ctx, c, r) })
	}
	began := time.Now()
	restarts := s.restarts(rng)
	time.Sleep(time.Second) // a last stretch of traffic with the daemon up
	stopTraffic()
	traffic.Wait()
	trafficFor := time.Since(began)

	settled := s.settle()
	s.check(restarts, trafficFor, settled)
	if t.Failed() {
		s.keepLogs()
	}
}

func newSoak(t *testing.T) *soak {
	s := &soak{t: t, replies: map[string]int{}}
	op := whosontest.Operator{Name: "Alice", Reply: func(text string) string {
		reply := "echo: " + text
		s.mu.Lock()
		s.replies[reply]++
		s.mu.Unlock()
		return reply
	}}
	s.w = newWorld(t, op, 0)
	s.w.whoson.RefuseReattach(true)
	s.slack = slacktest.NewServer()
	t.Cleanup(s.slack.Close)
	s.slack.SetRetryDelay(200 * time.Millisecond)
	s.slack.AddChannel(slacktest.Channel{ID: slackSupport, Name: "support", Shared: true})
	s.sim = customerchanneltest.StartTest(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true}); err != nil {
		t.Fatal(err)
	}
	w := s.w
	text := fmt.Sprintf(soakConfig, filepath.Join(w.dir, "state"), w.addr, "http://"+w.addr,
		w.twilio.AccountSID(), companyNumber, w.twilio.URL(),
		w.twilio.AccountSID(), ccNumber, w.twilio.URL(),
		s.slack.AppToken, slackSupport, s.slack.APIURL(), w.whoson.URL(), s.sim.URL)
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "E2E_SLACK_BOT_TOKEN="+s.slack.BotToken)
	return s
}

// customers returns three SMS customers of WhosOn, two SMS customers and
// two Slack customers of the Customer Channel.
func (s *soak) customers() []*soakCustomer {
	var cs []*soakCustomer
	for i := 1; i <= 3; i++ {
		cs = append(cs, &soakCustomer{name: fmt.Sprintf("w%d", i), vendor: "whoson",
			number: fmt.Sprintf("+1555700000%d", i), to: companyNumber})
	}
	for i := 1; i <= 2; i++ {
		cs = append(cs, &soakCustomer{name: fmt.Sprintf("c%d", i), vendor: "cc",
			number: fmt.Sprintf("+1555800000%d", i), to: ccNumber})
	}
	for i := 1; i <= 2; i++ {
		c := &soakCustomer{name: fmt.Sprintf("s%d", i), vendor: "cc", user: fmt.Sprintf("U0SOAK000%d", i)}
		s.slack.AddUser(slacktest.User{ID: c.user, Name: c.name, RealName: "Soak " + c.name, DisplayName: c.name})
		cs = append(cs, c)
	}
	return cs
}

// start launches a daemon generation and waits until /readyz answers 200.
func (s *soak) start() {
	s.t.Helper()
	p := s.launch()
	if err := s.ready(p, 20*time.Second); err != nil {
		s.keepLogs()
		s.t.Fatalf("generation %d: %v", len(s.procs), err)
	}
}

// launch is world.launch without its log dump (26 generations would flood
// the output; keepLogs saves them instead).
func (s *soak) launch() *process {
	w := s.w
	p := &process{log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "run", "-config", w.cfgPath)
	p.cmd.Env = append(os.Environ(), "E2E_TWILIO_TOKEN="+w.twilio.AuthToken(), "E2E_ADMIN_LISTEN="+w.admin)
	p.cmd.Env = append(p.cmd.Env, w.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	w.proc = p
	s.procs = append(s.procs, p)
	s.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (s *soak) ready(p *process, within time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get("http://" + s.w.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			return fmt.Errorf("daemon exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not ready after %s", within)
		}
		time.Sleep(10 * time.Millisecond)
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
		s.keepLogs()
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

// talk sends the customer's lines until ctx ends, one at a time as a person
// would: an SMS is retried (same MessageSid, as Twilio does) until the
// webhook answers 200 or 15 s have passed.
func (s *soak) talk(ctx context.Context, c *soakCustomer, r *rand.Rand) {
	words := []string{"printer", "invoice", "kettle", "router", "parcel", "refund", "login", "blue", "today", "again"}
	for seq := 1; ctx.Err() == nil; seq++ {
		text := fmt.Sprintf("%s-%04d %s %s", c.name, seq, words[r.IntN(len(words))], words[r.IntN(len(words))])
		l := &soakLine{cust: c, text: text, at: time.Now()}
		if c.number != "" {
			if l.acked = s.sendSMS(c, text); l.acked {
				l.ackedAt = time.Now()
			}
		} else {
			s.mu.Lock()
			root := c.root
			s.mu.Unlock()
			m := s.slack.Post(slacktest.Post{Channel: slackSupport, User: c.user, ThreadTS: root, Text: text})
			l.eventID = m.EventID
			s.mu.Lock()
			if c.root == "" {
				c.root = m.TS
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.lines = append(s.lines, l)
		s.mu.Unlock()
		pause := time.Duration(r.Int64N(int64(2 * soakLineGap)))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (s *soak) sendSMS(c *soakCustomer, text string) bool {
	tw := s.w.twilio
	hook := "http://" + s.w.addr + "/sms/main"
	if c.vendor == "cc" {
		hook = "http://" + s.w.addr + "/sms/cc"
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

// observe reads both sides now.
func (s *soak) observe(ctx context.Context) (tally, error) {
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
	for _, l := range s.w.whoson.AllVisitorLines() {
		agentLine(l)
	}
	st, err := s.sim.State(ctx)
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
	for _, m := range s.w.twilio.Sent() {
		customerGot(m.To, m.Body)
	}
	s.mu.Lock()
	roots := map[string]*soakCustomer{}
	for _, l := range s.lines {
		if l.cust.root != "" {
			roots[l.cust.root] = l.cust
		}
	}
	s.mu.Unlock()
	for root, c := range roots {
		for _, m := range s.slack.Replies(slackSupport, root) {
			if m.User != c.user {
				customerGot(c.name, m.Text)
			}
		}
	}
	tl.outboxDepth, err = s.outboxDepth()
	return tl, err
}

// outboxDepth reads connectord_outbox_depth from the admin /metrics.
func (s *soak) outboxDepth() (int, error) {
	resp, err := http.Get("http://" + s.w.admin + "/metrics")
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
func (s *soak) ackedLines() []*soakLine {
	acks := map[string]time.Time{}
	for _, a := range s.slack.Acks() {
		if at, ok := acks[a.EventID]; !ok || a.Time.Before(at) {
			acks[a.EventID] = a.Time
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if l.eventID != "" {
			l.ackedAt, l.acked = acks[l.eventID]
		}
	}
	return slices.Clone(s.lines)
}

// converged reports whether nothing more is on its way: every acknowledged
// line reached an agent, every answer the agents gave reached its customer
// or (WhosOn) had its chat lost, and the daemon's outbox is empty.
func (s *soak) converged(tl tally) bool {
	for _, l := range s.ackedLines() {
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
func (s *soak) settle() time.Duration {
	began := time.Now()
	var last tally
	stable := 0
	for time.Since(began) < soakSettle {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tl, err := s.observe(ctx)
		cancel()
		if err == nil && s.converged(tl) && sameCounts(tl, last) {
			if stable++; stable >= 3 {
				return time.Since(began)
			}
		} else {
			stable = 0
		}
		last = tl
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Errorf("counts did not converge within %s", soakSettle)
	return time.Since(began)
}

func sameCounts(a, b tally) bool {
	return sum(a.atAgent) == sum(b.atAgent) && sum(a.atCustomer) == sum(b.atCustomer) &&
		a.contexts == b.contexts && len(a.notices) == len(b.notices) && sum(a.ccSaid) == sum(b.ccSaid)
}

// check asserts the targets and logs the counts.
func (s *soak) check(restarts []soakRestart, trafficFor, settled time.Duration) {
	t := s.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := s.observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines := s.ackedLines()
	kills := 0
	for _, r := range restarts {
		if r.sig == syscall.SIGKILL {
			kills++
		}
	}

	acked, lost, unackedArrived, whosonDups, ccDups := 0, 0, 0, 0, 0
	dupsBy := map[string]int{}
	for _, l := range lines {
		n := tl.atAgent[l.text]
		if l.acked {
			acked++
		} else if n > 0 {
			unackedArrived++
		}
		if l.acked && n == 0 {
			lost++
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
			dupsBy[l.cust.name] += n - 1
			if l.cust.vendor == "whoson" {
				whosonDups += n - 1
			} else {
				ccDups += n - 1
				t.Errorf("DUPLICATE: %q reached the Customer Channel agent %d times (it has message ids)", l.text, n)
			}
		}
	}
	// WhosOn has no message ids: a line written in the instant before a
	// SIGKILL, not yet marked sent, is written again. One conversation has
	// at most one such line per kill.
	for name, n := range dupsBy {
		if strings.HasPrefix(name, "w") && n > kills {
			t.Errorf("WhosOn customer %s: %d repeated lines, more than one per SIGKILL (%d)", name, n, kills)
		}
	}
	s.checkOrder(tl, lines)

	for _, n := range tl.notices {
		low := strings.ToLower(n)
		if strings.Contains(low, "ended") || strings.Contains(low, "could not keep") ||
			strings.Contains(low, "no agent could") || strings.Contains(low, "could not be delivered") {
			t.Errorf("customer notice after a restart: %q", n)
		}
	}

	// Agent lines. The Customer Channel keeps its history: each reaches its
	// customer exactly once. A WhosOn answer given while the daemon was down
	// dies with the chat WhosOn will not re-attach, so it is counted, not
	// required; none may arrive twice.
	ccAgentLost, ccAgentDup, whosonSaid, whosonGot, agentDup := 0, 0, 0, 0, 0
	for text, n := range tl.ccSaid {
		switch got := tl.atCustomer[text]; {
		case got < n:
			ccAgentLost += n - got
			t.Errorf("agent line %q said %d times on the Customer Channel, reached its customer %d times", text, n, got)
		case got > n:
			ccAgentDup += got - n
			t.Errorf("agent line %q said %d times on the Customer Channel, reached its customer %d times", text, n, got)
		}
	}
	s.mu.Lock()
	replies := maps.Clone(s.replies)
	s.mu.Unlock()
	for text, n := range replies {
		if strings.HasPrefix(text, "echo: "+contextStart) {
			continue
		}
		got := tl.atCustomer[text]
		whosonSaid += n
		whosonGot += min(got, n)
		if got > n {
			agentDup += got - n
			t.Errorf("WhosOn answer %q said %d times, reached its customer %d times", text, n, got)
		}
	}
	for text := range tl.atCustomer {
		if _, ok := tl.ccSaid[text]; !ok && replies[text] == 0 {
			t.Errorf("customer got %q, which no agent said", text)
		}
	}

	var windows []time.Duration
	terms := 0
	for _, r := range restarts {
		windows = append(windows, r.window)
		if r.sig == syscall.SIGTERM {
			terms++
		}
	}
	slices.SortFunc(windows, cmp.Compare)
	t.Logf("traffic %s with %d SIGKILLs and %d SIGTERMs; settled in %s", trafficFor.Round(time.Millisecond), kills, terms, settled.Round(time.Millisecond))
	t.Logf("restart window (signal to /readyz 200): min %v, median %v, max %v", windows[0].Round(time.Millisecond),
		windows[len(windows)/2].Round(time.Millisecond), windows[len(windows)-1].Round(time.Millisecond))
	t.Logf("customer lines: %d sent, %d acknowledged, %d lost, %d unacknowledged that arrived anyway", len(lines), acked, lost, unackedArrived)
	t.Logf("at agents: %d distinct lines, %d repeats to WhosOn %v, %d repeats to the Customer Channel, %d context lines", len(tl.atAgent), whosonDups, dupsBy, ccDups, tl.contexts)
	t.Logf("agent lines: Customer Channel %d said, %d lost, %d doubled; WhosOn %d answers, %d reached customers, %d doubled (the rest died with chats WhosOn would not re-attach)",
		sum(tl.ccSaid), ccAgentLost, ccAgentDup, whosonSaid, whosonGot, agentDup)
	t.Logf("customers also got %d answers to context lines and %d notices", tl.contextEcho, len(tl.notices))
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
func (s *soak) checkOrder(tl tally, lines []*soakLine) {
	byName := map[string]map[int]*soakLine{}
	for _, l := range lines {
		name, rest, _ := strings.Cut(l.text, "-")
		seq, _ := strconv.Atoi(strings.Fields(rest)[0])
		if byName[name] == nil {
			byName[name] = map[int]*soakLine{}
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
					s.t.Errorf("customer %s: line %d was acknowledged before line %d but reached the agent after it (arrival order %v)", name, b, a, seqs)
					reported = true
				}
			}
		}
	}
	if late > 0 {
		s.t.Logf("%d line pairs reached agents in the order their source delivered them (a redelivery), not the order they were written", late)
	}
}

// keepLogs saves every generation's log in a directory that outlives the
// test, for a failure to be read.
func (s *soak) keepLogs() {
	dir, err := os.MkdirTemp("", "connectord-soak-logs-")
	if err != nil {
		s.t.Log(err)
		return
	}
	for i, p := range s.procs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("daemon-%02d.log", i)), []byte(p.log.String()), 0o600); err != nil {
			s.t.Log(err)
		}
	}
	s.t.Logf("daemon logs of all %d generations kept in %s", len(s.procs), dir)
}
