package main

// End-to-end tests of the Cention vendor: the real binary against the fake
// Cention server (centiontest), the fake Twilio and the fake Slack.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/vendors/cention/centiontest"
)

const centionConfig = e2eHeader + e2eRetry + e2eSMS + e2eSlack + `
[vendors.cention.cloud]
base_url = %q
area = %d
origin = %q
reconnect_initial = "100ms"
reconnect_max = "500ms"

[[routes]]
channel = "sms.main"
vendor = "cention.cloud"

[[routes]]
channel = "slack.support"
vendor = "cention.cloud"
`

type centionWorld struct {
	*slackWorld
	cention *centiontest.Server
}

// newCentionWorld builds the world; agent, when set, answers by itself.
func newCentionWorld(t *testing.T, agent *centiontest.Agent) *centionWorld {
	t.Helper()
	sw := newSlackWorld(t, echoOperator(), true)
	srv := centiontest.NewServer(t, centiontest.Config{Agent: agent})
	text := fmt.Sprintf(centionConfig, filepath.Join(sw.dir, "state"), sw.addr, "http://"+sw.addr,
		sw.twilio.AccountSID(), companyNumber, sw.twilio.URL(),
		sw.slack.AppToken, slackSupport, sw.slack.APIURL(), srv.URL(), srv.Area(), srv.Origin())
	if err := os.WriteFile(sw.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return &centionWorld{slackWorld: sw, cention: srv}
}

func echoAgent() *centiontest.Agent {
	return &centiontest.Agent{Name: "Cleo", Reply: func(s string) string { return "echo: " + s }}
}

// token returns the token of the one chat whose lines include line.
func (w *centionWorld) token(line string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var token string
	err := w.cention.Wait(ctx, func(chats []centiontest.Chat) bool {
		for _, c := range chats {
			for _, l := range c.Lines {
				if l.Text == line {
					token = c.Token
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		w.t.Fatalf("no chat has %q: %v", line, err)
	}
	return token
}

func TestCentionSMSAndSlack(t *testing.T) {
	w := newCentionWorld(t, echoAgent())
	w.start()
	w.sms("hello from my phone")
	w.smsTo("echo: hello from my phone")
	root := w.say("", "hello from slack")
	w.waitThread(root.TS, "echo: hello from slack")
}

// Batches that re-deliver what the client saw reach the customer once; a
// socket dropped mid-chat resumes, and a refused resume opens a new chat
// without telling the customer it ended.
func TestCentionRedeliveryDropAndRefusedResume(t *testing.T) {
	w := newCentionWorld(t, echoAgent())
	w.cention.SetRedeliver(3)
	w.start()
	for _, s := range []string{"one", "two", "three"} {
		w.sms(s)
		w.smsTo("echo: " + s)
	}
	tok := w.token("one")
	if err := w.cention.Drop(tok); err != nil {
		t.Fatal(err)
	}
	w.sms("after the drop")
	w.smsTo("echo: after the drop")
	w.cention.RefuseResume(tok)
	if err := w.cention.Drop(tok); err != nil {
		t.Fatal(err)
	}
	w.smsTo("We were briefly disconnected")
	w.sms("after the refusal")
	w.smsTo("echo: after the refusal")
	for _, s := range []string{"one", "two", "three", "after the drop", "after the refusal"} {
		if n := countBody(w.twilio.Sent(), "echo: "+s); n != 1 {
			t.Errorf("%q reached the customer %d times, want once", "echo: "+s, n)
		}
	}
	for _, m := range w.twilio.Sent() {
		if strings.Contains(m.Body, "ended") || strings.Contains(m.Body, "could not keep") {
			t.Errorf("customer told %q", m.Body)
		}
	}
}

// The agent ends by event, then (in a new chat) by in-text JSON: each time
// the customer reads that the agent ended it and the next message starts a
// new chat.
func TestCentionAgentEnds(t *testing.T) {
	w := newCentionWorld(t, echoAgent())
	w.start()
	w.sms("first chat")
	w.smsTo("echo: first chat")
	if err := w.cention.EndByEvent(w.token("first chat")); err != nil {
		t.Fatal(err)
	}
	w.smsTo("The agent has ended the chat")
	w.sms("second chat")
	w.smsTo("echo: second chat")
	if err := w.cention.EndInText(w.token("second chat"), centiontest.OwnerEndsChat); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for countBody(w.twilio.Sent(), "The agent has ended the chat. Write again any time to start a new one.") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the in-text end was not told: %+v", w.twilio.Sent())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range w.twilio.Sent() {
		if strings.Contains(m.Body, "OWNER_ENDS_CHAT") {
			t.Errorf("a system event reached the customer as text: %q", m.Body)
		}
	}
}

// canchat false: the customer is told no agent is available; once agents
// are back, the next message starts a chat.
func TestCentionCanChatFalse(t *testing.T) {
	w := newCentionWorld(t, echoAgent())
	w.cention.SetCanChat(false)
	w.start()
	w.sms("anyone?")
	w.smsTo("no agent is available")
	w.cention.SetCanChat(true)
	w.sms("now?")
	w.smsTo("echo: now?")
}

// SIGKILL after acknowledged webhooks, then a restart: every line reaches the
// agent once (Cention drops a repeated umid), and every answer the customer.
func TestCentionKillLosesNothing(t *testing.T) {
	w := newCentionWorld(t, echoAgent())
	w.start()
	want := []string{"one", "two", "three", "four", "five"}
	for _, text := range want {
		w.sms(text)
	}
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.start()
	w.smsTo("echo: five")
	w.sms("six")
	w.smsTo("echo: six")
	for _, line := range append(want, "six") {
		if n := countBody(w.twilio.Sent(), "echo: "+line); n != 1 {
			t.Errorf("%q reached the customer %d times, want once", "echo: "+line, n)
		}
	}
	for _, c := range w.cention.Chats() {
		if len(c.Repeats) > 0 {
			t.Logf("chat %s: the server dropped %d repeated umid(s)", c.Token, len(c.Repeats))
		}
	}
}
