package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

// postSigned posts body to the events URL signed with secret at time at.
func (e *env) postSigned(body, secret string, at time.Time) int {
	e.t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, e.web.URL+"/slack/test/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEventsAPISignature(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	if err := e.fake.VerifyURL(context.Background()); err != nil {
		t.Fatalf("url_verification: %v", err)
	}
	event := `{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"` + chSupport +
		`","user":"` + ann + `","text":"hi","ts":"1763900000.000100"}}`
	cases := []struct {
		name   string
		secret string
		at     time.Time
		want   int
	}{
		{"wrong secret", "not-the-secret", time.Now(), http.StatusUnauthorized},
		{"six minutes old", e.fake.SigningSecret, time.Now().Add(-6 * time.Minute), http.StatusUnauthorized},
		{"good", e.fake.SigningSecret, time.Now(), http.StatusOK},
	}
	for _, tc := range cases {
		if got := e.postSigned(event, tc.secret, tc.at); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := e.sink.inbound(); len(got) != 1 {
		t.Errorf("inbound = %+v, want only the good request's", got)
	}
	if got := e.postSigned(`{"type":"event_callback","event":{"type":"message","ts":[1]}}`, e.fake.SigningSecret, time.Now()); got != http.StatusOK {
		t.Errorf("a malformed event: status %d, want 200 (logged and dropped, never retried)", got)
	}
	if got := e.postSigned(`not json`, e.fake.SigningSecret, time.Now()); got != http.StatusBadRequest {
		t.Errorf("a body that is not JSON: status %d, want 400", got)
	}
}

func TestEventsAPIRetriedUntilCommitted(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	e.sink.mu.Lock()
	e.sink.fail = errors.New("store unavailable")
	e.sink.mu.Unlock()
	msg := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "hello"})
	e.waitFor("a refused delivery", func() bool { return len(e.fake.Deliveries()) > 0 })
	e.sink.mu.Lock()
	e.sink.fail = nil
	e.sink.mu.Unlock()
	got := e.waitInbound(1)
	if got[0].SourceID != chSupport+"/"+msg.TS {
		t.Errorf("inbound = %+v", got)
	}
	e.waitFor("the 200 recorded", func() bool { ds := e.fake.Deliveries(); return ds[len(ds)-1].Status == http.StatusOK })
	ds := e.fake.Deliveries()
	if ds[0].Status != http.StatusServiceUnavailable || ds[len(ds)-1].Status != http.StatusOK {
		t.Errorf("deliveries = %+v; want 503 while not committed, then 200", ds)
	}
	// The fake, like Slack, gives up on an answer after 3 s: such a
	// delivery has no status.
	for _, d := range ds {
		if d.Status == 0 {
			t.Errorf("a delivery got no answer (%s); Slack gives up after 3 s", d.Err)
		}
	}
}

func TestEventsAPISameEventThrice(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "once", Deliveries: 3})
	e.waitFor("three deliveries", func() bool { return len(e.fake.Deliveries()) == 3 })
	for _, d := range e.fake.Deliveries() {
		if d.Status != http.StatusOK {
			t.Errorf("delivery %+v, want 200", d)
		}
	}
	if got := e.sink.inbound(); len(got) != 1 {
		t.Errorf("inbound = %+v, want once", got)
	}
}

func TestCatchUpRelaysMissedMessages(t *testing.T) {
	for _, socket := range []bool{true, false} {
		e := newEnv(t, socket, nil)
		// Before the channel starts: a thread and a DM the store knows up to
		// a point, and messages Slack never delivered (the daemon was down).
		root := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "first", Silent: true})
		seen := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: "seen", Silent: true})
		missed1 := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: "missed one", Silent: true})
		e.fake.Post(slacktest.Post{Channel: chSupport, BotID: otherBot, ThreadTS: root.TS, Text: "a bot", Silent: true})
		missed2 := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: "missed two", Silent: true})
		dm1 := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "dm seen", Silent: true})
		dm2 := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "dm missed", Silent: true})
		e.sink.open = []connector.CustomerCursor{
			{Customer: chSupport + "/" + root.TS, LastSourceID: chSupport + "/" + seen.TS},
			{Customer: dmAnn, LastSourceID: dmAnn + "/" + dm1.TS},
		}
		e.start()
		got := e.waitInbound(3)
		var ids []string
		for _, in := range got {
			ids = append(ids, in.SourceID)
		}
		want := []string{chSupport + "/" + missed1.TS, chSupport + "/" + missed2.TS, dmAnn + "/" + dm2.TS}
		if strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("socket=%v: caught up %v, want %v", socket, ids, want)
		}
		if !got[0].Continues || got[0].Customer != chSupport+"/"+root.TS {
			t.Errorf("caught-up reply = %+v", got[0])
		}
	}
}

