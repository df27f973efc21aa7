package main

// The chaos test: three instances of the binary on one PostgreSQL, behind a
// round-robin load balancer, under the soak's traffic (SMS and Slack
// customers, scripted agents on WhosOn and the Customer Channel simulator;
// here WhosOn re-attaches a chat to the socket of the instance that took it
// over, and Slack posts its events to the balancer);
// every few seconds one instance is SIGKILLed, and started again after a
// pause that is sometimes shorter than its lease (it resumes its own
// conversations) and sometimes longer (the others have taken them over).
// The soak's checker then counts every acknowledged customer line at the
// agents and every agent line at the customers, and the test prints lines
// sent, lost, doubled, the longest a conversation went unserved after a kill
// and the throughput.
//
// The kills go on for a minute by default: the test fits in the normal
// `go test -race ./...`. The environment variable CHAOS_DURATION (a Go
// duration) runs it longer:
//
//	CHAOS_DURATION=5m go test -race -run TestChaos -timeout 20m ./cmd/connectord/
//
// CHAOS_SEED replays a run's random moments.

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	chaosInstances = 3
	chaosLease     = 5 * time.Second
	chaosMinGap    = 2 * time.Second // between kills
	chaosMaxGap    = 5 * time.Second
	chaosMaxDown   = 2 * chaosLease         // longest pause before a killed instance starts again
	chaosUnserved  = 10 * time.Second       // target: the longest a conversation may go unserved after a kill
	chaosDuration  = 60 * time.Second       // default length of the kills
	chaosSettle    = 30 * time.Second       // bound on waiting for the counts to converge
	chaosHealth    = 200 * time.Millisecond // the balancer's health-check interval
)

// chaosPostgres is an instance's [store]; the DSN comes from the environment.
const chaosPostgres = `
[store]
driver = "postgres"
dsn = "${CONNECTORD_DSN}"
lease = %q
`

// chaosInstance is one instance: its addresses, configuration and every
// process that ran it.
type chaosInstance struct {
	id, addr, admin, cfgPath string
	env                      []string

	mu    sync.Mutex
	proc  *process // the running process; nil while it is down
	procs []*process
}

// chaosKill is one SIGKILL and what it cost.
type chaosKill struct {
	n     int
	inst  *chaosInstance
	at    time.Time
	owned []*trafficCustomer // the customers whose conversations it owned
	down  time.Duration      // from the kill to the next start
	ready time.Duration      // from that start to /readyz 200
	// unserved is, per customer it owned, the time from the kill to the
	// first line they wrote after it reaching an agent; a customer missing
	// wrote nothing after the kill that arrived. superseded holds those
	// whose owner was killed again before it served them (measureUnserved).
	unserved, superseded map[string]time.Duration
}

// chaos is the cluster under test.
type chaos struct {
	*traffic
	db        *sql.DB
	instances []*chaosInstance
	lb        *chaosLB

	acksMu    sync.Mutex
	slackAcks map[string]time.Time // Slack event id -> first 2xx from the balancer
}

// TestChaos asserts, after an instance of three was SIGKILLed every few
// seconds under traffic: what the soak asserts (nothing acknowledged lost,
// no doubles toward the Customer Channel, at most one repeat per WhosOn
// conversation per kill, order, no customer told of an end), and that no
// conversation went unserved for longer than chaosUnserved after a kill.
func TestChaos(t *testing.T) {
	seed := testSeed(t, "CHAOS_SEED")
	dur := chaosDuration
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0xc4a05))
	c := newChaos(t)
	c.startAll()
	shape := trafficShape{whoson: 5, ccSMS: 4, slack: 3, lineGap: time.Second}
	var kills []*chaosKill
	run := c.run(seed, shape, func() { kills = c.killLoop(rng, dur) })
	v := c.verify(len(kills))
	c.measureUnserved(kills)
	c.report(run, v, kills)
	if t.Failed() {
		keepLogs(t, "chaos", c.logs())
	}
}

