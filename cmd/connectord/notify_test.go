package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a fake systemd notification socket: it collects what the
// daemon sends with sd_notify.
type notifySocket struct {
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T) (*notifySocket, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifySocket{conn: conn, msgs: make(chan string, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n, path
}

// next waits for a notification containing want, returning those skipped.
func (n *notifySocket) next(t *testing.T, want string, within time.Duration) []string {
	t.Helper()
	var skipped []string
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q", want)
			}
			if strings.Contains(m, want) {
				return skipped
			}
			skipped = append(skipped, m)
		case <-deadline:
			t.Fatalf("no %q within %s (got %q)", want, within, skipped)
		}
	}
}

// The daemon tells systemd READY=1 once it serves, WATCHDOG=1 while it
// works, and STOPPING=1 when it drains.
func TestSystemdNotify(t *testing.T) {
	sock, path := newNotifySocket(t)
	w := newWorld(t, echoOperator(), 0)
	w.env = []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=400000"}
	w.start() // returns once /readyz says ready
	for _, m := range sock.next(t, "READY=1", 5*time.Second) {
		if !strings.HasPrefix(m, "STATUS=") {
			t.Errorf("before READY=1: %q", m)
		}
	}
	resp, err := http.Get("http://" + w.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz %d after READY=1", resp.StatusCode)
	}
	for range 3 { // every 200ms, half of WATCHDOG_USEC
		sock.next(t, "WATCHDOG=1", 2*time.Second)
	}
	w.sms("hello")
	w.smsTo("echo: hello")
	if err := w.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sock.next(t, "STOPPING=1", 5*time.Second)
	if err := <-w.proc.done; err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// With WhosOn unreachable, READY=1 waits for it as long as daemon.ready_wait
// allows, saying what it waits for, and then comes with the reason; webhooks
// are taken meanwhile and /readyz stays 503.
func TestSystemdReadyWaitsForAdapters(t *testing.T) {
	sock, path := newNotifySocket(t)
	w := newWorld(t, echoOperator(), 0)
	w.whoson.Close()
	cfg, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "[daemon]\n", "[daemon]\nready_wait = \"2s\"\n", 1))
	if err := os.WriteFile(w.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = []string{"NOTIFY_SOCKET=" + path}
	start := time.Now()
	w.launch()
	if m := sock.next(t, "STATUS=waiting for", 10*time.Second); len(m) != 0 {
		t.Errorf("before the first STATUS: %q", m)
	}
	w.sms("taken while waiting") // fails unless Twilio gets its 200
	before := sock.next(t, "READY=1", 10*time.Second)
	if waited := time.Since(start); waited < 1800*time.Millisecond {
		t.Errorf("READY=1 after %v, before ready_wait (2s) was up", waited)
	}
	if len(before) == 0 || !strings.HasPrefix(before[len(before)-1], "STATUS=serving; not ready: whoson.sales (") {
		t.Errorf("before READY=1: %q; want the last STATUS to name whoson.sales", before)
	}
	resp, err := http.Get("http://" + w.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with WhosOn down, want 503", resp.StatusCode)
	}
}
