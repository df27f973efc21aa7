package main

// End-to-end tests of the Slack channel: the real binary against the fake
// Slack and the fake WhosOn, in both intake modes.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

const slackConfig = e2eHeader + `
[conversation]
retry_initial = "50ms"
retry_max = "1s"
customer_rate = "0s" # the fake Slack's own rate limits are what these tests drive

[channels.slack.support]
bot_token = "${E2E_SLACK_BOT_TOKEN}"
app_token = %q
signing_secret = %q
channels = [%q]
api_url = %q
post_interval = "20ms"
catch_up_interval = "10ms"
request_timeout = "2s"
` + e2eWhoson + `
[[routes]]
channel = "slack.support"
vendor = "whoson.sales"
`

const (
	slackSupport = "C0SUPPORT1"
	slackAnn     = "U0ANN00001"
)

// slackWorld is a world whose customers are in Slack.
type slackWorld struct {
	*world
	slack *slacktest.Server
}

// newSlackWorld writes a configuration for Socket Mode (socket) or the
// Events API and points the fake Slack at the daemon.
func newSlackWorld(t *testing.T, op whosontest.Operator, socket bool) *slackWorld {
	t.Helper()
	w := newWorld(t, op, 0)
	fake := slacktest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetRetryDelay(200 * time.Millisecond)
	fake.AddUser(slacktest.User{ID: slackAnn, Name: "ann", RealName: "Ann Lee", DisplayName: "Ann", Email: "ann@example.com"})
	fake.AddChannel(slacktest.Channel{ID: slackSupport, Name: "support", Shared: true})
	appToken := ""
	if socket {
		appToken = fake.AppToken
	} else {
		fake.SetEventsURL("http://" + w.addr + "/slack/support/events")
	}
	text := fmt.Sprintf(slackConfig, filepath.Join(w.dir, "state"), w.addr, "http://"+w.addr,
		appToken, fake.SigningSecret, slackSupport, fake.APIURL(), w.whoson.URL())
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "E2E_SLACK_BOT_TOKEN="+fake.BotToken)
	return &slackWorld{world: w, slack: fake}
}

// bothModes runs f once in Socket Mode and once over the Events API.
func bothModes(t *testing.T, f func(t *testing.T, socket bool)) {
	for _, m := range []struct {
		name   string
		socket bool
	}{{"SocketMode", true}, {"EventsAPI", false}} {
		t.Run(m.name, func(t *testing.T) { f(t, m.socket) })
	}
}

func (w *slackWorld) say(thread, text string) slacktest.Message {
	return w.slack.Post(slacktest.Post{Channel: slackSupport, User: slackAnn, ThreadTS: thread, Text: text})
}

// waitThread waits until the thread has a reply (ours) whose text contains
// each of want, in order, and returns the replies.
func (w *slackWorld) waitThread(root string, want ...string) []slacktest.Message {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := w.slack.WaitFor(ctx, func() bool { return containsInOrder(texts(w.slack.Replies(slackSupport, root)), want) })
	if err != nil {
		w.t.Fatalf("thread never showed %q; it has %q", want, texts(w.slack.Replies(slackSupport, root)))
	}
	return w.slack.Replies(slackSupport, root)
}

func texts(ms []slacktest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// containsInOrder reports whether have has elements containing each of want, in order.
func containsInOrder(have, want []string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && strings.Contains(h, want[i]) {
			i++
		}
	}
	return i == len(want)
}

func (w *slackWorld) reactions(ts string) []string {
	m, _ := w.slack.Message(slackSupport, ts)
	return m.Reactions
}