func newChaos(t *testing.T) *chaos {
	tr := newTraffic(t, trafficOptions{slackEvents: true, settle: chaosSettle})
	c := &chaos{traffic: tr, slackAcks: map[string]time.Time{}}
	dsn, db := chaosDatabase(t)
	c.db = db
	n, store := chaosInstances, fmt.Sprintf(chaosPostgres, chaosLease.String())
	addrs := freeAddrs(t, 2*n)
	var publics []string
	for i := range n {
		publics = append(publics, addrs[2*i])
	}
	c.lb = newChaosLB(t, publics, chaosHealth)
	c.lb.answered = c.answered
	tr.base = c.lb.URL()
	tr.slack.SetEventsURL(c.lb.URL() + "/slack/support/events")
	tr.slackAcks = c.eventAcks
	tr.outbox = c.outboxDepth
	dir := t.TempDir()
	for i := range n {
		in := &chaosInstance{id: string(rune('a' + i)), addr: addrs[2*i], admin: addrs[2*i+1]}
		in.cfgPath = filepath.Join(dir, in.id+".toml")
		text := fmt.Sprintf(e2eHeader, filepath.Join(dir, in.id), in.addr, c.lb.URL()) + store + tr.adapters()
		if err := os.WriteFile(in.cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		in.env = append(tr.env(), "CONNECTORD_DSN="+dsn, "E2E_INSTANCE_ID="+in.id, "E2E_ADMIN_LISTEN="+in.admin)
		c.instances = append(c.instances, in)
	}
	return c
}

// answered notes when the balancer first answered a Slack event with 2xx:
// Slack counts that as the acknowledgement.
func (c *chaos) answered(path string, body []byte, status int, at time.Time) {
	if !strings.HasPrefix(path, "/slack/") || status < 200 || status > 299 {
		return
	}
	_, rest, ok := strings.Cut(string(body), `"event_id":"`)
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, `"`)
	c.acksMu.Lock()
	defer c.acksMu.Unlock()
	if _, seen := c.slackAcks[id]; !seen {
		c.slackAcks[id] = at
	}
}

func (c *chaos) eventAcks() map[string]time.Time {
	c.acksMu.Lock()
	defer c.acksMu.Unlock()
	return maps.Clone(c.slackAcks)
}

