package cobrowsertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotInstalled is returned (wrapped, with what is missing and how to
// install it) by Start when ejabberd is not installed.
var ErrNotInstalled = errors.New("ejabberd is not installed")

// Options adjust a private ejabberd instance. The zero value is what
// CoBrowser's documented behaviour needs.
type Options struct {
	// Domain is the visitors' XMPP domain; default "xmpp.test". The agents'
	// domain is "internal." + Domain, as CoBrowser's agents are.
	Domain string
	// PingInterval is how often the server pings each client (XEP-0199,
	// mod_ping send_pings); default 10 s, as CoBrowser does.
	PingInterval time.Duration
	// PingTimeout is how long a ping may stay unanswered before the server
	// kills the session; default 32 s (ejabberd's default).
	PingTimeout time.Duration
	// WebSocketPingInterval is the interval of WebSocket ping frames;
	// default 60 s (ejabberd's default).
	WebSocketPingInterval time.Duration
	// WebSocketTimeout closes a WebSocket that sent nothing for this long;
	// default 300 s (ejabberd's default).
	WebSocketTimeout time.Duration
	// MaxStanzaSize in bytes for c2s; default 262144 (Debian's shipped
	// configuration).
	MaxStanzaSize int
}

func (o Options) withDefaults() Options {
	if o.Domain == "" {
		o.Domain = "xmpp.test"
	}
	if o.PingInterval == 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 32 * time.Second
	}
	if o.WebSocketPingInterval == 0 {
		o.WebSocketPingInterval = 60 * time.Second
	}
	if o.WebSocketTimeout == 0 {
		o.WebSocketTimeout = 300 * time.Second
	}
	if o.MaxStanzaSize == 0 {
		o.MaxStanzaSize = 262144
	}
	return o
}

// Ejabberd is a private ejabberd instance: its own configuration directory,
// database spool, logs, Erlang node name and cookie, and loopback ports. It
// never touches the system service, and needs no EPMD (Erlang distribution
// runs on a fixed port of its own).
type Ejabberd struct {
	Domain      string // visitors' XMPP domain, e.g. "xmpp.test"
	AgentDomain string // agents' XMPP domain: "internal." + Domain
	WSURL       string // "ws://127.0.0.1:PORT/websocket" (RFC 7395)
	WSSURL      string // "wss://127.0.0.1:PORT/websocket", certificate signed by CAFile
	TCPAddr     string // "127.0.0.1:PORT": c2s, STARTTLS required
	CAFile      string // PEM of the test CA that signed the server certificate
	Node        string // the Erlang node name, unique per instance
	Dir         string // configuration, spool and logs

	opts   Options
	pki    *testPKI
	ctl    string // our copy of ejabberdctl (see writeCtl)
	apiURL string // mod_http_api on the plain HTTP listener
	httpc  *http.Client

	mu   sync.Mutex
	proc *process
}

// process is one run of the Erlang VM.
type process struct {
	pid  int
	done chan struct{} // closed when the VM exited
	err  error         // Wait's result, set before done closes
}

// NeedEjabberd stops the test when ejabberd is not installed: it fails with
// what is missing when CI=true, and skips with the same message elsewhere.
func NeedEjabberd(t testing.TB) {
	t.Helper()
	if _, err := findCtl(); err != nil {
		missing(t, err)
	}
}

func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	} else {
		t.Skip(err)
	}
}

// StartEjabberd starts a private instance with default Options; t.Cleanup
// stops it and removes its files. See NeedEjabberd for a missing ejabberd.
func StartEjabberd(t testing.TB) *Ejabberd {
	t.Helper()
	return StartEjabberdWith(t, Options{})
}

// StartEjabberdWith is StartEjabberd with Options.
func StartEjabberdWith(t testing.TB, opts Options) *Ejabberd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	e, err := Start(ctx, opts)
	if errors.Is(err, ErrNotInstalled) {
		missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ejabberd %s started in %v (c2s %s, %s)", e.Node, time.Since(began).Round(time.Millisecond), e.TCPAddr, e.WSURL)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ejabberd log (last lines):\n%s", e.LogTail(80))
		}
		if err := e.Close(); err != nil {
			t.Errorf("stopping ejabberd: %v", err)
		}
	})
	return e
}

// Start starts a private instance in a new temporary directory; Close stops
// it and removes the directory. For TestMain, where there is no testing.TB.
func Start(ctx context.Context, opts Options) (*Ejabberd, error) {
	ctl, err := findCtl()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	removeStale()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("ejabberd directory: %w", err)
	}
	e, err := prepare(dir, ctl, opts)
	if err == nil {
		err = e.startRetrying(ctx)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return e, nil
}

