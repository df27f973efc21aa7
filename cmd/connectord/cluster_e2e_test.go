package main

// Two instances of the real binary on one PostgreSQL: a customer line taken
// by the instance that does not own the conversation reaches the agent
// through its owner; a SIGKILLed owner's conversation is served by the other
// within 10 s; a SIGTERMed one hands its conversations over at once.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

const clusterConfig = e2eHeader + `
[store]
driver = "postgres"
dsn = "${E2E_DSN}"
lease = "5s"
` + e2eRetry + e2eSMS

// clusterWhoson routes SMS to WhosOn; its %q is the fake's URL.
const clusterWhoson = e2eWhoson + `
[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`

// clusterCC routes SMS to the Customer Channel simulator, whose campaigns go
// out by SMS; its %q is the simulator's URL.
const clusterCC = `
[vendors.customerchannel.hub]
url = %q
connector_id = "sms"
connector_name = "connectord connector"
deliver_via = "sms.main"
reconnect_max = "500ms"

[[routes]]
channel = "sms.main"
vendor = "customerchannel.hub"
`

// clusterNode is one instance.
type clusterNode struct {
	id, addr, admin, cfgPath string
	env                      []string // more environment, after the cluster's
	proc                     *process
}

// cluster is two or more instances on one database, behind a front that
// sends each webhook to the instance the test names (every instance shares
// the front's URL as public_url, as behind a load balancer).
type cluster struct {
	t      *testing.T
	twilio *smstest.Server
	whoson *whosontest.Server
	db     *sql.DB
	dsn    string
	env    []string
	nodes  map[string]*clusterNode
	target atomic.Pointer[string] // the node the front sends to
	front  *httptest.Server
}

func newCluster(t *testing.T, ids ...string) *cluster {
	t.Helper()
	return newClusterWith(t, func(c *cluster) string { return fmt.Sprintf(clusterWhoson, c.whoson.URL()) }, ids...)
}

// newClusterWith is newCluster with the vendor and routes block vendors
// returns appended to each instance's configuration.
func newClusterWith(t *testing.T, vendors func(c *cluster) string, ids ...string) *cluster {
	t.Helper()
	dsn, db := chaosDatabase(t)
	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twilio.Close)
	whoson, err := whosontest.New(whosontest.Config{Operator: echoOperator(), ResumeGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(whoson.Close)
	c := &cluster{t: t, twilio: twilio, whoson: whoson, db: db, dsn: dsn, nodes: map[string]*clusterNode{},
		env: []string{"E2E_DSN=" + dsn, "E2E_TWILIO_TOKEN=" + twilio.AuthToken()}}
	c.front = httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		u, _ := url.Parse("http://" + c.nodes[*c.target.Load()].addr)
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}})
	t.Cleanup(c.front.Close)
	c.target.Store(&ids[0]) // Twilio's status callbacks go there until a test names one
	addrs := freeAddrs(t, 2*len(ids))
	dir := t.TempDir()
	for i, id := range ids {
		n := &clusterNode{id: id, addr: addrs[2*i], admin: addrs[2*i+1], cfgPath: filepath.Join(dir, id+".toml")}
		n.env = []string{"E2E_INSTANCE_ID=" + id, "E2E_ADMIN_LISTEN=" + n.admin}
		text := fmt.Sprintf(clusterConfig, filepath.Join(dir, id), n.addr, c.front.URL,
			twilio.AccountSID(), companyNumber, twilio.URL()) + vendors(c)
		if err := os.WriteFile(n.cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = n
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				if n.proc != nil {
					t.Logf("instance %s log:\n%s", n.id, n.proc.log.String())
				}
			}
		}
	})
	return c
}

// start starts an instance and waits until it is ready.
func (c *cluster) start(id string) {
	c.t.Helper()
	n := c.nodes[id]
	n.proc = startDaemon(c.t, n.cfgPath, append(slices.Clip(c.env), n.env...))
	if err := awaitReady(n.proc, n.addr, 30*time.Second); err != nil {
		c.t.Fatalf("instance %s: %v\n%s", id, err, n.proc.log.String())
	}
}