// outboxDepth adds up the outbox depths the instances that are up report.
func (c *chaos) outboxDepth() (int, error) {
	total := 0
	for _, in := range c.instances {
		in.mu.Lock()
		up := in.proc != nil
		in.mu.Unlock()
		if !up {
			return 0, fmt.Errorf("instance %s is down", in.id)
		}
		n, err := outboxDepth(in.admin)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (c *chaos) logs() map[string]*process {
	logs := map[string]*process{}
	for _, in := range c.instances {
		for i, p := range in.procs {
			logs[fmt.Sprintf("%s-%02d.log", in.id, i)] = p
		}
	}
	return logs
}

// startAll starts every instance and waits until each is ready.
func (c *chaos) startAll() {
	var wg sync.WaitGroup
	errs := make([]error, len(c.instances))
	for i, in := range c.instances {
		wg.Go(func() { _, errs[i] = c.start(in) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			keepLogs(c.t, "chaos", c.logs())
			c.t.Fatalf("instance %s: %v", c.instances[i].id, err)
		}
	}
}

// start starts an instance and waits until it is ready, returning how long that took.
func (c *chaos) start(in *chaosInstance) (time.Duration, error) {
	began := time.Now()
	p := startDaemon(c.t, in.cfgPath, in.env)
	in.mu.Lock()
	in.procs = append(in.procs, p)
	in.mu.Unlock()
	err := awaitReady(p, in.addr, 30*time.Second)
	in.mu.Lock()
	in.proc = p
	in.mu.Unlock()
	return time.Since(began), err
}

// killLoop SIGKILLs an instance that is up (see victim) every chaosMinGap
// to chaosMaxGap until dur has passed, never the last one up, and starts each
// again after a random pause of up to chaosMaxDown. It returns once every
// instance is up again.
func (c *chaos) killLoop(rng *rand.Rand, dur time.Duration) []*chaosKill {
	var kills []*chaosKill
	var restarting sync.WaitGroup
	for end := time.Now().Add(dur); time.Now().Before(end); {
		time.Sleep(chaosMinGap + time.Duration(rng.Int64N(int64(chaosMaxGap-chaosMinGap))))
		var up []*chaosInstance
		for _, in := range c.instances {
			in.mu.Lock()
			if in.proc != nil {
				up = append(up, in)
			}
			in.mu.Unlock()
		}
		if len(up) < 2 {
			continue
		}
		k := &chaosKill{n: len(kills) + 1, inst: c.victim(rng, up)}
		pause := time.Duration(rng.Int64N(int64(chaosMaxDown)))
		c.kill(k)
		kills = append(kills, k)
		restarting.Go(func() {
			time.Sleep(pause)
			k.down = time.Since(k.at)
			var err error
			if k.ready, err = c.start(k.inst); err != nil {
				c.t.Errorf("instance %s after kill %d: %v", k.inst.id, k.n, err)
			}
		})
	}
	restarting.Wait()
	return kills
}

// victim picks the instance to kill among those up: half the time the one
// that owns the most conversations (after a takeover one instance tends to
// own them all, and killing the idle ones tests little), else any.
func (c *chaos) victim(rng *rand.Rand, up []*chaosInstance) *chaosInstance {
	if rng.IntN(2) == 0 {
		return up[rng.IntN(len(up))]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	best, most := up[0], -1
	for _, in := range up {
		owned, err := ownedBy(ctx, c.db, in.id)
		if err != nil {
			c.t.Errorf("who does instance %s serve: %v", in.id, err)
		}
		if len(owned) > most {
			best, most = in, len(owned)
		}
	}
	return best
}

// kill notes whom the instance serves and SIGKILLs it.
func (c *chaos) kill(k *chaosKill) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	owned, err := ownedBy(ctx, c.db, k.inst.id)
	if err != nil {
		c.t.Errorf("kill %d: who does instance %s serve: %v", k.n, k.inst.id, err)
	}
	k.owned = c.customersOf(owned)
	k.inst.mu.Lock()
	p := k.inst.proc
	k.inst.proc = nil
	k.inst.mu.Unlock()
	k.at = time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		c.t.Errorf("kill %d: %v", k.n, err)
	}
	<-p.done
}

// customersOf maps the store's customer keys to the traffic's customers.
func (c *chaos) customersOf(keys []string) []*trafficCustomer {
	c.traffic.mu.Lock()
	defer c.traffic.mu.Unlock()
	var out []*trafficCustomer
	for _, cust := range c.customers {
		for _, key := range keys {
			if cust.number != "" && key == cust.number || cust.root != "" && strings.Contains(key, cust.root) {
				out = append(out, cust)
				break
			}
		}
	}
	return out
}

// measureUnserved fills in each kill's unserved times, and fails the test
// for a customer unserved longer than chaosUnserved. When the customer's
// owner was killed again within chaosUnserved of the kill and before it
// served them (the killed instance started again and still owned them, or
// the one that took them over), the later kill's time is the one that
// counts: nobody can serve a conversation whose owner dies twice in a row
// sooner than a lease after the second death. The earlier one is kept, and
// printed, as superseded. An owner that held them for the whole
// chaosUnserved without serving them gets no such excuse.
func (c *chaos) measureUnserved(kills []*chaosKill) {
	lines := c.ackedLines()
	c.traffic.mu.Lock()
	arrived := maps.Clone(c.arrived)
	c.traffic.mu.Unlock()
	for i, k := range kills {
		k.unserved, k.superseded = map[string]time.Duration{}, map[string]time.Duration{}
		for _, cust := range k.owned {
			first, wrote := firstArrival(lines, arrived, cust, k.at)
			switch {
			case !first.IsZero() && killedAgain(kills[i+1:], cust, k.at, first):
				k.superseded[cust.name] = first.Sub(k.at)
			case !first.IsZero():
				k.unserved[cust.name] = first.Sub(k.at)
				if d := first.Sub(k.at); d > chaosUnserved {
					c.t.Errorf("kill %d of instance %s: customer %s unserved for %v (target %v)", k.n, k.inst.id, cust.name, d.Round(time.Millisecond), chaosUnserved)
				}
			case wrote:
				c.t.Errorf("kill %d of instance %s: nothing customer %s wrote after it reached an agent", k.n, k.inst.id, cust.name)
			}
		}
	}
}

// firstArrival returns when the first line cust wrote after since reached
// an agent (zero when none did), and whether they wrote any.
func firstArrival(lines []*trafficLine, arrived map[string]time.Time, cust *trafficCustomer, since time.Time) (time.Time, bool) {
	var first time.Time
	wrote := false
	for _, l := range lines {
		if l.cust != cust || l.at.Before(since) {
			continue
		}
		wrote = true
		if at, ok := arrived[l.text]; ok && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, wrote
}

// killedAgain reports whether one of the later kills, before served and
// within chaosUnserved of since, was of the instance that owned cust then.
func killedAgain(later []*chaosKill, cust *trafficCustomer, since, served time.Time) bool {
	for _, k := range later {
		if k.at.After(served) || k.at.Sub(since) > chaosUnserved {
			return false
		}
		if slices.Contains(k.owned, cust) {
			return true
		}
	}
	return false
}

// report logs the figures.
func (c *chaos) report(run trafficRun, v verdict, kills []*chaosKill) {
	t := c.t
	var worst, worstSuperseded time.Duration
	superseded := 0
	for _, k := range kills {
		name, d := longest(k.unserved)
		worst = max(worst, d)
		line := fmt.Sprintf("kill %2d: instance %s at +%v owned %d conversations; up again after %v (ready %v later); longest unserved %v (%s)",
			k.n, k.inst.id, k.at.Sub(run.began).Round(time.Millisecond), len(k.owned), k.down.Round(time.Millisecond),
			k.ready.Round(time.Millisecond), d.Round(time.Millisecond), name)
		if name, d := longest(k.superseded); name != "" {
			superseded += len(k.superseded)
			worstSuperseded = max(worstSuperseded, d)
			line += fmt.Sprintf("; %d killed again before served, longest %v (%s)", len(k.superseded), d.Round(time.Millisecond), name)
		}
		t.Log(line)
	}
	v.log(t)
	secs := run.traffic.Seconds()
	t.Logf("CHAOS: %d instances, %d customers, traffic %v, %d SIGKILLs, settled in %v", len(c.instances), len(c.customers),
		run.traffic.Round(time.Millisecond), len(kills), run.settled.Round(time.Millisecond))
	t.Logf("CHAOS: lines sent %d (%d acknowledged), lost %d (target 0), doubled %d toward the Customer Channel (target 0) and %d toward WhosOn (no ids), agent lines doubled %d",
		v.sent, v.acked, v.lost, v.ccDups, v.whosonDups, v.ccAgentDup+v.agentDup)
	t.Logf("CHAOS: longest unserved after a kill %v (target %v; %d measures superseded by a second kill of the owner, longest %v); longest acknowledgement to agent %v",
		worst.Round(time.Millisecond), chaosUnserved, superseded, worstSuperseded.Round(time.Millisecond), v.ackToAgent.Round(time.Millisecond))
	t.Logf("CHAOS: throughput %.1f customer lines/s sent, %.1f/s reached agents", float64(v.sent)/secs, float64(v.distinct)/secs)
}

// longest returns the largest duration in m and its key.
func longest(m map[string]time.Duration) (string, time.Duration) {
	name, worst := "", time.Duration(0)
	for k, d := range m {
		if d > worst || name == "" {
			name, worst = k, d
		}
	}
	return name, worst
}