// dirPrefix starts the name of every instance's directory, followed by
// the pid of the test binary that made it.
const dirPrefix = "cobrowsertest-ejabberd-"

// removeStale removes the directories of test binaries that were killed
// before their cleanup ran (their VM died with them: see launch).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// findCtl finds Debian's ejabberdctl (in /usr/sbin, often not in a user's PATH).
func findCtl() (string, error) {
	if p, err := exec.LookPath("ejabberdctl"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ejabberdctl", "/usr/local/sbin/ejabberdctl"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no ejabberdctl in PATH, /usr/sbin or /usr/local/sbin "+
		"(Debian 12: apt-get install ejabberd, version 23.01; scripts/test.sh installs it as root "+
		"without starting the system service)", ErrNotInstalled)
}

// prepare writes the instance's files: certificates, ejabberd.yml,
// ejabberdctl.cfg and the adjusted ejabberdctl.
func prepare(dir, ctl string, opts Options) (*Ejabberd, error) {
	e := &Ejabberd{
		Domain:      opts.Domain,
		AgentDomain: "internal." + opts.Domain,
		CAFile:      filepath.Join(dir, "ca.pem"),
		Node:        fmt.Sprintf("connectord-test-%d-%s@localhost", os.Getpid(), randomHex(4)),
		Dir:         dir,
		opts:        opts,
		ctl:         filepath.Join(dir, "ejabberdctl"),
		httpc:       &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	pki, err := newPKI(e.Domain, e.AgentDomain, "localhost", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	e.pki = pki
	for _, sub := range []string{"spool", "logs"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("ejabberd directory: %w", err)
		}
	}
	files := map[string][]byte{
		"ca.pem":     pki.caPEM,
		"server.pem": pki.serverPEM,
		// Name lookups from files first: "localhost" must resolve without DNS.
		"inetrc": []byte("{lookup,[\"file\",\"native\"]}.\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("ejabberd files: %w", err)
		}
	}
	if err := writeCtl(ctl, e.ctl); err != nil {
		return nil, err
	}
	return e, nil
}

// writeCtl copies ejabberdctl with two changes. Debian's script runs
// everything as the ejabberd user through su when called as root, and
// refuses any other user; the copy runs as the caller (root or not) so the
// instance can live in the test's own directory. And "foreground" execs
// the VM instead of forking it, so the process we start is the VM itself:
// we hold its pid, and it dies with the test binary (Pdeathsig).
func writeCtl(src, dst string) error {
	script, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrNotInstalled, src, err)
	}
	user := regexp.MustCompile(`(?m)^INSTALLUSER=.*$`)
	fg := regexp.MustCompile(`(?m)^(\s*)exec_erl "\$ERLANG_NODE" \$EJABBERD_OPTS -noinput$`)
	if !user.Match(script) || !fg.Match(script) {
		return fmt.Errorf("%s is not the ejabberdctl script this kit knows (Debian's ejabberd 23.01): "+
			"no INSTALLUSER= line or no foreground command", src)
	}
	script = user.ReplaceAll(script, []byte("INSTALLUSER="))
	// In a regexp replacement "$" starts a group reference: "$$" is a dollar.
	script = fg.ReplaceAll(script, []byte(`${1}exec "$$ERL" $${S:--}name "$$ERLANG_NODE" $$ERLANG_OPTS $$EJABBERD_OPTS -noinput`))
	if err := os.WriteFile(dst, script, 0o700); err != nil {
		return fmt.Errorf("ejabberdctl copy: %w", err)
	}
	return nil
}

// startRetrying picks free loopback ports and starts; a port taken between
// picking and binding (another test) gets new ports, twice at most.
func (e *Ejabberd) startRetrying(ctx context.Context) error {
	var err error
	for range 3 {
		if err = e.configure(); err != nil {
			return err
		}
		err = e.up(ctx)
		if err == nil || !strings.Contains(e.LogTail(200), "eaddrinuse") {
			return err
		}
	}
	return err
}

// configure chooses ports and writes ejabberd.yml and ejabberdctl.cfg.
func (e *Ejabberd) configure() error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	c2s, http, https, dist := ports[0], ports[1], ports[2], ports[3]
	e.TCPAddr = fmt.Sprintf("127.0.0.1:%d", c2s)
	e.WSURL = fmt.Sprintf("ws://127.0.0.1:%d/websocket", http)
	e.WSSURL = fmt.Sprintf("wss://127.0.0.1:%d/websocket", https)
	e.apiURL = fmt.Sprintf("http://127.0.0.1:%d/api/", http)
	yml := renderConfig(e, c2s, http, https)
	// The cookie is per instance, and in ERL_OPTIONS rather than in
	// $HOME/.erlang.cookie so that nothing outside Dir is read or written.
	cfg := fmt.Sprintf("ERL_DIST_PORT=%d\nERL_OPTIONS=\"-setcookie %s -kernel inet_dist_use_interface {127,0,0,1}\"\n"+
		"EJABBERD_BYPASS_WARNINGS=true\n", dist, randomHex(16))
	if err := os.WriteFile(filepath.Join(e.Dir, "ejabberd.yml"), []byte(yml), 0o600); err != nil {
		return fmt.Errorf("ejabberd.yml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "ejabberdctl.cfg"), []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("ejabberdctl.cfg: %w", err)
	}
	return nil
}

