package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

// The demo's flags: an unknown channel or a stray argument is a usage error
// that shows the demo's help.
func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"demo", "-channel", "fax"}, {"demo", "slack"}, {"demo", "-h"},
		{"demo", "-vendor", "fax"}, {"demo", "-vendor", "customerchannel", "-channel", "slack"}} {
		var out, errOut bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), "-channel sms|slack") {
			t.Errorf("%q: the help lacks -channel:\n%s", args, errOut.String())
		}
	}
}

// The Slack demo in process (under -race, its printing goroutines too):
// "end chat" ends the conversation and the line after it starts a new one in
// the same thread; nothing is printed once the demo returned.
func TestDemoSlackEndAndAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole demo")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut lockedBuffer
	err := cmdDemo(ctx, []string{"-channel", "slack", "-settle", "1s"},
		strings.NewReader("hello\n\nend chat\nagain\n"), &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	got := out.String()
	_, rest, ok := strings.Cut(got, "slack #support message ")
	if !ok {
		t.Fatalf("no top-level message in:\n%s", got)
	}
	root, _, _ := strings.Cut(rest, " ")
	thread := "slack #support thread " + root + "  "
	want := []string{
		"slack #support message " + root + "  Sam: hello\n",
		thread + `Alice: Thanks, I got: "hello".`,
		thread + "Sam: end chat\n",
		thread + "connectord: You ended the chat.",
		"slack #support message " + root + "  reactions: :white_check_mark:\n",
		thread + "Sam: again\n",
		thread + "connectord: The earlier chat here had ended, so this starts a new one.",
		thread + `Alice: Thanks, I got: "again".`,
	}
	inOrder(t, got, want)
	if strings.Contains(got, "end chat\".") {
		t.Errorf("the end keyword reached the operator:\n%s", got)
	}
	n := len(out.String())
	time.Sleep(300 * time.Millisecond)
	if len(out.String()) != n {
		t.Errorf("output after the demo returned:\n%s", out.String()[n:])
	}
}

// The Customer Channel demo: the chat server's campaign SMS reaches the
// customer through connectord's registerConnector before anything else, and
// the customer's answer to it opens a chat with the scripted agent, who
// joins, greets and echoes it back by SMS.
func TestDemoCustomerChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole demo")
	}
	if err := customerchanneltest.Requirements(); err != nil {
		t.Fatalf("customer channel simulator: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut lockedBuffer
	err := cmdDemo(ctx, []string{"-vendor", "customerchannel", "-settle", "2s"},
		strings.NewReader("is it insured?\n"), &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	got := out.String()
	want := []string{
		"): " + demoCampaign + "\n",
		"you -> agent (webhook answered 200): is it insured?\n",
		"): You are now chatting with Dana.\n",
		"): Hi, I'm Dana from Example Co.",
		"): echo: is it insured?\n",
	}
	inOrder(t, got, want)
}

// inOrder fails unless got holds each of want, in that order.
func inOrder(t *testing.T, got string, want []string) {
	t.Helper()
	at := 0
	for _, w := range want {
		i := strings.Index(got[at:], w)
		if i < 0 {
			t.Fatalf("output lacks %q after byte %d:\n%s", w, at, got)
		}
		at += i + len(w)
	}
}

// lockedBuffer is a bytes.Buffer that the race detector may watch being
// read while the demo writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
