package main

// End-to-end tests of the Xima vendor: the real binary against the fake Xima
// REST API and its SQS queues (ximatest), the fake Twilio and the fake Slack.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/vendors/xima/ximatest"
)

const ximaConfig = e2eHeader + e2eRetry + e2eSMS + e2eSlack + `
[vendors.xima.support]
base_url = %q
installation_id = %q
api_key = "${E2E_XIMA_API_KEY}"
skill = "Support"
sqs_endpoint = %q
poll_wait = "1s"
still_here_interval = %q
still_here_jitter = "100ms"
reconnect_initial = "100ms"
reconnect_max = "500ms"

[[routes]]
channel = "sms.main"
vendor = "xima.support"

[[routes]]
channel = "slack.support"
vendor = "xima.support"
`

type ximaWorld struct {
	*slackWorld
	xima *ximatest.Server
}

// newXimaWorld builds the world. A chat with no still-here for limit dies;
// the daemon sends one every interval.
func newXimaWorld(t *testing.T, limit, interval time.Duration) *ximaWorld {
	t.Helper()
	sw := newSlackWorld(t, echoOperator(), true)
	x := ximatest.NewServer(t, ximatest.Config{StillHereLimit: limit})
	text := fmt.Sprintf(ximaConfig, filepath.Join(sw.dir, "state"), sw.addr, "http://"+sw.addr,
		sw.twilio.AccountSID(), companyNumber, sw.twilio.URL(),
		sw.slack.AppToken, slackSupport, sw.slack.APIURL(), x.URL(), ximatest.DefaultInstallationID, x.SQSEndpoint(), interval.String())
	if err := os.WriteFile(sw.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	sw.env = append(sw.env, "E2E_XIMA_API_KEY="+ximatest.DefaultAPIKey)
	w := &ximaWorld{slackWorld: sw, xima: x}
	w.echo()
	return w
}

// echo is the agent: it takes every new chat and answers each customer line
// with "echo: " and the line; context lines of a reopened chat are not
// answered.
func (w *ximaWorld) echo() {
	var wg sync.WaitGroup
	w.t.Cleanup(wg.Wait) // after the cancel below: cleanups run last first
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(cancel)
	wg.Add(1)
	go func() {
		defer wg.Done()
		answered := map[string]int{}
		for ctx.Err() == nil {
			w.xima.Wait(ctx, func() bool { return w.unanswered(answered) })
			for _, c := range w.xima.Chats() {
				if c.Ended != "" || c.Gone {
					continue
				}
				n, seen := answered[c.ID]
				if !seen {
					w.xima.StartChat(c.ID, "Xavier")
				}
				for _, line := range c.Lines[n:] {
					if !strings.HasPrefix(line, "[connectord]") {
						w.xima.Say(c.ID, "echo: "+line)
					}
				}
				answered[c.ID] = len(c.Lines)
			}
		}
	}()
}

// unanswered reports whether a live chat has a line or a start the agent
// has not answered.
func (w *ximaWorld) unanswered(answered map[string]int) bool {
	for _, c := range w.xima.Chats() {
		if n, seen := answered[c.ID]; c.Ended == "" && !c.Gone && (!seen || len(c.Lines) > n) {
			return true
		}
	}
	return false
}

func TestXimaSMSAndSlack(t *testing.T) {
	w := newXimaWorld(t, 30*time.Second, 20*time.Second)
	w.start()
	w.sms("hello from my phone")
	w.smsTo("echo: hello from my phone")
	root := w.say("", "hello from slack")
	w.waitThread(root.TS, "echo: hello from slack")
}

// Agent lines delivered twice and out of order reach the customer once
// each, in order; a chat idle for well past Xima's still-here limit stays
// alive; credentials rotated mid-conversation; the agent ends it.
func TestXimaDuplicatesIdleRotationAndEnd(t *testing.T) {
	w := newXimaWorld(t, 2*time.Second, 500*time.Millisecond)
	w.start()
	w.sms("hello")
	w.smsTo("echo: hello")
	chat := w.xima.Chats()[0].ID

	w.xima.Hold(true)
	w.xima.Reorder(true)
	w.xima.Duplicate(3)
	for _, s := range []string{"first", "second", "third"} {
		if err := w.xima.Say(chat, s); err != nil {
			t.Fatal(err)
		}
	}
	w.xima.Hold(false)
	w.smsTo("third")
	var got []string
	for _, m := range w.twilio.Sent() {
		switch m.Body {
		case "first", "second", "third":
			got = append(got, m.Body)
		}
	}
	if strings.Join(got, ",") != "first,second,third" {
		t.Errorf("the customer got %q, want first, second, third once each", got)
	}
	w.xima.Reorder(false)

	time.Sleep(5 * time.Second) // idle for 2.5 times the still-here limit
	if c, _ := w.xima.Chat(chat); c.Gone || c.Ended != "" {
		t.Fatalf("the idle chat died: %+v", c)
	}
	w.xima.RotateCredentials()
	w.sms("after rotation")
	w.smsTo("echo: after rotation")

	if err := w.xima.End(chat); err != nil {
		t.Fatal(err)
	}
	w.smsTo("The agent has ended the chat")
	w.sms("a new chat")
	w.smsTo("echo: a new chat")
	if n := len(w.xima.Chats()); n != 2 {
		t.Errorf("%d chats, want a new one after the agent ended the first", n)
	}
}

// SIGKILL after acknowledged webhooks and with agent lines not yet deleted
// from SQS, then a restart: every customer line reaches the agent, only the
// one in flight at the kill possibly twice (Xima's POST /chat has no id to
// drop a repeat by); every agent line reaches the customer exactly once per
// time the agent said it, although SQS delivers the undeleted ones again.
func TestXimaKillLosesNothing(t *testing.T) {
	w := newXimaWorld(t, 30*time.Second, 20*time.Second)
	w.start()
	w.sms("one")
	w.smsTo("echo: one")
	want := []string{"two", "three", "four", "five"}
	w.xima.Hold(true) // the answers wait in SQS, undeleted, across the kill
	for _, text := range want {
		w.sms(text)
	}
	chat := w.xima.Chats()[0].ID
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := w.xima.WaitLines(ctx, chat, 5); err != nil {
		t.Fatal(err)
	}
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.xima.Hold(false)
	w.start()
	w.sms("six")
	w.smsTo("echo: six")
	c, _ := w.xima.Chat(chat)
	repeats := 0
	for _, line := range append([]string{"one"}, append(want, "six")...) {
		said := countValue(c.Lines, line)
		if said < 1 {
			t.Errorf("the agent never got %q", line)
		}
		repeats += max(said-1, 0)
		if got := countBody(w.twilio.Sent(), "echo: "+line); got != said {
			t.Errorf("%q reached the customer %d times; the agent said it %d times", "echo: "+line, got, said)
		}
	}
	if repeats > 1 {
		t.Errorf("the agent got %q: %d repeats, at most the line in flight at the kill may repeat", c.Lines, repeats)
	}
}