// A new thread started while connectord was away (Slack gave up on the
// event) is found in the channel's history after the newest stored message;
// what came before that was seen already, and its replies follow it.
func TestCatchUpFindsNewThreads(t *testing.T) {
	for _, socket := range []bool{true, false} {
		e := newEnv(t, socket, nil)
		old := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "stored before", Silent: true})
		newRoot := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "new thread", Silent: true})
		e.fake.Post(slacktest.Post{Channel: chSupport, BotID: otherBot, Text: "a bot", Silent: true})
		reply := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: newRoot.TS, Text: "and more", Silent: true})
		e.sink.stored = []string{chSupport + "/" + old.TS}
		e.sink.trackOpen = true
		e.start()
		// One pass: the channel's new root first, then, the conversation it
		// opened being listed, the thread's reply.
		got := e.waitInbound(2)
		if got[0].SourceID != chSupport+"/"+newRoot.TS || got[0].Continues || got[0].Customer != chSupport+"/"+newRoot.TS {
			t.Errorf("socket=%v: caught up %+v first; want the new thread's root", socket, got[0])
		}
		if got[1].SourceID != chSupport+"/"+reply.TS || !got[1].Continues {
			t.Errorf("socket=%v: then %+v; want the reply", socket, got[1])
		}
		time.Sleep(50 * time.Millisecond)
		if n := len(e.sink.inbound()); n != 2 {
			t.Errorf("socket=%v: %d messages handed on, want 2 (the old one, the bot's: never)", socket, n)
		}
	}
}

func TestStartRefusesRejectedToken(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) { cfg["bot_token"] = "xoxb-wrong" })
	err := e.ch.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("Start = %v; want invalid_auth", err)
	}
	e.ch.Stop(context.Background())
}

func TestHealthFollowsTheSocket(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	e.fake.Fail("apps.connections.open", slacktest.Fault{Status: 500})
	e.fake.DropSockets()
	e.waitFor("not ready", func() bool { return !e.ch.Health().Ready })
	if h := e.ch.Health(); !strings.Contains(h.Detail, "socket") {
		t.Errorf("Health = %+v; want the socket named", h)
	}
	e.fake.ClearFaults()
	e.waitFor("ready again", func() bool { return e.ch.Health().Ready })
}

func TestHealthWaitsForSlack(t *testing.T) {
	e := newEnv(t, false, nil)
	e.fake.Fail("auth.test", slacktest.Fault{Status: 503})
	if err := e.ch.Start(context.Background()); err != nil {
		t.Fatalf("Start with Slack down = %v; want nil (it keeps trying)", err)
	}
	defer e.ch.Stop(context.Background())
	if h := e.ch.Health(); h.Ready {
		t.Errorf("Health = %+v before auth.test answered", h)
	}
	if got := e.postSigned(`{"type":"event_callback","event":{"type":"message"}}`, e.fake.SigningSecret, time.Now()); got != http.StatusServiceUnavailable {
		t.Errorf("an event before the identity is known: %d, want 503", got)
	}
	e.fake.ClearFaults()
	e.waitFor("ready", func() bool { return e.ch.Health().Ready })
}

// A person from another workspace in a Slack Connect channel: users.info does
// not know them; the event's user_profile names them.
func TestSlackConnectGuestNamedFromEvent(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	event := `{"type":"event_callback","event_id":"Ev2","is_ext_shared_channel":true,"event":{"type":"message","channel":"` + chSupport +
		`","user":"U0GUEST001","team":"T0OTHER001","text":"hi from outside","ts":"1763900000.000200",` +
		`"user_profile":{"display_name":"","real_name":"Gus Guest","name":"gus"}}}`
	if got := e.postSigned(event, e.fake.SigningSecret, time.Now()); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	if in := e.waitInbound(1)[0]; in.Profile.Name != "Gus Guest" || in.Customer != chSupport+"/1763900000.000200" {
		t.Errorf("inbound = %+v; want Gus Guest's thread", in)
	}
}

// A reply posted while connectord was away in a thread whose conversation
// had ended is found through its root's latest_reply and handed on once
// (it starts a new conversation); an ended thread with nothing new is not
// read, and the next pass reads nothing again.
func TestCatchUpRepliesInEndedThreads(t *testing.T) {
	for _, socket := range []bool{true, false} {
		e := newEnv(t, socket, nil)
		quiet := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "an old question", Silent: true})
		root := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "help", Silent: true})
		seen := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: "thanks, bye", Silent: true})
		// Both conversations ended; the store knows every message so far.
		e.sink.stored = []string{chSupport + "/" + quiet.TS, chSupport + "/" + root.TS, chSupport + "/" + seen.TS}
		back := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: "one more thing", Silent: true})
		e.start()
		got := e.waitInbound(1)
		if got[0].SourceID != chSupport+"/"+back.TS || !got[0].Continues || got[0].Customer != chSupport+"/"+root.TS {
			t.Errorf("socket=%v: caught up %+v; want the reply in the ended thread", socket, got[0])
		}
		e.waitFor("the pass done", func() bool { return !e.ch.catching.Load() })
		for _, c := range e.fake.Calls("conversations.replies") {
			if c.Params["ts"] != root.TS {
				t.Errorf("socket=%v: read thread %s; only %s has something new", socket, c.Params["ts"], root.TS)
			}
		}
		before := len(e.fake.Calls("conversations.replies"))
		e.ch.catchUp(t.Context()) // a second pass: the reply is stored now
		if n := len(e.fake.Calls("conversations.replies")); n != before {
			t.Errorf("socket=%v: the second pass read %d threads, want none", socket, n-before)
		}
		if got := e.sink.inbound(); len(got) != 1 {
			t.Errorf("socket=%v: handed on %d messages, want 1", socket, len(got))
		}
	}
}