func TestSlackThreadTalksToWhosOn(t *testing.T) {
	bothModes(t, func(t *testing.T, socket bool) {
		w := newSlackWorld(t, echoOperator(), socket)
		w.start()
		root := w.say("", "my *printer* is on fire")
		w.visitorLines(1)
		// "queued" comes first unless the operator joined before WhosOn's
		// accept reached us (the fake operator joins at once): then it is moot.
		replies := w.waitThread(root.TS, "chatting with Alice", "echo: my printer is on fire")
		echo := replies[len(replies)-1]
		if echo.Username != "Alice" || echo.Metadata == nil {
			t.Errorf("agent line = %+v; want it under Alice, with our metadata", echo)
		}
		chats := w.whoson.Chats()
		if len(chats) != 1 || chats[0].VisitorName != "Ann" || chats[0].Fields["Email"] != "ann@example.com" {
			t.Errorf("chats = %+v; want one for Ann with her email", chats)
		}
		if got := w.reactions(root.TS); !slices.Equal(got, []string{"speech_balloon"}) {
			t.Errorf("root reactions = %q, want the agent-joined one only", got)
		}
		w.say(root.TS, "thanks, and <@"+slackAnn+"> says hi")
		w.waitThread(root.TS, "echo: thanks, and @Ann says hi")

		w.say(root.TS, "end chat")
		w.waitThread(root.TS, "You ended the chat")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.slack.WaitFor(ctx, func() bool { return slices.Equal(w.reactions(root.TS), []string{"white_check_mark"}) }); err != nil {
			t.Errorf("root reactions after the end = %q", w.reactions(root.TS))
		}
		waitUntil(t, "the WhosOn chat ended", func() bool { return w.whoson.Chats()[0].Ended })

		w.say(root.TS, "one more thing")
		w.waitThread(root.TS, "You ended the chat", "starts a new one", "echo: one more thing")
		if n := len(w.whoson.Chats()); n != 2 {
			t.Errorf("WhosOn chats = %d, want a new one after the end", n)
		}
		if lines := w.whoson.AllVisitorLines(); slices.Contains(lines, "end chat") {
			t.Errorf("the end keyword reached the operator: %q", lines)
		}

		// The operator ends the new chat: the thread hears it.
		chats = w.whoson.Chats()
		if err := w.whoson.Quit(chats[len(chats)-1].UID); err != nil {
			t.Fatal(err)
		}
		w.waitThread(root.TS, "starts a new one", "The agent has ended the chat")
	})
}

func TestSlackSameEventThriceReachesAgentOnce(t *testing.T) {
	bothModes(t, func(t *testing.T, socket bool) {
		w := newSlackWorld(t, echoOperator(), socket)
		w.start()
		root := w.slack.Post(slacktest.Post{Channel: slackSupport, User: slackAnn, Text: "once please", Deliveries: 3})
		w.waitThread(root.TS, "echo: once please")
		w.say(root.TS, "and after")
		w.waitThread(root.TS, "echo: and after")
		if lines := w.whoson.AllVisitorLines(); !slices.Equal(lines, []string{"once please", "and after"}) {
			t.Errorf("operator saw %q", lines)
		}
	})
}

func TestSlackBurstUnderRateLimitStorm(t *testing.T) {
	bothModes(t, testBurstUnderRateLimitStorm)
}

