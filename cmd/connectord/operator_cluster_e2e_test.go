package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestClusterOperatorCommands: with two instances on one PostgreSQL, an
// operator's retry and end sent to the instance that does not own the
// conversation are carried out by its owner, woken by the commit. The
// outbox sweep is made too slow to matter, so only the wake can deliver.
func TestClusterOperatorCommands(t *testing.T) {
	c := newCluster(t, "a", "b")
	for _, n := range c.nodes {
		text, err := os.ReadFile(n.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		slow := strings.Replace(string(text), `retry_max = "500ms"`, `retry_max = "500ms"`+"\noutbox_sweep = \"1h\"", 1)
		if slow == string(text) {
			t.Fatal("the cluster configuration has no [conversation] retry_max line to add outbox_sweep after")
		}
		if err := os.WriteFile(n.cfgPath, []byte(slow), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.start("a")
	c.start("b")
	const alice = "+15550001111"
	c.sms("a", alice, "one")
	c.echoed(alice, "one", 15*time.Second)
	if got := c.owner(alice); got != "a" {
		t.Fatalf("the conversation started on a is owned by %q", got)
	}
	var conv, failed string
	if err := c.db.QueryRow(`SELECT id::text FROM conversations WHERE customer = $1`, alice).Scan(&conv); err != nil {
		t.Fatal(err)
	}

	c.twilio.SetUndelivered(alice, 30003)
	c.sms("a", alice, "two")
	deadline := time.Now().Add(15 * time.Second)
	for failed == "" {
		if time.Now().After(deadline) {
			t.Fatal("the undelivered echo never failed")
		}
		time.Sleep(50 * time.Millisecond)
		_ = c.db.QueryRow(`SELECT id::text FROM messages WHERE conversation_id = $1::bigint AND text = 'echo: two' AND state = 'failed'`,
			conv).Scan(&failed)
	}
	c.twilio.SetUndelivered(alice, 0)

	out := c.cliOK("b", "retry", failed)
	if !strings.Contains(out, "stored again") {
		t.Errorf("retry through b: %s", out)
	}
	deadline = time.Now().Add(15 * time.Second)
	for countSMS(c.twilio.Sent(), alice, "echo: two") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the message retried through b never went out again; sent: %+v", c.twilio.Sent())
		}
		time.Sleep(20 * time.Millisecond)
	}

	out = c.cliOK("b", "end", conv)
	if !strings.Contains(out, "ended (operator)") {
		t.Errorf("end through b: %s", out)
	}
	c.smsArrives(alice, "This chat was closed by our support team. Write again any time to start a new one.")
	deadline = time.Now().Add(15 * time.Second)
	for chats := c.whoson.Chats(); len(chats) != 1 || !chats[0].Ended; chats = c.whoson.Chats() {
		if time.Now().After(deadline) {
			t.Fatalf("the vendor's chat did not end: %+v", chats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, errOut, code := c.cli("a", "end", conv); code != 1 || !strings.Contains(errOut, "already ended") {
		t.Errorf("end through a after b ended it: exit %d, %s", code, errOut)
	}
}

// cli runs an operator command against instance id.
func (c *cluster) cli(id string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	n := c.nodes[id]
	cmd := exec.Command(binary, append(args, "-config", n.cfgPath)...)
	cmd.Env = append(os.Environ(), n.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		c.t.Fatalf("run connectord %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func (c *cluster) cliOK(id string, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.cli(id, args...)
	if code != 0 {
		c.t.Fatalf("connectord %v on %s: exit %d\n%s%s", args, id, code, out, errOut)
	}
	return out
}