// DMs written while connectord was away, with no open conversation: one in
// a DM the store knows (its conversation ended), and a user's first DM, are
// found through conversations.list and relayed once; what a DM held before
// the newest stored DM message is not.
func TestCatchUpDMsWithoutConversation(t *testing.T) {
	for _, socket := range []bool{true, false} {
		e := newEnv(t, socket, nil)
		e.fake.AddUser(slacktest.User{ID: bob, Name: "bob"})
		e.fake.AddUser(slacktest.User{ID: cy, Name: "cy"})
		const dmBob, dmCy = "D0BOB00001", "D0CY000001"
		e.fake.AddChannel(slacktest.Channel{ID: dmBob, IM: true, User: bob})
		e.fake.AddChannel(slacktest.Channel{ID: dmCy, IM: true, User: cy})
		before := e.fake.Post(slacktest.Post{Channel: dmCy, User: cy, Text: "before connectord", Silent: true})
		seen := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "thanks, bye", Silent: true})
		e.sink.stored = []string{dmAnn + "/" + seen.TS} // her conversation ended
		// connectord is away.
		back := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "me again", Silent: true})
		first := e.fake.Post(slacktest.Post{Channel: dmBob, User: bob, Text: "hello?", Silent: true})
		e.start()
		e.waitInbound(2)
		e.waitFor("the pass done", func() bool { return !e.ch.catching.Load() })
		e.ch.catchUp(t.Context()) // a second pass finds nothing new
		got := map[string]int{}
		for _, in := range e.sink.inbound() {
			got[in.SourceID]++
			if in.Continues || in.Customer != strings.Split(in.SourceID, "/")[0] {
				t.Errorf("socket=%v: %+v; want a DM conversation", socket, in)
			}
		}
		want := map[string]int{dmAnn + "/" + back.TS: 1, dmBob + "/" + first.TS: 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("socket=%v: relayed %v, want %v (not %s)", socket, got, want, before.TS)
		}
		e.sink.mu.Lock()
		calls := e.sink.calls
		e.sink.mu.Unlock()
		if calls != 2 {
			t.Errorf("socket=%v: %d commits, want 2 (the second pass reads nothing again)", socket, calls)
		}
	}
}

// Catch-up's reads are spaced catch_up_interval apart, and a 429 (on
// conversations.list or conversations.history) is waited out and the read
// made again.
func TestCatchUpPacedAndRateLimited(t *testing.T) {
	const interval = 150 * time.Millisecond
	e := newEnv(t, false, func(cfg map[string]any) { cfg["catch_up_interval"] = interval.String() })
	root := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "help", Silent: true})
	seen := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "thanks, bye", Silent: true})
	e.sink.stored = []string{chSupport + "/" + root.TS, dmAnn + "/" + seen.TS}
	e.sink.open = []connector.CustomerCursor{{Customer: chSupport + "/" + root.TS, LastSourceID: chSupport + "/" + root.TS}}
	back := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "me again", Silent: true})
	e.fake.Fail("conversations.list", slacktest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1})
	e.fake.Fail("conversations.history", slacktest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1})
	e.start()
	if got := e.waitInbound(1); got[0].SourceID != dmAnn+"/"+back.TS {
		t.Errorf("caught up %+v; want the DM", got[0])
	}
	e.waitFor("the pass done", func() bool { return !e.ch.catching.Load() })
	var reads []slacktest.Call
	for _, m := range []string{"conversations.history", "conversations.replies", "conversations.list"} {
		reads = append(reads, e.fake.Calls(m)...)
	}
	slices.SortFunc(reads, func(a, b slacktest.Call) int { return a.Time.Compare(b.Time) })
	// The channel (429, again), the open thread, the DM list (429, again),
	// the DM.
	if len(reads) != 6 {
		t.Errorf("%d reads, want 6: %+v", len(reads), reads)
	}
	for i := 1; i < len(reads); i++ {
		gap := reads[i].Time.Sub(reads[i-1].Time)
		if reads[i-1].Status == http.StatusTooManyRequests && gap < time.Second {
			t.Errorf("%s again %s after its 429, want Retry-After (1 s)", reads[i].Method, gap)
		}
		if gap < interval-10*time.Millisecond {
			t.Errorf("%s %s after %s, want %s apart", reads[i].Method, gap, reads[i-1].Method, interval)
		}
	}
}