func testBurstUnderRateLimitStorm(t *testing.T, socket bool) {
	w := newSlackWorld(t, whosontest.Operator{Name: "Alice"}, socket)
	// Far below what 30 lines at post_interval need: posts meet 429s all along.
	w.slack.SetRateLimit("chat.postMessage", 100*time.Millisecond, 3)
	w.start()
	root := w.say("", "tell me everything")
	w.visitorLines(1)
	w.waitThread(root.TS, "chatting with Alice")
	uid := w.whoson.Chats()[0].UID
	var want []string
	for i := 1; i <= 30; i++ {
		line := fmt.Sprintf("line %02d", i)
		want = append(want, line)
		if err := w.whoson.Say(uid, line); err != nil {
			t.Fatal(err)
		}
	}
	replies := w.waitThread(root.TS, want...)
	var got []string
	for _, r := range replies {
		if strings.HasPrefix(r.Text, "line ") {
			got = append(got, r.Text)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("thread has %q\nwant each line once, in order", got)
	}
	limited := 0
	for _, c := range w.slack.Calls("chat.postMessage") {
		if c.Status == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("no 429 was met: the storm did not happen")
	}
	t.Logf("%d posts, %d answered 429", len(w.slack.Calls("chat.postMessage")), limited)
}

func TestSlackKillLosesNothing(t *testing.T) {
	bothModes(t, func(t *testing.T, socket bool) {
		slow := whosontest.Operator{Name: "Alice", Reply: func(s string) string {
			time.Sleep(300 * time.Millisecond) // answers come after the restart
			return "echo: " + s
		}}
		w := newSlackWorld(t, slow, socket)
		w.start()
		root := w.say("", "one")
		w.visitorLines(1)
		want := []string{"one", "two", "three", "four", "five"}
		for _, text := range want[1:] {
			w.say(root.TS, text)
		}
		// Kill once Slack has its answer (acked or 200) for every message.
		waitUntil(t, "every event acknowledged", func() bool { return w.acknowledged(len(want)) })
		w.proc.cmd.Process.Kill()
		<-w.proc.done
		w.start()
		w.visitorLines(len(want))
		w.waitThread(root.TS, "echo: five")
		w.say(root.TS, "six")
		w.waitThread(root.TS, "echo: six")
		time.Sleep(500 * time.Millisecond) // a late duplicate would show up now

		lines := w.whoson.AllVisitorLines()
		if !slices.Equal(slices.Compact(slices.Clone(lines)), append(want, "six")) {
			t.Errorf("operator saw %q; want every line in order", lines)
		}
		if extra := len(lines) - len(slices.Compact(slices.Clone(lines))); extra > 1 {
			t.Errorf("operator saw %q: %d repeats; at most the line in flight at the kill may repeat (WhosOn has no ids)", lines, extra)
		}
		replies := texts(w.slack.Replies(slackSupport, root.TS))
		for _, line := range slices.Compact(slices.Clone(lines)) {
			said := countValue(lines, line) // the operator answered each copy
			if got := countValue(replies, "echo: "+line); got != said {
				t.Errorf("%q is in the thread %d times, the operator said it %d times", "echo: "+line, got, said)
			}
		}
	})
}

// The same kill, against a WhosOn that does not re-attach a chat to a new
// socket: every acknowledged line reaches an operator, in order, on the new
// chat; the thread is told "reconnected" and never that the chat ended.
func TestSlackKillWithoutReattach(t *testing.T) {
	w := newSlackWorld(t, echoOperator(), true)
	w.whoson.RefuseReattach(true)
	w.start()
	root := w.say("", "one")
	w.visitorLines(1)
	want := []string{"one", "two", "three", "four", "five"}
	for _, text := range want[1:] {
		w.say(root.TS, text)
	}
	waitUntil(t, "every event acknowledged", func() bool { return w.acknowledged(len(want)) })
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.start()
	w.say(root.TS, "six")
	w.waitThread(root.TS, "echo: six")
	var lines []string
	contexts := 0
	for _, l := range w.whoson.AllVisitorLines() {
		if strings.HasPrefix(l, "[connectord]") {
			contexts++
		} else {
			lines = append(lines, l)
		}
	}
	// One context line when the chat was lost and opened again; none when
	// the kill came after WhosOn accepted the chat but before connectord
	// stored it (the next process opens a chat as for a new conversation).
	if n := len(w.whoson.Chats()); n < 2 || contexts > 1 {
		t.Errorf("whoson has %d chats and saw %d context lines: want the chat lost and one new chat", n, contexts)
	}
	if !slices.Equal(slices.Compact(slices.Clone(lines)), append(want, "six")) {
		t.Errorf("operators saw %q; want every line in order", lines)
	}
	if extra := len(lines) - len(slices.Compact(slices.Clone(lines))); extra > 1 {
		t.Errorf("operators saw %q: %d repeats; at most the line in flight at the kill may repeat", lines, extra)
	}
	for _, r := range texts(w.slack.Replies(slackSupport, root.TS)) {
		if strings.Contains(r, "ended") || strings.Contains(r, "could not keep") {
			t.Errorf("the thread was told %q", r)
		}
	}
}

// acknowledged reports whether Slack got a success answer for n events.
func (w *slackWorld) acknowledged(n int) bool {
	ok := map[string]bool{}
	for _, a := range w.slack.Acks() {
		ok[a.EventID] = true
	}
	for _, d := range w.slack.Deliveries() {
		if d.Status == 200 {
			ok[d.EventID] = true
		}
	}
	return len(ok) >= n
}

func TestSlackCatchUpAfterDowntime(t *testing.T) {
	bothModes(t, func(t *testing.T, socket bool) {
		w := newSlackWorld(t, echoOperator(), socket)
		w.start()
		root := w.say("", "hello")
		w.waitThread(root.TS, "echo: hello")
		if code, _ := w.signal(15, 10*time.Second); code != 0 {
			t.Fatalf("SIGTERM exit code %d", code)
		}
		// Written while the daemon was down; Slack gave up delivering them:
		// a reply in the open thread, and a new thread with a reply of its own.
		w.slack.Post(slacktest.Post{Channel: slackSupport, User: slackAnn, ThreadTS: root.TS, Text: "while you were away", Silent: true})
		newRoot := w.slack.Post(slacktest.Post{Channel: slackSupport, User: slackAnn, Text: "a new question", Silent: true})
		w.slack.Post(slacktest.Post{Channel: slackSupport, User: slackAnn, ThreadTS: newRoot.TS, Text: "and a detail", Silent: true})
		w.start()
		w.waitThread(root.TS, "echo: hello", "echo: while you were away")
		w.waitThread(newRoot.TS, "echo: a new question", "echo: and a detail")
		lines := w.whoson.AllVisitorLines()
		slices.Sort(lines) // two chats, relayed side by side
		if want := []string{"a new question", "and a detail", "hello", "while you were away"}; !slices.Equal(lines, want) {
			t.Errorf("operator saw %q, want %q", lines, want)
		}
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