// sms posts a customer's text through the front to instance via.
func (c *cluster) sms(via, from, text string) {
	c.t.Helper()
	c.target.Store(&via)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, status, err := c.twilio.Inbound(ctx, c.front.URL+"/sms/main", from, companyNumber, text)
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("inbound %q via %s: status %d, %v", text, via, status, err)
	}
}

// echoed waits for the agent's echo of text to reach the customer, and
// returns when it arrived.
func (c *cluster) echoed(to, text string, within time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if countSMS(c.twilio.Sent(), to, "echo: "+text) > 0 {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no echo of %q reached %s within %s; sent: %+v", text, to, within, c.twilio.Sent())
	return time.Time{}
}

// owner reads who owns the customer's open conversation.
func (c *cluster) owner(customer string) string {
	c.t.Helper()
	var owner string
	err := c.db.QueryRow(`SELECT owner FROM conversations WHERE customer = $1 AND state <> 'ended'`, customer).Scan(&owner)
	if err != nil {
		c.t.Fatalf("owner of %s: %v", customer, err)
	}
	return owner
}

func countSMS(sent []smstest.Sent, to, body string) int {
	n := 0
	for _, s := range sent {
		if s.To == to && s.Body == body {
			n++
		}
	}
	return n
}

func TestClusterTakeover(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.start("a")
	c.start("b")
	const alice = "+15550001111"

	c.sms("a", alice, "one")
	c.echoed(alice, "one", 15*time.Second)
	if got := c.owner(alice); got != "a" {
		t.Fatalf("the conversation started on a is owned by %q", got)
	}

	// Taken by b, served by its owner a: b commits it and wakes a.
	c.sms("b", alice, "two")
	c.echoed(alice, "two", 5*time.Second)
	if got := c.owner(alice); got != "a" {
		t.Fatalf("after a line taken by b, owner = %q, want a", got)
	}

	// a dies holding the conversation: b takes it after the lease lapses.
	killed := time.Now()
	if err := c.nodes["a"].proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.nodes["a"].proc.done
	c.sms("b", alice, "three")
	// b takes it once a's lease (5 s) lapses: the wait for the echo, three
	// leases long, fails if nobody does; how long it took is logged.
	served := c.echoed(alice, "three", 15*time.Second).Sub(killed)
	t.Logf("SIGKILLed owner: its conversation served again %s after the kill (lease 5s)", served.Round(time.Millisecond))
	if got := c.owner(alice); got != "b" {
		t.Errorf("after a's death, owner = %q, want b", got)
	}
	lines := c.whoson.AllVisitorLines()
	for _, l := range []string{"one", "two", "three"} {
		if n := countValue(lines, l); n != 1 {
			t.Errorf("agent got %q %d times, want once (lines %q)", l, n, lines)
		}
	}

	// a comes back and starts a conversation; stopped, it hands it over at once.
	c.start("a")
	const bob = "+15550002222"
	c.sms("a", bob, "hello")
	c.echoed(bob, "hello", 15*time.Second)
	if got := c.owner(bob); got != "a" {
		t.Fatalf("bob's conversation owned by %q, want a", got)
	}
	if err := c.nodes["a"].proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-c.nodes["a"].proc.done; err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, c.nodes["a"].proc.log.String())
	}
	stopped := time.Now()
	// Handed back on the way out: nobody owns it, or b has claimed it
	// already. Still a's, it would wait for a's lease (5 s) to lapse.
	if got := c.owner(bob); got == "a" {
		t.Errorf("after a's SIGTERM, bob's conversation is still a's: not handed back")
	}
	c.sms("b", bob, "again")
	handed := c.echoed(bob, "again", 15*time.Second).Sub(stopped)
	t.Logf("SIGTERMed owner: its conversation served again %s after it exited", handed.Round(time.Millisecond))
	if got := c.owner(bob); got != "b" {
		t.Errorf("after a's stop, bob's owner = %q, want b", got)
	}
	c.reports("b", "instance b, owns 2 conversations",
		"connectord_conversations_owned 2", "connectord_conversations_claimed_total 2")
}