func renderConfig(e *Ejabberd, c2s, http, https int) string {
	o := e.opts
	return fmt.Sprintf(`# written by cobrowsertest for one test run
loglevel: info
log_rotate_count: 0
hosts:
  - %[1]q
  - %[2]q
certfiles:
  - %[3]q
websocket_ping_interval: %[7]d
websocket_timeout: %[8]d
auth_method: internal
listen:
  -
    port: %[4]d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: %[9]d
    access: c2s
    starttls_required: true
  -
    port: %[5]d
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /websocket: ejabberd_http_ws
      /api: mod_http_api
  -
    port: %[6]d
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: true
    request_handlers:
      /websocket: ejabberd_http_ws
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  "the test on loopback":
    from:
      - mod_http_api
    who:
      acl: loopback
    what: "*"
modules:
  mod_admin_extra: {}
  mod_disco: {}
  mod_http_api: {}
  mod_ping:
    send_pings: true
    ping_interval: %[10]d
    ping_ack_timeout: %[11]d
    timeout_action: kill
  mod_roster: {}
  mod_stream_mgmt: {}
`, e.Domain, e.AgentDomain, filepath.Join(e.Dir, "server.pem"), c2s, http, https,
		seconds(o.WebSocketPingInterval), seconds(o.WebSocketTimeout), o.MaxStanzaSize,
		seconds(o.PingInterval), seconds(o.PingTimeout))
}

func seconds(d time.Duration) int { return max(1, int(d.Round(time.Second)/time.Second)) }

// freePorts asks the kernel for n free loopback ports at once (so they are
// distinct), then releases them for ejabberd to bind.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// up starts the VM and waits until the HTTP API says "started" and the
// c2s and TLS listeners accept connections.
func (e *Ejabberd) up(ctx context.Context) error {
	p, err := e.launch()
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.proc = p
	e.mu.Unlock()
	if err := e.waitReady(ctx, p); err != nil {
		e.down(context.Background())
		return err
	}
	return nil
}

// launch runs "ejabberdctl foreground" from a goroutine locked to its OS
// thread until the VM exits: Pdeathsig fires when the thread that started
// the child ends, and this keeps that thread alive exactly as long as the
// VM. If the test binary dies (a timeout's panic, SIGKILL), so does the VM.
func (e *Ejabberd) launch() (*process, error) {
	out, err := os.OpenFile(filepath.Join(e.Dir, "logs", "foreground.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ejabberd output file: %w", err)
	}
	cmd := exec.Command(e.ctl, e.ctlArgs("foreground")...)
	cmd.Dir = e.Dir
	cmd.Env = e.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer out.Close()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("starting %s foreground: %w", e.ctl, err)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

func (e *Ejabberd) ctlArgs(cmd ...string) []string {
	return append([]string{
		"--config-dir", e.Dir,
		"--config", filepath.Join(e.Dir, "ejabberd.yml"),
		"--ctl-config", filepath.Join(e.Dir, "ejabberdctl.cfg"),
		"--spool", filepath.Join(e.Dir, "spool"),
		"--logs", filepath.Join(e.Dir, "logs"),
		"--node", e.Node,
	}, cmd...)
}

// env is the caller's environment without what would steer the VM
// elsewhere, HOME inside Dir, and EPMD out of the way: with
// -erl_epmd_port (ERL_DIST_PORT in ejabberdctl.cfg) nodes find each other
// without EPMD, yet a VM still registers its name with an EPMD on the
// default port when one runs (RabbitMQ starts one). Port 1 needs root to
// listen on and nothing does: registration fails fast and is not needed.
func (e *Ejabberd) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ERL_") || strings.HasPrefix(name, "EJABBERD") || name == "HOME" ||
			name == "CONTRIB_MODULES_PATH" || name == "SPOOL_DIR" || name == "LOGS_DIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+e.Dir, "ERL_EPMD_PORT=1")
}

