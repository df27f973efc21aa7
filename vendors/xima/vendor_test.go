package xima

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/xima/ximatest"
)

// A whole chat: started with the API key, the skill and the customer's
// name, number and channel; every agent message type mapped; lines both
// ways in order; the screenshot request refused; the agent's end stops the
// poll and the still-heres.
func TestChatBothWays(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	got := h.chat(id)
	want := []ximatest.ChatInfo{{Name: "Channel", Value: "sms.main"}, {Name: "Phone", Value: "+15557654321"}}
	if got.Skill != "Support" || got.Name != "Ada Lovelace" || !slices.Equal(got.CustomChatInfo, want) {
		t.Errorf("chat at the fake: %+v", got)
	}
	for _, r := range h.srv.Requests() {
		if r.Path == "/chat/queue" && r.Method == http.MethodPost {
			t.Error("the captcha queue was called")
		}
	}
	agent(t, h.srv.EstimatedWait(id, 2*time.Minute))
	agent(t, h.srv.EstimatedWait(id, time.Minute)) // within wait_notice_interval: not told
	agent(t, h.srv.StartChat(id, "Myles"))
	joined := h.sink.waitType(t, c.ID, connector.EventJoined)
	if joined.Agent != "Myles" || joined.Session == nil {
		t.Errorf("joined %+v", joined)
	}
	for i := range 5 {
		if err := h.send(h.v, c, int64(i+1), fmt.Sprintf("customer %d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	lines, err := h.srv.WaitLines(ctxT(t), id, 5)
	if err != nil || !slices.Equal(lines, []string{"customer 1", "customer 2", "customer 3", "customer 4", "customer 5"}) {
		t.Errorf("agent saw %q (%v)", lines, err)
	}
	agent(t, h.srv.Typing(id, true))
	agent(t, h.srv.Say(id, "Hello, how can I help you today?"))
	agent(t, h.srv.Typing(id, false))
	agent(t, h.srv.Screenshot(id))
	agent(t, h.srv.Transfer(id, "Shawn"))
	agent(t, h.srv.Say(id, "Shawn here."))
	h.sink.waitTexts(t, c.ID, 2) // an agent ends after the screenshot's answer, not in the same instant
	agent(t, h.srv.End(id))
	h.sink.waitType(t, c.ID, connector.EventEnded)
	var types []string
	for _, e := range h.sink.of(c.ID, "") {
		types = append(types, string(e.Type)+":"+e.Agent+e.Text+e.Reason+fmt.Sprint(e.Typing))
	}
	wantTypes := []string{"queue:Estimated wait: about 2 minutes.false", "joined:Mylesfalse", "typing:true",
		"text:Hello, how can I help you today?false", "typing:false", "transferred:Shawnfalse", "text:Shawn here.false",
		"ended:agentfalse"}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := h.chat(id).Screenshots; len(got) != 1 || got[0].Status != "REJECTED" {
		t.Errorf("screenshot replies %+v", got)
	}
	h.waitSrv("polls and still-heres over", func() bool { return h.srv.Polling() == 0 && h.v.keep.count() == 0 })
	if h.v.liveCount() != 0 {
		t.Errorf("%d chats live after the agent ended", h.v.liveCount())
	}
	for _, e := range h.sink.of(c.ID, connector.EventText) {
		if e.SourceID == "" {
			t.Errorf("agent line without a source id: %+v", e)
		}
	}
}

// Duplicated and reordered deliveries (SQS's at-least-once, best-effort
// order) reach the sink once each, in the order the agent wrote them, and
// every copy is deleted.
func TestDuplicatedAndReorderedOnce(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	agent(t, h.srv.StartChat(id, "Myles"))
	h.sink.waitType(t, c.ID, connector.EventJoined)
	h.srv.Hold(true)
	h.srv.Duplicate(12)
	h.srv.Reorder(true)
	var want []string
	for i := range 6 {
		want = append(want, fmt.Sprintf("agent %d", i+1))
		agent(t, h.srv.Say(id, want[i]))
	}
	agent(t, h.srv.Transfer(id, "Shawn"))
	h.srv.Hold(false)
	got := h.sink.waitTexts(t, c.ID, 6)
	h.sink.waitType(t, c.ID, connector.EventTransferred)
	h.waitSrv("every copy deleted", func() bool { return h.srv.Deleted() >= 1+2*7 })
	if !slices.Equal(h.sink.texts(c.ID), want) || !slices.Equal(got, want) {
		t.Errorf("agent lines %q, want %q", h.sink.texts(c.ID), want)
	}
	if n := len(h.sink.of(c.ID, connector.EventTransferred)); n != 1 {
		t.Errorf("%d transfer events for one duplicated message", n)
	}
	if n := len(h.sink.of(c.ID, connector.EventJoined)); n != 1 {
		t.Errorf("%d joined events", n)
	}
}

// An SNS envelope is unwrapped; junk and unknown types are deleted (they
// can never be processed) and the lines after them still arrive.
func TestEnvelopesAndJunk(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	h.srv.WrapSNS(true)
	agent(t, h.srv.Say(id, "wrapped"))
	h.srv.WrapSNS(false)
	agent(t, h.srv.Raw(id, "not json at all"))
	agent(t, h.srv.Raw(id, `{"type":"SOMETHING_NEW","x":1}`))
	agent(t, h.srv.Raw(id, `{"type":"CHAT_TEXT"}`))
	agent(t, h.srv.Say(id, "plain"))
	got := h.sink.waitTexts(t, c.ID, 2)
	if !slices.Equal(got, []string{"wrapped", "plain"}) {
		t.Errorf("lines %q", got)
	}
	h.waitSrv("junk deleted", func() bool { return h.srv.Deleted() >= 5 })
	if e := h.sink.of(c.ID, connector.EventText)[0]; len(e.SourceID) < 4 || e.SourceID[:4] != "sns:" {
		t.Errorf("wrapped line's source id %q, want the SNS MessageId", e.SourceID)
	}
}

// A chat idle for many still-here deadlines (70 s against Xima's 30 s,
// here 2.4 s against 0.6 s) stays alive, and works after.
func TestIdleChatStaysAlive(t *testing.T) {
	h := newHarness(t, ximatest.Config{StillHereLimit: 600 * time.Millisecond}, nil)
	c, id := h.open()
	agent(t, h.srv.StartChat(id, "Myles"))
	h.sink.waitType(t, c.ID, connector.EventJoined)
	time.Sleep(2400 * time.Millisecond) // idle on purpose: what is measured is the passing time
	if got := h.chat(id); got.Ended != "" || got.StillHere < 6 {
		t.Fatalf("after 2.4s idle: ended %q, %d still-heres", got.Ended, got.StillHere)
	}
	if err := h.send(h.v, c, 1, "still there?"); err != nil {
		t.Fatal(err)
	}
	agent(t, h.srv.Say(id, "yes"))
	h.sink.waitTexts(t, c.ID, 1)
}

// Credentials rotated mid-chat: SQS refuses the old ones, the adapter
// fetches new ones at once and nothing is lost.
func TestCredentialsRotated(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, map[string]string{"health_interval": `"1h"`})
	c, id := h.open()
	agent(t, h.srv.Say(id, "before"))
	h.sink.waitTexts(t, c.ID, 1)
	oldKey, _ := h.srv.Credentials()
	h.srv.RotateCredentials()
	newKey, _ := h.srv.Credentials()
	agent(t, h.srv.Say(id, "after"))
	got := h.sink.waitTexts(t, c.ID, 2)
	if !slices.Equal(got, []string{"before", "after"}) {
		t.Errorf("lines %q", got)
	}
	refused, usedNew := 0, false
	for _, call := range h.srv.SQSCalls() {
		if call.AccessKey == oldKey && call.ErrorCode == "InvalidClientTokenId" {
			refused++
		}
		usedNew = usedNew || call.AccessKey == newKey && call.ErrorCode == ""
	}
	if refused == 0 || !usedNew {
		t.Errorf("refused with the old key %d times, new key used: %v", refused, usedNew)
	}
	waitHealth(t, h.v, true)
}

// The health probe sees rotated credentials and drops the cached ones
// before SQS refuses them.
func TestCredentialsRotationSeenByProbe(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	agent(t, h.srv.Say(id, "before"))
	h.sink.waitTexts(t, c.ID, 1)
	h.srv.RotateCredentials()
	newKey, _ := h.srv.Credentials()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cur, err := h.v.creds.current(ctxT(t)); err == nil && cur == newKey {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new credentials were not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The agent's side ending the chat: CHAT_ENDED is the core's ended notice;
// FORCE_CLOSE and MULTIMEDIA_DOWN carry the configured notices; each stops
// the chat's poll and still-heres.
func TestAgentSideEnds(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	for _, tc := range []struct {
		end    func(string) error
		reason string
		text   string
	}{
		{h.srv.End, "agent", ""},
		{h.srv.ForceClose, "agent disconnected (FORCE_CLOSE)", h.v.cfg.ForceCloseNotice},
		{h.srv.MultimediaDown, "contact center offline (MULTIMEDIA_DOWN)", h.v.cfg.MultimediaDownNotice},
	} {
		c, id := h.open()
		agent(t, h.srv.StartChat(id, "Myles"))
		agent(t, tc.end(id))
		e := h.sink.waitType(t, c.ID, connector.EventEnded)
		if e.Reason != tc.reason || e.Text != tc.text || e.Session == nil {
			t.Errorf("ended %+v, want reason %q text %q", e, tc.reason, tc.text)
		}
		h.waitDropped(c.ID)
	}
	h.waitSrv("no poll left", func() bool { return h.srv.Polling() == 0 })
	if h.v.keep.count() != 0 {
		t.Errorf("%d chats still kept alive", h.v.keep.count())
	}
}

// The customer ends: POST /chat/end with the chat's own cookie ends that
// chat, not another; a second End and an End after a restart (cookies from
// the stored session) are nil.
func TestEndByCustomer(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c1, id1 := h.open()
	c2, id2 := h.open()
	if err := h.v.End(ctxT(t), c1, "customer"); err != nil {
		t.Fatal(err)
	}
	if h.chat(id1).Ended != ximatest.EndedByCustomer || h.chat(id2).Ended != "" {
		t.Errorf("ended %q and %q", h.chat(id1).Ended, h.chat(id2).Ended)
	}
	if err := h.v.End(ctxT(t), c1, "customer"); err != nil {
		t.Errorf("second End: %v", err)
	}
	h.stop(h.v)
	v2 := h.vendor(true)
	if err := v2.End(ctxT(t), h.current(c2), "timeout"); err != nil {
		t.Fatal(err)
	}
	if h.chat(id2).Ended != ximatest.EndedByCustomer {
		t.Errorf("after a restart, End left the chat %q", h.chat(id2).Ended)
	}
}

// The core's retry of a line Xima took is not posted again; a line to a
// chat Xima lost is ErrChatLost.
func TestSendRetryAndLost(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	for range 2 {
		if err := h.send(h.v, c, 7, "once"); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.send(h.v, c, 8, "twice"); err != nil {
		t.Fatal(err)
	}
	if got := h.chat(id).Lines; !slices.Equal(got, []string{"once", "twice"}) {
		t.Errorf("lines %q", got)
	}
	h.srv.Forget(id)
	// The send and the chat's poll both find it gone: exactly one of them
	// tells the core (ErrChatLost, or EventLost and the send is retried).
	err := h.send(h.v, c, 9, "gone?")
	switch {
	case errors.Is(err, connector.ErrChatLost):
		time.Sleep(100 * time.Millisecond) // the poll would have reported by now
		if n := len(h.sink.of(c.ID, connector.EventLost)); n != 0 {
			t.Errorf("ErrChatLost and %d EventLost for one lost chat", n)
		}
	case err != nil:
		h.sink.waitType(t, c.ID, connector.EventLost)
	default:
		t.Fatal("send to a forgotten chat succeeded")
	}
	h.waitDropped(c.ID)
	// The next send on the stale session tells the core nothing new: when
	// the send reported the loss, ErrChatLost again (nothing was reported
	// otherwise); when the poll did, a retry (the core's next attempt reads
	// the conversation that report changed).
	err = h.send(h.v, c, 10, "again")
	lost := len(h.sink.of(c.ID, connector.EventLost))
	switch {
	case err == nil || connector.IsPermanent(err):
		t.Errorf("the next send: %v, want ErrChatLost or a retry", err)
	case errors.Is(err, connector.ErrChatLost) && lost != 0:
		t.Errorf("the next send: ErrChatLost after %d EventLost", lost)
	}
}

// The poll reports a lost chat first and its EventLost is stored; a send
// that still holds the old session then waits for the core to read the
// conversation again (a retry) rather than report the same loss a second
// time with ErrChatLost.
func TestSendAfterLostReported(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	h.srv.Forget(id)
	h.sink.waitType(t, c.ID, connector.EventLost)
	err := h.send(h.v, c, 9, "still there?")
	if err == nil || errors.Is(err, connector.ErrChatLost) || connector.IsPermanent(err) {
		t.Errorf("send on the reported chat's session: %v, want a retry", err)
	}
	if n := len(h.sink.of(c.ID, connector.EventLost)); n != 1 {
		t.Errorf("%d EventLost, want 1", n)
	}
}

// Xima losing a chat while it runs (its queue deleted) is EventLost.
func TestLostWhileRunning(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	h.srv.Forget(id)
	e := h.sink.waitType(t, c.ID, connector.EventLost)
	if e.Session != nil {
		t.Errorf("EventLost carries a session: %s", e.Session)
	}
	h.waitSrv("no poll left", func() bool { return h.srv.Polling() == 0 })
	h.waitDropped(c.ID)
	if n := h.v.keep.count(); n != 0 {
		t.Errorf("%d chats still kept alive after the lost one was dropped", n)
	}
}

// A restart in the instant after an event was stored and before its SQS
// delete: the message comes again and is recognised by the id stored with
// the session, so neither a notice nor a line is doubled, and nothing is
// lost.
func TestRestartBeforeDelete(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	h.srv.SetVisibility(300 * time.Millisecond)
	c, id := h.open()
	var live atomic.Pointer[Vendor]
	live.Store(h.v)
	died := map[string]bool{}
	h.sink.onEvent = func(e connector.Event) {
		at := string(e.Type) + e.Text
		if (e.Type == connector.EventJoined || e.Text == "two") && !died[at] {
			died[at] = true
			// The process dies: the delete that follows never happens. A
			// Stop given no time cancels at once and does not wait for this
			// very goroutine.
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			_ = live.Load().group.Stop(gone)
		}
	}
	agent(t, h.srv.StartChat(id, "Myles"))
	h.sink.waitType(t, c.ID, connector.EventJoined)
	h.stop(h.v)
	restart := func() *Vendor {
		v := h.vendor(true)
		live.Store(v)
		if err := v.Resume(ctxT(t), h.current(c)); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v2 := restart()
	agent(t, h.srv.Say(id, "one"))
	agent(t, h.srv.Say(id, "two"))
	h.sink.waitTexts(t, c.ID, 2)
	h.stop(v2)
	v3 := restart()
	agent(t, h.srv.Say(id, "three"))
	h.sink.waitTexts(t, c.ID, 3)
	// Joined, one, two, three: each deleted once, the redelivered copies too.
	h.waitSrv("every message deleted", func() bool { return h.srv.Deleted() >= 4 })
	if got := h.sink.texts(c.ID); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("lines %q", got)
	}
	if n := len(h.sink.of(c.ID, connector.EventJoined)); n != 1 {
		t.Errorf("%d joined events, want 1", n)
	}
	if err := h.send(v3, c, 1, "still here after two restarts"); err != nil {
		t.Fatal(err)
	}
}

// After a restart the first still-here goes at once: a chat stopped for
// most of Xima's deadline survives; Resume of a chat Xima no longer has is
// ErrChatLost.
func TestResume(t *testing.T) {
	h := newHarness(t, ximatest.Config{StillHereLimit: time.Second}, map[string]string{
		"still_here_interval": `"400ms"`, "still_here_jitter": `"100ms"`})
	gone, goneID := h.open()
	c, id := h.open()
	h.waitSrv("a still-here", func() bool { return h.chat(id).StillHere > 0 })
	h.stop(h.v)                        // right after a still-here: Xima's deadline runs from now
	time.Sleep(650 * time.Millisecond) // the daemon is down for most of the deadline
	v2 := h.vendor(true)
	before := h.chat(id).StillHere
	if err := v2.Resume(ctxT(t), h.current(c)); err != nil {
		t.Fatal(err)
	}
	h.waitSrv("a still-here right after Resume", func() bool { return h.chat(id).StillHere > before })
	h.srv.Forget(goneID)
	if err := v2.Resume(ctxT(t), h.current(gone)); !errors.Is(err, connector.ErrChatLost) {
		t.Errorf("Resume of a forgotten chat: %v, want ErrChatLost", err)
	}
	time.Sleep(time.Second) // past the deadline counted from before the restart
	if got := h.chat(id); got.Ended != "" {
		t.Fatalf("chat ended %q after the restart", got.Ended)
	}
	agent(t, h.srv.Say(id, "welcome back"))
	h.sink.waitTexts(t, c.ID, 1)
	if err := v2.Resume(ctxT(t), h.current(c)); err != nil {
		t.Errorf("Resume of a live chat: %v", err)
	}
}

// A still-here Xima refuses makes the session check decide: a chat gone is
// EventLost.
func TestStillHereRefused(t *testing.T) {
	h := newHarness(t, ximatest.Config{StillHereLimit: 600 * time.Millisecond}, map[string]string{
		"still_here_interval": `"100ms"`, "still_here_jitter": `"0s"`})
	c, id := h.open()
	h.srv.FailREST("/chat/still-here", http.StatusNotFound, 2)
	time.Sleep(350 * time.Millisecond) // two refused, retried within the deadline
	if got := h.chat(id); got.Ended != "" {
		t.Fatalf("a refused still-here killed a live chat: %q", got.Ended)
	}
	if n := len(h.sink.of(c.ID, connector.EventLost)); n != 0 {
		t.Fatalf("%d lost events for a live chat", n)
	}
	h.srv.Forget(id)
	h.sink.waitType(t, c.ID, connector.EventLost)
}

// Open's errors: a wrong API key or installation can never work
// (Permanent); an API that is down is retried.
func TestOpenErrors(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	for key, val := range map[string]string{"api_key": `"wrong"`, "installation_id": `"other"`} {
		h.keys = baseKeys(h.srv)
		h.keys[key] = val
		v := h.vendor(true)
		if _, err := v.Open(ctxT(t), conversation()); !connector.IsPermanent(err) {
			t.Errorf("%s wrong: %v, want Permanent", key, err)
		}
	}
	h.srv.FailREST("/chat/apiqueue", http.StatusServiceUnavailable, 1)
	if _, err := h.v.Open(ctxT(t), conversation()); err == nil || connector.IsPermanent(err) {
		t.Errorf("503: %v, want a retry", err)
	}
}

// A Permanent answer from the sink (a conversation the core does not have)
// acknowledges the message and stops the chat.
func TestSinkPermanent(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	c, id := h.open()
	h.sink.failWith = func(e connector.Event) error {
		return connector.Permanent(errors.New("unknown conversation"))
	}
	deleted := h.srv.Deleted()
	agent(t, h.srv.Say(id, "to nobody"))
	h.waitSrv("the message deleted", func() bool { return h.srv.Deleted() > deleted })
	deadline := time.Now().Add(5 * time.Second)
	for h.v.chat(c.ID) != nil {
		if time.Now().After(deadline) {
			t.Fatal("chat still live")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With more chats than max_pollers, chats take turns and every line
// arrives; no more receives wait at once than the bound.
func TestBoundedPollers(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, map[string]string{"max_pollers": "2", "poll_wait": `"1s"`})
	var convs []*connector.Conversation
	var ids []string
	for range 5 {
		c, id := h.open()
		convs, ids = append(convs, c), append(ids, id)
	}
	most := 0
	for i, id := range ids {
		agent(t, h.srv.Say(id, fmt.Sprint("hello ", i)))
	}
	for i, c := range convs {
		for len(h.sink.texts(c.ID)) == 0 {
			most = max(most, h.srv.Polling())
			time.Sleep(5 * time.Millisecond)
		}
		if got := h.sink.texts(c.ID); !slices.Equal(got, []string{fmt.Sprint("hello ", i)}) {
			t.Errorf("chat %d: %q", i, got)
		}
	}
	if most > 2 {
		t.Errorf("%d receives waiting at once, bound 2", most)
	}
	if w := h.v.pool.wait(); w != time.Second {
		t.Errorf("wait with 5 chats over 2 pollers: %s", w)
	}
}

// Health: not ready before Start; ready with the API up; not ready while
// the REST API fails, ready again after.
func TestHealth(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, nil)
	if got := h.vendor(false).Health(); got.Ready || got.Detail != "not started" {
		t.Errorf("before Start: %+v", got)
	}
	waitHealth(t, h.v, true)
	h.srv.FailREST("/chat/queue/auth", http.StatusBadGateway, 1<<20)
	waitHealth(t, h.v, false)
	h.srv.FailREST("/chat/queue/auth", 0, 0)
	waitHealth(t, h.v, true)
	h.stop(h.v)
	if got := h.v.Health(); got.Ready || got.Detail != "stopped" {
		t.Errorf("after Stop: %+v", got)
	}
}

func waitHealth(t *testing.T, v *Vendor, ready bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for v.Health().Ready != ready {
		if time.Now().After(deadline) {
			t.Fatalf("health %+v, want ready=%v", v.Health(), ready)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends long polls at once (no waiting out poll_wait): Stop is given
// less time (5 s) than the poll would take (20 s, SQS's longest), so only a
// Stop that ends the poll returns without error; and the poll is gone.
func TestStopIsPrompt(t *testing.T) {
	h := newHarness(t, ximatest.Config{}, map[string]string{"poll_wait": `"20s"`})
	h.open()
	h.waitSrv("a long poll waiting", func() bool { return h.srv.Polling() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.v.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v, want the long poll ended rather than waited out", err)
	}
	h.waitSrv("the long poll gone", func() bool { return h.srv.Polling() == 0 })
}