// reports waits until instance id's admin /readyz says detail for the
// cluster and its /metrics has every line of metrics: the owned count
// follows within a claim round.
func (c *cluster) reports(id, detail string, metrics ...string) {
	c.t.Helper()
	admin := "http://" + c.nodes[id].admin
	var missing []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ready struct {
			Adapters map[string]struct {
				Ready  bool   `json:"ready"`
				Detail string `json:"detail"`
			} `json:"adapters"`
		}
		getJSON(c.t, admin+"/readyz", http.StatusOK, &ready)
		missing = nil
		if cl := ready.Adapters["cluster"]; !cl.Ready || cl.Detail != detail {
			missing = append(missing, fmt.Sprintf("/readyz cluster %+v, want ready with %q", cl, detail))
		}
		body := httpGet(c.t, admin+"/metrics")
		for _, m := range metrics {
			if !strings.Contains(body, "\n"+m+"\n") {
				missing = append(missing, "/metrics line "+m)
			}
		}
		if len(missing) == 0 {
			return
		}
	}
	c.t.Errorf("instance %s does not report: %q", id, missing)
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// A partition between an owner and the database: the owner stops serving
// (it cannot confirm its lease), the other instance takes its conversation
// once the lease lapses, and when the partition heals the old owner finds
// its lease gone and stops with an error instead of serving on.
func TestClusterPartitionedOwnerStops(t *testing.T) {
	c := newCluster(t, "a", "b")
	link := newCuttableLink(t, c.dsn)
	c.nodes["a"].env = append(c.nodes["a"].env, "E2E_DSN="+link.dsn)
	c.start("a")
	c.start("b")
	const carol = "+15550003333"
	c.sms("a", carol, "before")
	c.echoed(carol, "before", 15*time.Second)

	link.cut()
	cut := time.Now()
	c.sms("b", carol, "during")
	served := c.echoed(carol, "during", 20*time.Second).Sub(cut)
	t.Logf("owner cut off from the database: its conversation served by the other %s after the cut (lease 5s)", served.Round(time.Millisecond))
	if got := c.owner(carol); got != "b" {
		t.Fatalf("after the partition, owner = %q, want b", got)
	}

	link.heal()
	select {
	case err := <-c.nodes["a"].proc.done:
		if err == nil {
			t.Errorf("the old owner exited 0 after losing its lease, want an error")
		}
		if log := c.nodes["a"].proc.log.String(); !strings.Contains(log, "lease lost") {
			t.Errorf("the old owner's log does not say its lease was lost:\n%s", log)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the old owner still runs 15s after the partition healed")
	}
	lines := c.whoson.AllVisitorLines()
	for _, l := range []string{"before", "during"} {
		if n := countValue(lines, l); n != 1 {
			t.Errorf("agent got %q %d times, want once (lines %q)", l, n, lines)
		}
	}
	if n := countSMS(c.twilio.Sent(), carol, "echo: during"); n != 1 {
		t.Errorf("customer got the echo of \"during\" %d times, want once", n)
	}
}

// cuttableLink is a TCP relay to the database that the test can cut (every
// connection dropped, new ones refused at once) and heal.
type cuttableLink struct {
	t   *testing.T
	ln  net.Listener
	dsn string // the database's DSN, through the relay
	to  string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newCuttableLink(t *testing.T, dsn string) *cuttableLink {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &cuttableLink{t: t, ln: ln, to: u.Host, conns: map[net.Conn]bool{}}
	u.Host = ln.Addr().String()
	l.dsn = u.String()
	go l.serve()
	t.Cleanup(func() { ln.Close(); l.cut() })
	return l
}

func (l *cuttableLink) serve() {
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.relay(in)
	}
}

func (l *cuttableLink) relay(in net.Conn) {
	out, err := net.Dial("tcp", l.to)
	if err != nil {
		in.Close()
		return
	}
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	l.conns[in], l.conns[out] = true, true
	l.mu.Unlock()
	go func() { io.Copy(out, in); out.Close() }() //nolint:errcheck // a cut ends the copy
	io.Copy(in, out)                              //nolint:errcheck
	in.Close()
}

func (l *cuttableLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = true
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

func (l *cuttableLink) heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = false
}

// check-config -connect reaches the database and reads its schema version,
// changing nothing; a DSN that cannot connect is reported under store.dsn
// without its password.
func TestCheckConfigConnect(t *testing.T) {
	dsn, db := chaosDatabase(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	text := fmt.Sprintf(`[daemon]
instance_id = "check"
state_dir = %q
[http]
public_url = "https://c.example.com"
[store]
driver = "postgres"
dsn = "${E2E_DSN}"
`, dir)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(dsn string) (int, string) {
		cmd := exec.Command(binary, "check-config", "-connect", "-config", path)
		cmd.Env = append(os.Environ(), "E2E_DSN="+dsn)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := check(dsn)
	if code != 0 || !strings.Contains(out, "no connectord schema yet") {
		t.Errorf("fresh database: exit %d\n%s", code, out)
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("check-config -connect created %d tables (%v), want none", tables, err)
	}

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("nosuchrole", "pw-that-must-not-show")
	code, out = check(u.String())
	if code != 1 || !strings.Contains(out, "store.dsn: ") {
		t.Errorf("bad login: exit %d, want 1 naming store.dsn\n%s", code, out)
	}
	if strings.Contains(out, "pw-that-must-not-show") {
		t.Errorf("the password was printed:\n%s", out)
	}
}

// The Customer Channel connector registration belongs to one instance at a
// time; when it dies, another registers and a campaign the server kept
// meanwhile reaches the customer once.
func TestClusterCustomerChannelLeader(t *testing.T) {
	sim := customerchanneltest.StartTest(t, 4)
	c := newClusterWith(t, func(*cluster) string { return fmt.Sprintf(clusterCC, sim.URL) }, "a", "b")
	c.start("a")
	c.start("b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := c.registered(ctx, sim, "")
	other := map[string]string{"a": "b", "b": "a"}[leader]
	if _, err := sim.Campaign(ctx, "+15550004444", "first campaign", "camp-1", "sms"); err != nil {
		t.Fatal(err)
	}
	c.smsArrives("+15550004444", "first campaign")
	c.reports(leader, "instance "+leader+", owns 0 conversations, leads customerchannel.hub",
		`connectord_leader{role="customerchannel.hub"} 1`)

	killed := time.Now()
	if err := c.nodes[leader].proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.nodes[leader].proc.done
	if _, err := sim.Campaign(ctx, "+15550005555", "second campaign", "camp-2", "sms"); err != nil {
		t.Fatal(err)
	}
	if got := c.registered(ctx, sim, leader); got != other {
		t.Fatalf("after %s died, %s registered, want %s", leader, got, other)
	}
	// How soon is the lease's business (5 s here), measured, not asserted:
	// the test proves the handover happens at all (within its 30 s
	// give-up) and that nothing is lost or doubled by it.
	took := c.smsArrives("+15550005555", "second campaign").Sub(killed)
	t.Logf("leader SIGKILLed: the other instance registered and delivered the kept campaign %s after the kill (lease 5s)", took.Round(time.Millisecond))
	for to, body := range map[string]string{"+15550004444": "first campaign", "+15550005555": "second campaign"} {
		if n := countSMS(c.twilio.Sent(), to, body); n != 1 {
			t.Errorf("%q sent %d times, want once", body, n)
		}
	}
}

// registered waits until exactly one connected socket is registered, from
// an instance other than not, and returns which instance it is (read from
// the instances' health).
func (c *cluster) registered(ctx context.Context, sim *customerchanneltest.Server, not string) string {
	c.t.Helper()
	for ctx.Err() == nil {
		st, err := sim.State(ctx)
		if err == nil && len(st.Registered) == 1 {
			for id, n := range c.nodes {
				if id != not && n.proc != nil && n.proc.cmd.ProcessState == nil && c.leads(id) {
					return id
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no single registered connector (other than %q) in time", not)
	return ""
}

// leads reports whether instance id's admin /readyz says it holds the
// Customer Channel role.
func (c *cluster) leads(id string) bool {
	resp, err := http.Get("http://" + c.nodes[id].admin + "/readyz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(body), "leads customerchannel.hub")
}

// smsArrives waits for an SMS to to with body, and returns when it came.
func (c *cluster) smsArrives(to, body string) time.Time {
	c.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if countSMS(c.twilio.Sent(), to, body) > 0 {
			return time.Now()
		}
	}
	c.t.Fatalf("no SMS %q to %s; sent: %+v", body, to, c.twilio.Sent())
	return time.Time{}
}
