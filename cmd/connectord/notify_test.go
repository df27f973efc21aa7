package main

import (
	"net"
	"net/http"
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
	if skipped := sock.next(t, "READY=1", 5*time.Second); len(skipped) != 0 {
		t.Errorf("before READY=1: %q", skipped)
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