func (e *Ejabberd) waitReady(ctx context.Context, p *process) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return fmt.Errorf("ejabberd exited while starting (%v); log:\n%s", p.err, e.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("ejabberd did not start: %w; log:\n%s", ctx.Err(), e.LogTail(40))
		case <-tick.C:
		}
		var status string
		if e.api(ctx, "status", struct{}{}, &status) != nil || !strings.Contains(status, "started") {
			continue
		}
		if dialable(ctx, e.TCPAddr) && dialable(ctx, strings.TrimSuffix(strings.TrimPrefix(e.WSSURL, "wss://"), "/websocket")) {
			return nil
		}
	}
}

func dialable(ctx context.Context, addr string) bool {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Close stops the instance and removes its directory.
func (e *Ejabberd) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := e.down(ctx)
	if rmErr := os.RemoveAll(e.Dir); rmErr != nil && err == nil {
		err = fmt.Errorf("removing %s: %w", e.Dir, rmErr)
	}
	return err
}

// down stops the VM: SIGTERM (the VM runs init:stop, ejabberd closes its
// sessions and the database cleanly), then SIGKILL to its process group if
// it is still there after 10 s or when ctx ends.
func (e *Ejabberd) down(ctx context.Context) error {
	e.mu.Lock()
	p := e.proc
	e.proc = nil
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	syscall.Kill(p.pid, syscall.SIGTERM)
	grace := time.NewTimer(10 * time.Second)
	defer grace.Stop()
	select {
	case <-p.done:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("ejabberd %s did not stop on SIGTERM within 10 s: killed", e.Node)
}

// Down stops the instance, keeping its files, ports and accounts; Up
// starts it again. Clients see their connection close.
func (e *Ejabberd) Down(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.down(ctx); err != nil {
		t.Fatal(err)
	}
}

// Up starts a stopped instance again on the same ports, with the same
// accounts.
func (e *Ejabberd) Up(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.up(ctx); err != nil {
		t.Fatal(err)
	}
}

// Restart is Down then Up.
func (e *Ejabberd) Restart(t testing.TB) {
	t.Helper()
	e.Down(t)
	e.Up(t)
}

// Ctl runs the instance's ejabberdctl with args (e.g. "status",
// "connected_users") and returns its output. Each call starts an Erlang VM
// (about 0.3 s): the kit itself uses the HTTP API instead.
func (e *Ejabberd) Ctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.ctl, e.ctlArgs(args...)...)
	cmd.Dir = e.Dir
	cmd.Env = e.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ejabberdctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Register creates an account: user is a local part (on Domain) or a bare
// JID "user@host" for one of the instance's two domains.
func (e *Ejabberd) Register(t testing.TB, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.register(ctx, user, password); err != nil {
		t.Fatal(err)
	}
}

func (e *Ejabberd) register(ctx context.Context, user, password string) error {
	local, host := e.split(user)
	var answer string
	return e.api(ctx, "register", map[string]string{"user": local, "host": host, "password": password}, &answer)
}

func (e *Ejabberd) split(user string) (local, host string) {
	if l, h, ok := strings.Cut(user, "@"); ok {
		return l, h
	}
	return user, e.Domain
}

// ConnectedUsers lists the full JIDs of every open session.
func (e *Ejabberd) ConnectedUsers(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var jids []string
	if err := e.api(ctx, "connected_users", struct{}{}, &jids); err != nil {
		t.Fatal(err)
	}
	return jids
}

// KickAll ends every session (kick_session): clients see their stream
// closed by the server while ejabberd keeps running.
func (e *Ejabberd) KickAll(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, jid := range e.ConnectedUsers(t) {
		bare, resource, _ := strings.Cut(jid, "/")
		local, host := e.split(bare)
		var n int
		err := e.api(ctx, "kick_session", map[string]string{
			"user": local, "host": host, "resource": resource, "reason": "kicked by the test",
		}, &n)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// api calls a command of mod_http_api (POST /api/NAME with a JSON object)
// and decodes its JSON answer into out.
func (e *Ejabberd) api(ctx context.Context, name string, args, out any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.apiURL+name, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.httpc.Do(req)
	if err != nil {
		return fmt.Errorf("ejabberd API %s: %w", name, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("ejabberd API %s: %w", name, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("ejabberd API %s: %s: %s", name, res.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ejabberd API %s: answer %q: %w", name, data, err)
	}
	return nil
}

// LogTail returns the last n lines of ejabberd.log, error.log and the VM's
// own output.
func (e *Ejabberd) LogTail(n int) string {
	var b strings.Builder
	for _, name := range []string{"foreground.out", "error.log", "ejabberd.log"} {
		data, err := os.ReadFile(filepath.Join(e.Dir, "logs", name))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "== %s ==\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Pid is the Erlang VM's process id, 0 while stopped.
func (e *Ejabberd) Pid() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil {
		return 0
	}
	return e.proc.pid
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
