package cobrowsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
)

func loginAs(ctx context.Context, e *Ejabberd, user, password string) (*xmppConn, error) {
	return dial(ctx, login{TCPAddr: e.TCPAddr, TLS: e.pki.clientTLS(e.Domain), Domain: e.Domain, User: user, Password: password, Resource: "r"})
}

// run starts reading a test connection; the recorder says when it ended.
func run(t testing.TB, c *xmppConn) *recorder {
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.ended(c.Run(ctx, func(n *node) { r.record(toStanza(n)) }))
	}()
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return &r
}

func TestRestartKeepsAccounts(t *testing.T) {
	e := StartEjabberd(t)
	e.Register(t, "bob", "pw")
	ctx := testCtx(t, 40*time.Second)
	c, err := loginAs(ctx, e, "bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, c)
	addr, ws, pid := e.TCPAddr, e.WSURL, e.Pid()

	began := time.Now()
	e.Restart(t)
	t.Logf("restart took %v", time.Since(began).Round(time.Millisecond))
	if err := r.WaitEnded(ctx); err == nil {
		t.Error("the session survived the restart")
	}
	if e.TCPAddr != addr || e.WSURL != ws || e.Pid() == pid || e.Pid() == 0 {
		t.Errorf("after restart: %s %s pid %d (was %s %s %d)", e.TCPAddr, e.WSURL, e.Pid(), addr, ws, pid)
	}
	if processAlive(pid) {
		t.Errorf("the old VM %d still runs", pid)
	}
	c2, err := loginAs(ctx, e, "bob", "pw")
	if err != nil {
		t.Fatalf("the account did not survive: %v", err)
	}
	c2.Close()
	// ejabberdctl itself reaches the private node (no EPMD: its own
	// distribution port and cookie).
	out, err := e.Ctl(ctx, "registered_users", e.Domain)
	if err != nil || !strings.Contains(out, "bob") {
		t.Errorf("ejabberdctl registered_users: %q %v", out, err)
	}
}

func TestKickAll(t *testing.T) {
	e := StartEjabberd(t)
	e.Register(t, "carol", "pw")
	ctx := testCtx(t, 20*time.Second)
	c, err := loginAs(ctx, e, "carol", "pw")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, c)
	if users := e.ConnectedUsers(t); len(users) != 1 || !strings.HasPrefix(users[0], "carol@"+e.Domain+"/") {
		t.Fatalf("connected %v", users)
	}
	e.KickAll(t)
	if err := r.WaitEnded(ctx); err == nil {
		t.Fatal("no end of stream")
	}
	if users := e.ConnectedUsers(t); len(users) != 0 {
		t.Errorf("still connected: %v", users)
	}
}

