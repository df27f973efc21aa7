package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// killDBEnv, set, makes TestLazyMarkSurvivesKill the process that is
// killed: it marks a message sent in that database and waits to be killed.
const killDBEnv = "CONNECTORD_TEST_KILL_DB"

// TestLazyMarkSurvivesKill runs this test binary as a helper process that
// records a message, marks it sent (a lazy write: committed without an
// fsync) and reports it, and is then killed with SIGKILL before it can
// close the store: reopened, the database still has the mark.
func TestLazyMarkSurvivesKill(t *testing.T) {
	if path := os.Getenv(killDBEnv); path != "" {
		markAndWait(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "c.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLazyMarkSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDBEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		id    int64
		lazy  bool
		found bool
	)
	lines := bufio.NewScanner(out)
	for !found && lines.Scan() {
		_, err := fmt.Sscanf(lines.Text(), "marked %d lazily %t", &id, &lazy)
		found = err == nil
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Close, no checkpoint
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed: the error is the signal
	if !found {
		t.Fatalf("the helper process reported no mark; its stderr:\n%s", stderr.Bytes())
	}
	if !lazy {
		t.Errorf("the helper's MarkSent was a synced commit: this test is about a lazy one")
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != connector.DeliverySent || m.RemoteID != "remote-1" {
		t.Errorf("after SIGKILL and reopening: message %d is %s with remote id %q, want sent, remote-1", id, m.State, m.RemoteID)
	}
}

// markAndWait is the helper process: it prints "marked ID lazily BOOL" once
// MarkSent has returned, then waits to be killed (a minute at most, so
// that it never outlives a parent that died).
func markAndWait(t *testing.T, path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "+1555", SourceID: "SM1", Text: "hi"}, "v")
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, in.Message.ID, "remote-1"); err != nil {
		t.Fatal(err)
	}
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("marked %d lazily %t\n", in.Message.ID, after.SyncedTransactions == before.SyncedTransactions)
	<-time.After(time.Minute)
	t.Error("not killed within a minute")
}
