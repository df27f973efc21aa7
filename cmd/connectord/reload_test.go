package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP ("systemctl reload") re-reads the configuration: a broken one is
// refused whole and the daemon runs on; a good one changes the notices of
// what happens next, names what needs a restart, and drops no socket: the
// live WhosOn chat goes on.
func TestReloadOnSighup(t *testing.T) {
	w := newWorld(t, echoOperator(), 0)
	w.start()
	w.sms("hello")
	w.visitorLines(1)
	w.smsTo("echo: hello")
	good, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	w.rewrite(strings.Replace(string(good), `retry_initial = "50ms"`, `retry_initial = "-1s"`, 1))
	w.hup("reload refused")
	if !strings.Contains(w.proc.log.String(), "conversation.retry_initial") {
		t.Errorf("the refusal does not name the bad key:\n%s", w.proc.log.String())
	}
	w.sms("still there?")
	w.smsTo("echo: still there?")

	next := strings.Replace(string(good), `shutdown_timeout = "5s"`, `shutdown_timeout = "6s"`, 1) +
		"\n[notices]\nended_by_agent = \"Bye from the reloaded configuration.\"\n"
	w.rewrite(next)
	w.hup("configuration reloaded")
	log := w.proc.log.String()
	if !strings.Contains(log, "need a restart") || !strings.Contains(log, `"daemon"`) {
		t.Errorf("the reload does not say that [daemon] needs a restart:\n%s", log)
	}
	chats := w.whoson.Chats()
	if len(chats) != 1 {
		t.Fatalf("whoson has %d chats, want the one live chat", len(chats))
	}
	if err := w.whoson.Say(chats[0].UID, "said after the reload"); err != nil {
		t.Fatal(err)
	}
	w.smsTo("said after the reload")
	if err := w.whoson.Quit(chats[0].UID); err != nil {
		t.Fatal(err)
	}
	w.smsTo("Bye from the reloaded configuration.")
	if n := len(w.whoson.Chats()); n != 1 {
		t.Errorf("whoson saw %d chats: the reload dropped the socket and the chat was opened again", n)
	}
}

func (w *world) rewrite(text string) {
	w.t.Helper()
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// hup sends SIGHUP and waits for a log line containing want after it.
func (w *world) hup(want string) {
	w.t.Helper()
	before := len(w.proc.log.String())
	if err := w.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.proc.log.String()[before:], want) {
		if time.Now().After(deadline) {
			w.t.Fatalf("no %q in the log 10s after SIGHUP:\n%s", want, w.proc.log.String()[before:])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