// TestTwoAtOnce: two instances run side by side, with no EPMD of their own,
// and leave no process behind.
func TestTwoAtOnce(t *testing.T) {
	NeedEjabberd(t)
	ctx := testCtx(t, 60*time.Second)
	var wg sync.WaitGroup
	es := make([]*Ejabberd, 2)
	errs := make([]error, 2)
	for i := range es {
		wg.Go(func() { es[i], errs[i] = Start(ctx, Options{Domain: fmt.Sprintf("d%d.test", i)}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		defer es[i].Close()
	}
	if es[0].Node == es[1].Node || es[0].TCPAddr == es[1].TCPAddr {
		t.Fatalf("shared node or port: %s %s", es[0].Node, es[1].Node)
	}
	for _, e := range es {
		e.Register(t, "dave", "pw")
		c, err := loginAs(ctx, e, "dave", "pw")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(bare(c.JID), "@"+e.Domain) {
			t.Errorf("bound %s on %s", c.JID, e.Domain)
		}
		c.Close()
	}
	// No EPMD: the VMs neither start one nor register with the system's
	// (other software on the machine may run one: RabbitMQ does).
	names, _ := exec.Command("epmd", "-names").CombinedOutput()
	for _, e := range es {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", e.Pid()))
		if err != nil || !bytes.Contains(cmdline, []byte("-start_epmd\x00false")) {
			t.Errorf("VM %d runs without -start_epmd false: %q %v", e.Pid(), cmdline, err)
		}
		short, _, _ := strings.Cut(e.Node, "@")
		if bytes.Contains(names, []byte(short)) {
			t.Errorf("%s registered with the system EPMD: %s", short, names)
		}
	}
	for _, e := range es {
		pid, node, dir := e.Pid(), e.Node, e.Dir
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		if processAlive(pid) || len(processesMentioning(node)) > 0 {
			t.Errorf("%s left running: pid %d, %v", node, pid, processesMentioning(node))
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed: %v", dir, err)
		}
	}
}

// TestVMDiesWithTheTestBinary: a test binary killed outright (as a test
// timeout's panic or SIGKILL does, with no cleanup) takes its VM along.
func TestVMDiesWithTheTestBinary(t *testing.T) {
	NeedEjabberd(t)
	if os.Getenv("COBROWSERTEST_CHILD") == "1" {
		e, err := Start(context.Background(), Options{})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Printf("PID %d %s\n", e.Pid(), e.Dir)
		select {} // until killed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVMDiesWithTheTestBinary$")
	cmd.Env = append(os.Environ(), "COBROWSERTEST_CHILD=1")
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		for line := range strings.Lines(out.String()) {
			if rest, ok := strings.CutPrefix(line, "PID "); ok {
				f := strings.Fields(rest)
				pid, _ = strconv.Atoi(f[0])
				dir = f[1]
			}
			if strings.HasPrefix(line, "ERROR") {
				t.Fatal(line)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		cmd.Process.Kill()
		t.Fatalf("the child did not start ejabberd: %s", out.String())
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd.Process.Kill()
	cmd.Wait()
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if processAlive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("VM %d outlived the test binary", pid)
	}
	// The next Start removes what the killed binary left.
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed child's directory: %v", err)
	}
	removeStale()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s not removed: %v", dir, err)
	}
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

// processAlive: the pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}

func processesMentioning(s string) []string {
	var out []string
	ps, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range ps {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}

// recordingTB records how a helper stopped the test.
type recordingTB struct {
	testing.TB
	how string
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Fatal(args ...any)     { r.how = "fatal: " + fmt.Sprint(args...) }
func (r *recordingTB) Skip(args ...any)      { r.how = "skip: " + fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(string, ...any) { r.how = "fatalf" }

func TestMissingFailsInCI(t *testing.T) {
	err := fmt.Errorf("%w: no ejabberdctl", ErrNotInstalled)
	for ci, want := range map[string]string{"true": "fatal: ", "": "skip: "} {
		t.Setenv("CI", ci)
		r := &recordingTB{TB: t}
		missing(r, err)
		if !strings.HasPrefix(r.how, want) || !strings.Contains(r.how, "no ejabberdctl") {
			t.Errorf("CI=%q: %q", ci, r.how)
		}
	}
}

// TestPingsAnswered: the server pings every session (as CoBrowser does) and
// kills one that does not answer; the Agent answers and stays.
func TestPingsAnswered(t *testing.T) {
	e := StartEjabberdWith(t, Options{PingInterval: time.Second, PingTimeout: time.Second})
	s := NewServer(t, Config{Ejabberd: e})
	agent := s.Agent(t)
	e.Register(t, "mute", "pw")
	ctx := testCtx(t, 20*time.Second)
	mute, err := loginAs(ctx, e, "mute", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	if err := mute.Send(`<presence/>`); err != nil {
		t.Fatal(err)
	}
	// Read without answering anything, until the server gives up on it.
	pinged := false
	for {
		n, err := mute.tr.read(ctx)
		if err != nil {
			break
		}
		pinged = pinged || n.child(nsPing, "ping") != nil
	}
	if ctx.Err() != nil || !pinged {
		t.Fatalf("the silent session was not pinged and killed (pinged %v): %v", pinged, ctx.Err())
	}
	if err := agent.Ended(); err != nil {
		t.Fatalf("the agent's session ended: %v", err)
	}
	if !slices.Contains(e.ConnectedUsers(t), agent.JID) {
		t.Fatalf("the agent %s is not connected: %v", agent.JID, e.ConnectedUsers(t))
	}
}
