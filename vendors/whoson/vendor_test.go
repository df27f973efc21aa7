package whoson

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

func TestOpenJoinGreetingReply(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "<b>Hi</b>, how can I help?", Reply: echo}, nil)
	c := conversation(connector.Profile{Name: "Ann <Lee>", Email: "ann@example.com"})
	h.open(c)
	st, _ := parseSession(c.Session)
	if st.ChatUID == "" || st.Cookie == "" || st.SessionID == "" {
		t.Errorf("session %s lacks chat_uid, cookie or session_id", c.Session)
	}
	joined := h.sink.waitType(t, connector.EventJoined)
	if joined.Agent != "Alice" || joined.ConversationID != c.ID {
		t.Errorf("joined = %+v", joined)
	}
	greeting := h.sink.waitText(t, "<b>Hi</b>, how can I help?")
	if greeting.Format != connector.FormatHTML || greeting.SourceID == "" || greeting.Session == nil {
		t.Errorf("greeting = %+v", greeting)
	}

	h.send(c, 1, "hello there")
	if diff := cmp.Diff([]string{"hello there"}, h.visitorLines(1)); diff != "" {
		t.Errorf("operator saw (-want +got):\n%s", diff)
	}
	h.sink.waitText(t, "echo: hello there")
	// The reply ends with typingstop: once it is in, the chat's one reader
	// has handled every frame before it (the echo of our line and the
	// "says" headers), so a duplicate or an echo relayed would show now.
	h.sink.wait(t, "typing off", func(e connector.Event) bool { return e.Type == connector.EventTyping && !e.Typing })
	if diff := cmp.Diff([]string{"<b>Hi</b>, how can I help?", "echo: hello there"}, texts(h.sink.all())); diff != "" {
		t.Errorf("texts (-want +got):\n%s", diff)
	}

	chats := h.srv.Chats()
	if len(chats) != 1 {
		t.Fatalf("chats = %+v", chats)
	}
	got := chats[0]
	if got.UID != st.ChatUID || got.Cookie != st.Cookie || got.VisitorName != "Ann <Lee>" || got.Language != "en" {
		t.Errorf("chat = %+v, session %+v", got, st)
	}
	if got.Fields["Phone"] != c.Customer || got.Fields["Email"] != "ann@example.com" {
		t.Errorf("pre-chat fields = %v", got.Fields)
	}
	if b := h.srv.Blacklisted(); len(b) != 0 {
		t.Errorf("blacklisted %v", b)
	}
}

func TestVisitorNameFallsBackToPhone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, map[string]string{"department": `"Sales"`, "language": `"FR"`})
	c := conversation(connector.Profile{})
	h.open(c)
	got := h.srv.Chats()[0]
	if got.VisitorName != c.Customer || got.Department != "Sales" || got.Language != "fr" {
		t.Errorf("chat = %+v", got)
	}
}

// The operator's typing reaches the core as events. (The other way has no
// source: no channel reports a customer typing.)
func TestOperatorTyping(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	uid := chatUID(t, c)
	h.srv.Typing(uid, true)
	h.srv.Typing(uid, false)
	h.sink.wait(t, "typing off", func(e connector.Event) bool { return e.Type == connector.EventTyping && !e.Typing })
	typing := h.sink.of(connector.EventTyping)
	if len(typing) != 2 || !typing[0].Typing || typing[1].Typing {
		t.Errorf("typing events %s", describe(typing))
	}
}

func TestTranslationRelaysLinet(t *testing.T) {
	t.Parallel()
	op := whosontest.Operator{Name: "Alice", Greeting: "Hello", Reply: echo, Translate: strings.ToUpper}
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, op, map[string]string{"translation": "true"})
		c := conversation(connector.Profile{})
		h.open(c)
		h.sink.waitText(t, "HELLO")
		h.send(c, 1, "hi")
		h.sink.waitText(t, "ECHO: HI")
		if diff := cmp.Diff([]string{"HELLO", "ECHO: HI"}, texts(h.sink.all())); diff != "" {
			t.Errorf("texts (-want +got):\n%s", diff)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, op, nil)
		c := conversation(connector.Profile{})
		h.open(c)
		h.sink.waitText(t, "Hello")
		h.send(c, 1, "hi")
		h.sink.waitText(t, "echo: hi")
		if diff := cmp.Diff([]string{"Hello", "echo: hi"}, texts(h.sink.all())); diff != "" {
			t.Errorf("texts (-want +got):\n%s", diff)
		}
	})
	t.Run("on without linet", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "Hello", Reply: echo}, map[string]string{"translation": "true"})
		c := conversation(connector.Profile{})
		h.open(c)
		h.sink.waitText(t, "Hello") // held for its translation, then relayed as is
		h.send(c, 1, "x")
		h.sink.waitText(t, "echo: x")
	})
}

func TestNotAccepted(t *testing.T) {
	t.Parallel()
	for _, leave := range []bool{true, false} {
		t.Run(map[bool]string{true: "leave message", false: "no leave message"}[leave], func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, whosontest.Operator{Name: "Alice", NotAccepted: true, LeaveMessageEnabled: leave}, nil)
			c := conversation(connector.Profile{Name: "Ann", Email: "ann@example.com"})
			h.open(c)
			// Committed before Open returned.
			got := h.sink.of(connector.EventNoAgent)
			if len(got) != 1 || got[0].LeaveMessage != leave || got[0].ConversationID != c.ID || got[0].Text == "" {
				t.Fatalf("no-agent events %s", describe(h.sink.all()))
			}
			st, _ := parseSession(c.Session)
			if !st.NoAgent || st.ChatUID == "" {
				t.Errorf("session %s", c.Session)
			}
			if !leave {
				if h.v.session(c.ID) != nil {
					t.Error("socket kept though no message can be left")
				}
				return
			}
			if err := h.v.LeaveMessage(ctx(t), c, &connector.Message{ID: 2, Text: "please call me"}); err != nil {
				t.Fatal(err)
			}
			left := h.srv.LeftMessages()
			want := []whosontest.LeftMessage{{ChatUID: st.ChatUID, SessionID: st.SessionID, Domain: "www.example.com",
				Name: "Ann", Email: "ann@example.com", Phone: c.Customer, Text: "please call me"}}
			if diff := cmp.Diff(want, left); diff != "" {
				t.Errorf("left messages (-want +got):\n%s", diff)
			}
			if h.v.session(c.ID) != nil {
				t.Error("session still open after the message was left")
			}
		})
	}
}

// After a restart the left message goes over a new socket.
func TestLeaveMessageAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", NotAccepted: true, LeaveMessageEnabled: true}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	if err := h.v.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	v2, _ := h.vendor(nil)
	if err := v2.Resume(ctx(t), c); err != nil {
		t.Fatalf("Resume of a not-accepted chat: %v", err)
	}
	if err := v2.LeaveMessage(ctx(t), c, &connector.Message{ID: 2, Text: "later"}); err != nil {
		t.Fatal(err)
	}
	left := h.srv.LeftMessages()
	if len(left) != 1 || left[0].Text != "later" || left[0].ChatUID != chatUID(t, c) || left[0].Phone != c.Customer {
		t.Errorf("left = %+v", left)
	}
}

func TestQueueThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", QueueFor: 2 * time.Second}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	h.sink.waitType(t, connector.EventJoined)
	q := h.sink.of(connector.EventQueue)
	if len(q) != 1 || q[0].Position != 2 {
		t.Errorf("queue events %s, want one at position 2", describe(q))
	}
}

func TestQueueAgainAfterInterval(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", QueueFor: 2 * time.Second},
		map[string]string{"queue_notice_interval": `"500ms"`})
	c := conversation(connector.Profile{})
	h.open(c)
	h.sink.waitType(t, connector.EventJoined)
	if q := h.sink.of(connector.EventQueue); len(q) != 2 || q[1].Position != 1 {
		t.Errorf("queue events %s, want two", describe(q))
	}
}

func TestOperatorQuit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	h.sink.waitType(t, connector.EventJoined)
	if err := h.srv.Quit(chatUID(t, c)); err != nil {
		t.Fatal(err)
	}
	if e := h.sink.waitType(t, connector.EventEnded); e.Reason != "agent" {
		t.Errorf("ended = %+v", e)
	}
	waitFor(t, "session gone", func() bool { return h.v.session(c.ID) == nil })
	if err := h.v.End(ctx(t), c, "customer"); err != nil {
		t.Errorf("End after the operator quit: %v", err)
	}
}

func TestEndSendsQuit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	st, _ := parseSession(c.Session)
	if err := h.v.End(ctx(t), c, "customer"); err != nil {
		t.Fatal(err)
	}
	var quit []string
	for _, cmd := range h.srv.Commands() {
		if cmd.Name == "Quit" {
			quit = cmd.Parameters
		}
	}
	if diff := cmp.Diff([]string{st.SessionID, "www.example.com"}, quit); diff != "" {
		t.Errorf("Quit parameters (-want +got):\n%s", diff)
	}
	if !h.srv.Chats()[0].Ended {
		t.Error("chat not ended at the server")
	}
	if err := h.v.End(ctx(t), c, "customer"); err != nil {
		t.Errorf("second End: %v", err)
	}
	if err := h.v.End(ctx(t), conversation(connector.Profile{}), "customer"); err != nil {
		t.Errorf("End of an unknown conversation: %v", err)
	}
	if len(h.sink.of(connector.EventEnded)) != 0 {
		t.Errorf("our own End was reported as an agent event: %s", describe(h.sink.all()))
	}
}

func TestSendSplitsLongText(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	long := strings.Repeat("word ", 1700) // 8500 characters
	h.send(c, 1, long)
	lines := h.visitorLines(3)
	if len(lines) != 3 || strings.Join(lines, " ") != strings.TrimSpace(long) {
		t.Errorf("got %d lines", len(lines))
	}
	h.send(c, 1, long) // a retry of the same message sends nothing again
	h.send(c, 2, "next")
	if got := h.visitorLines(4); len(got) != 4 || got[3] != "next" {
		t.Errorf("lines after a retried message: %d, last %q", len(got), got[len(got)-1])
	}
	if b := h.srv.Blacklisted(); len(b) != 0 {
		t.Errorf("blacklisted %v", b)
	}
}

// A dropped socket reconnects by itself and the chat goes on: lines said
// while it was down arrive, later replies too, and no line comes twice.
func TestReconnectAfterDrop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "hi", Reply: echo}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	uid := chatUID(t, c)
	h.send(c, 1, "one")
	h.sink.waitText(t, "echo: one")
	before, _ := parseSession(c.Session)

	h.srv.DropAll()
	if err := h.srv.Say(uid, "said while you were away"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitText(t, "said while you were away")
	sess := h.sink.waitType(t, connector.EventSession)
	after, _ := parseSession(sess.Session)
	if after.ChatUID != uid || after.Cookie != before.Cookie || after.SessionID == before.SessionID {
		t.Errorf("session before %+v, after %+v", before, after)
	}
	h.send(c, 2, "two")
	h.sink.waitText(t, "echo: two")

	h.srv.DropAll()
	h.send(c, 3, "three") // may go into the dead socket: written again after the reconnect
	h.sink.waitText(t, "echo: three")
	t.Logf("lines written again: %d", h.logs.FilterMessageSnippet("written again").Len())
	if diff := cmp.Diff([]string{"one", "two", "three"}, h.srv.VisitorLines(uid)); diff != "" {
		t.Errorf("operator saw (-want +got):\n%s", diff)
	}

	want := []string{"hi", "echo: one", "said while you were away", "echo: two", "echo: three"}
	if diff := cmp.Diff(want, texts(h.sink.all())); diff != "" {
		t.Errorf("texts (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, e := range h.sink.of(connector.EventText) {
		if seen[e.SourceID] {
			t.Errorf("SourceID %s twice", e.SourceID)
		}
		seen[e.SourceID] = true
	}
	if len(h.srv.Chats()) != 1 {
		t.Errorf("reconnecting started a new chat: %+v", h.srv.Chats())
	}
	if len(h.sink.of(connector.EventEnded)) != 0 {
		t.Errorf("chat ended: %s", describe(h.sink.all()))
	}
}

// A restarted daemon continues the chat with the stored session.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Reply: echo}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	h.send(c, 1, "one")
	e := h.sink.waitText(t, "echo: one")
	c.Session = e.Session
	if err := h.v.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range h.srv.Commands() {
		if cmd.Name == "Quit" {
			t.Fatal("Stop sent Quit")
		}
	}
	v2, sink2 := h.vendor(nil)
	if err := v2.Resume(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	sink2.waitType(t, connector.EventSession)
	if err := h.srv.Say(chatUID(t, c), "welcome back"); err != nil {
		t.Fatal(err)
	}
	back := sink2.waitText(t, "welcome back")
	if back.SourceID == e.SourceID {
		t.Errorf("a new line reused SourceID %s", e.SourceID)
	}
	if err := v2.Send(ctx(t), c, &connector.Message{ID: 2, Text: "two"}); err != nil {
		t.Fatal(err)
	}
	sink2.waitText(t, "echo: two")
	if err := v2.Resume(ctx(t), c); err != nil {
		t.Errorf("second Resume: %v", err)
	}
	if n := len(h.srv.Chats()); n != 1 {
		t.Errorf("%d chats, want the one resumed", n)
	}
}

// Send after a restart without Resume resumes first.
func TestSendResumesFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Reply: echo}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	if err := h.v.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	v2, sink2 := h.vendor(nil)
	if err := v2.Send(ctx(t), c, &connector.Message{ID: 1, Text: "anyone?"}); err != nil {
		t.Fatal(err)
	}
	sink2.waitText(t, "echo: anyone?")
}

// lossMode is one of the fake's ways of not giving a chat back on a new
// socket.
type lossMode struct {
	name string
	// lose applies the mode to chat uid and drops the chat's socket, if it
	// has one.
	lose func(t *testing.T, srv *whosontest.Server, uid string)
}

// lossModes: the fake forgot the chat, or it does not re-attach chats to a
// new socket at all (RefuseReattach).
func lossModes() []lossMode {
	return []lossMode{
		{"forgotten", func(_ *testing.T, srv *whosontest.Server, uid string) { srv.Forget(uid) }},
		{"reattach refused", func(t *testing.T, srv *whosontest.Server, uid string) {
			srv.RefuseReattach(true)
			if err := srv.Drop(uid); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

// A chat WhosOn lost while the daemon was down is not resumed: Resume
// returns ErrChatLost (not Permanent, no event: the core opens a new chat),
// a Send for it too, without dialling again once known; Open for the same
// conversation then starts a new chat, which takes the context line and
// the customer's lines.
func TestResumeLostChat(t *testing.T) {
	t.Parallel()
	for _, mode := range lossModes() {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
			c := conversation(connector.Profile{})
			h.open(c)
			old := chatUID(t, c)
			if err := h.v.Stop(ctx(t)); err != nil {
				t.Fatal(err)
			}
			mode.lose(t, h.srv, old)
			v2, sink2 := h.vendor(nil)
			err := v2.Resume(ctx(t), c)
			if !errors.Is(err, connector.ErrChatLost) || connector.IsPermanent(err) {
				t.Fatalf("Resume of a lost chat = %v, want ErrChatLost, not permanent", err)
			}
			if v2.session(c.ID) != nil {
				t.Error("a lost chat kept a session")
			}
			connects := countCommands(h.srv, "Connect")
			m := &connector.Message{ID: 1, Kind: connector.KindText, Text: "hello?"}
			if err := v2.Send(ctx(t), c, m); !errors.Is(err, connector.ErrChatLost) {
				t.Errorf("Send for the lost chat = %v, want ErrChatLost", err)
			}
			if n := countCommands(h.srv, "Connect"); n != connects {
				t.Errorf("Send for a chat known lost dialled again (%d Connects, had %d)", n, connects)
			}
			v3, sink3 := h.vendor(nil) // another restart: Send resumes first
			if err := v3.Send(ctx(t), c, m); !errors.Is(err, connector.ErrChatLost) || connector.IsPermanent(err) {
				t.Errorf("Send after a restart, chat lost = %v, want ErrChatLost", err)
			}
			if len(sink2.all())+len(sink3.all()) != 0 {
				t.Errorf("events %s, want none: the core decides", describe(append(sink2.all(), sink3.all()...)))
			}
			if lines := h.srv.AllVisitorLines(); len(lines) != 0 {
				t.Errorf("visitor lines %q before the chat was opened again", lines)
			}
			reopen(t, h, v2, c, old)
		})
	}
}

// reopen does what the core does for a lost chat: Open again with no
// session, then the context line and a customer line, which reach the new
// chat (and not the old one) in order.
func reopen(t *testing.T, h *harness, v *Vendor, c *connector.Conversation, old string) {
	t.Helper()
	oldLines, total := h.srv.VisitorLines(old), len(h.srv.AllVisitorLines())
	c.Session = nil
	sess, err := v.Open(ctx(t), c)
	if err != nil {
		t.Fatalf("Open for a conversation whose chat was lost: %v", err)
	}
	c.Session = sess
	uid := chatUID(t, c)
	if uid == old {
		t.Fatalf("Open again kept chat %s", old)
	}
	if v.session(c.ID) == nil {
		t.Fatal("no session after Open again")
	}
	for i, m := range []*connector.Message{
		{ID: 100, Kind: connector.KindContext, Text: "Ann on sms.main; last: hello?"},
		{ID: 101, Kind: connector.KindText, Text: "hello?"},
	} {
		if err := v.Send(ctx(t), c, m); err != nil {
			t.Fatalf("Send %d on the new chat: %v", i, err)
		}
	}
	if _, err := h.srv.WaitVisitorLines(ctx(t), total+2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Ann on sms.main; last: hello?", "hello?"}, h.srv.VisitorLines(uid)); diff != "" {
		t.Errorf("new chat's lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(oldLines, h.srv.VisitorLines(old)); diff != "" {
		t.Errorf("old chat's lines changed (-before +after):\n%s", diff)
	}
}

// countCommands counts the commands named name the server received.
func countCommands(srv *whosontest.Server, name string) int {
	n := 0
	for _, cmd := range srv.Commands() {
		if cmd.Name == name {
			n++
		}
	}
	return n
}

// The server losing the chat while connected is found by the automatic
// reconnect: EventLost (not EventEnded), the session ends (no socket, not
// in Health), a Send for the lost chat gets ErrChatLost, and Open for the
// same conversation starts a new chat.
func TestLiveChatLost(t *testing.T) {
	t.Parallel()
	for _, mode := range lossModes() {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, whosontest.Operator{Name: "Alice", Reply: echo}, nil)
			c := conversation(connector.Profile{})
			h.open(c)
			old := chatUID(t, c)
			h.send(c, 1, "one")
			h.sink.waitText(t, "echo: one")
			mode.lose(t, h.srv, old)
			lost := h.sink.waitType(t, connector.EventLost)
			if lost.ConversationID != c.ID || !strings.Contains(lost.Reason, old) {
				t.Errorf("lost = %+v", lost)
			}
			waitFor(t, "ready with no chat open", func() bool { return h.v.Health().Ready })
			if h.v.session(c.ID) != nil {
				t.Error("the lost chat's session is still registered")
			}
			connects := countCommands(h.srv, "Connect")
			err := h.v.Send(ctx(t), c, &connector.Message{ID: 2, Kind: connector.KindText, Text: "hello?"})
			if !errors.Is(err, connector.ErrChatLost) || connector.IsPermanent(err) {
				t.Errorf("Send for the lost chat = %v, want ErrChatLost", err)
			}
			if n := countCommands(h.srv, "Connect"); n != connects {
				t.Errorf("Send for a chat known lost dialled again (%d Connects, had %d)", n, connects)
			}
			if e := h.sink.of(connector.EventEnded); len(e) != 0 {
				t.Errorf("a lost chat ended the conversation: %s", describe(h.sink.all()))
			}
			reopen(t, h, h.v, c, old)
			h.sink.waitText(t, "echo: hello?")
			if n := len(h.sink.of(connector.EventLost)); n != 1 {
				t.Errorf("%d lost events, want 1", n)
			}
			if health := h.v.Health(); !health.Ready || !strings.Contains(health.Detail, "1 chats") {
				t.Errorf("health with the new chat = %+v", health)
			}
		})
	}
}

// A core that opens the new chat from inside the sink's call for EventLost
// (before the event's call returns) gets it: the lost session is no longer
// the conversation's before the event goes out, so Open does not wait for
// it.
func TestLostReopenedFromSink(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	old := chatUID(t, c)
	reopened := make(chan error, 1)
	h.sink.mu.Lock()
	h.sink.onEvent = func(e connector.Event) {
		if e.Type == connector.EventLost {
			_, err := h.v.Open(ctx(t), &connector.Conversation{ID: c.ID, Channel: c.Channel, Customer: c.Customer})
			reopened <- err
		}
	}
	h.sink.mu.Unlock()
	h.srv.Forget(old)
	select {
	case err := <-reopened:
		if err != nil {
			t.Fatalf("Open from the sink: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open from inside the EventLost call did not return: deadlock")
	}
	if chats := h.srv.Chats(); len(chats) != 2 || chats[1].Ended {
		t.Errorf("chats %+v, want the lost one and a live new one", chats)
	}
	if s := h.v.session(c.ID); s == nil || s.snapshot() == nil {
		t.Error("no session for the new chat")
	}
}

// A Send waiting for the socket while the reconnect finds the chat gone
// returns ErrChatLost, whether it started before or after the loss was
// found.
func TestSendDuringLoss(t *testing.T) {
	t.Parallel()
	for _, mode := range lossModes() {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
			c := conversation(connector.Profile{})
			h.open(c)
			h.srv.SetDown(true) // the socket drops; redials are refused
			waitFor(t, "the socket down", func() bool { return !h.v.Health().Ready })
			sent := make(chan error, 1)
			go func() {
				sent <- h.v.Send(ctx(t), c, &connector.Message{ID: 1, Kind: connector.KindText, Text: "there?"})
			}()
			mode.lose(t, h.srv, chatUID(t, c))
			h.srv.SetDown(false)
			h.sink.waitType(t, connector.EventLost)
			if err := <-sent; !errors.Is(err, connector.ErrChatLost) {
				t.Errorf("Send = %v, want ErrChatLost", err)
			}
			if lines := h.srv.AllVisitorLines(); len(lines) != 0 {
				t.Errorf("visitor lines %q, want none", lines)
			}
		})
	}
}

func TestResumeDialFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	if err := h.v.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	h.srv.Close()
	v2, sink2 := h.vendor(nil)
	err := v2.Resume(ctx(t), c)
	if err == nil || connector.IsPermanent(err) {
		t.Errorf("Resume with the server down = %v, want an error to retry", err)
	}
	if len(sink2.all()) != 0 {
		t.Errorf("events %s", describe(sink2.all()))
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	bad, _ := h.vendor(map[string]string{"auth_string": `"wrong"`})
	_, err := bad.Open(ctx(t), conversation(connector.Profile{}))
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "Access Denied") {
		t.Errorf("Open with a wrong auth string = %v, want a permanent Access Denied", err)
	}
	h.srv.Close()
	_, err = h.v.Open(ctx(t), conversation(connector.Profile{}))
	if err == nil || connector.IsPermanent(err) {
		t.Errorf("Open with the server down = %v, want an error to retry", err)
	}
}

// The core's EventSink retries a refusing store itself and fails only for
// good (Permanent) or once ctx is done: the adapter calls it once per event,
// never retries it, and a refused event stops the chat's reader (the socket
// is dropped, logged) so that nothing after it is taken out of order.
func TestSinkRefusalStopsChat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"permanent", connector.Permanent(fmt.Errorf("event for conversation 1: %w", connector.ErrNotFound))},
		{"transient", errors.New("store busy")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "first", Reply: echo}, nil)
			h.sink.mu.Lock()
			h.sink.failN, h.sink.failErr = 1, tc.err
			h.sink.mu.Unlock()
			c := conversation(connector.Profile{})
			h.open(c)
			waitFor(t, "the session to stop", func() bool { return h.v.session(c.ID) == nil })
			if n := h.logs.FilterMessageSnippet("event not stored").Len(); n != 1 {
				t.Errorf("%d log lines about the refused event, want 1", n)
			}
			// Once every goroutine of the vendor has returned, no retry can
			// come later.
			if err := h.v.Stop(ctx(t)); err != nil {
				t.Fatal(err)
			}
			h.sink.mu.Lock()
			calls := h.sink.calls
			h.sink.mu.Unlock()
			if calls != 1 || len(h.sink.all()) != 0 {
				t.Errorf("sink called %d times, events %s; want the one refused call", calls, describe(h.sink.all()))
			}
		})
	}
}

// A sink that blocks while the core retries its store still gets every
// event, in order, from the chat's one reader.
func TestSinkBlockingKeepsOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "first"}, nil)
	h.sink.mu.Lock() // the first event waits until the lock is released
	c := conversation(connector.Profile{})
	h.open(c)
	waitFor(t, "the first event to wait in the sink", func() bool { return h.sink.entered.Load() > 0 })
	h.sink.mu.Unlock()
	h.sink.waitText(t, "first")
	if got := h.sink.all(); got[0].Type != connector.EventJoined {
		t.Errorf("events out of order: %s", describe(got))
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice"}, nil)
	waitFor(t, "ready", func() bool { return h.v.Health().Ready })
	c := conversation(connector.Profile{})
	h.open(c)
	if health := h.v.Health(); !health.Ready || !strings.Contains(health.Detail, "1 chats") {
		t.Errorf("health with a chat = %+v", health)
	}
	h.srv.Close()
	waitFor(t, "not ready", func() bool { return !h.v.Health().Ready })
	if health := h.v.Health(); !strings.Contains(health.Detail, "1 of 1 chat sockets down") ||
		!strings.Contains(health.Detail, fmt.Sprintf("conversation %d:", c.ID)) {
		t.Errorf("health with the socket down = %+v, want the count and the conversation", health)
	}
	if err := h.v.End(ctx(t), c, "customer"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unreachable", func() bool { return strings.HasPrefix(h.v.Health().Detail, "unreachable") })
}

func TestHealthBeforeStart(t *testing.T) {
	t.Parallel()
	v, err := Build(connector.VendorEnv{Instance: instance(validKeys()), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	if h := v.Health(); h.Ready {
		t.Errorf("health before Start = %+v", h)
	}
	if err := v.Stop(context.Background()); err != nil {
		t.Errorf("Stop without Start: %v", err)
	}
	if _, err := v.Open(context.Background(), conversation(connector.Profile{})); err == nil {
		t.Error("Open after Stop worked")
	}
}

// Stop drops every socket (no Quit) and leaves no goroutine behind.
func TestStopLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := whosontest.New(whosontest.Config{Operator: whosontest.Operator{Name: "Alice", Reply: echo}, APIKey: testServerKey})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := &harness{t: t, srv: srv}
	v, sk := h.vendor(nil)
	h.v, h.sink = v, sk
	for range 3 {
		c := conversation(connector.Profile{})
		h.open(c)
		h.send(c, 1, "x")
	}
	h.visitorLines(3)
	if err := v.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := v.Stop(ctx(t)); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for _, ch := range srv.Chats() {
		if ch.Ended {
			t.Errorf("chat %s ended by Stop", ch.UID)
		}
	}
	if h := v.Health(); h.Ready {
		t.Errorf("health after Stop = %+v", h)
	}
}

// A final waiting line means no agent: the chat is quit at the server and
// the customer may leave a message; a later notaccepted is not told twice.
func TestFinalWaitingLine(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", JoinDelay: time.Hour, LeaveMessageEnabled: true}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	uid := chatUID(t, c)
	// In one step, so that our Quit cannot end the chat at the server
	// before the notaccepted goes out; the last line, relayed as a notice,
	// proves the notaccepted before it was handled.
	err := h.srv.SendEvents(uid,
		whosontest.LineEvent("lineo linewaiting1", "One moment please..."),
		whosontest.LineEvent("lineo final", "No operators are available."),
		whosontest.Event{Name: "notaccepted", Data: "No operators"},
		whosontest.LineEvent("lineo linewaiting2", "marker"))
	if err != nil {
		t.Fatal(err)
	}
	na := h.sink.waitType(t, connector.EventNoAgent)
	if !na.LeaveMessage || na.Text != "No operators are available." {
		t.Errorf("no agent = %+v", na)
	}
	if st, _ := parseSession(na.Session); !st.NoAgent || !st.LeaveMessage {
		t.Errorf("session with the no-agent event: %s", na.Session)
	}
	notice := h.sink.waitType(t, connector.EventNotice)
	if notice.Text != "One moment please..." || notice.Format != connector.FormatHTML || notice.SourceID == "" {
		t.Errorf("waiting line = %+v", notice)
	}
	waitFor(t, "Quit", func() bool {
		for _, cmd := range h.srv.Commands() {
			if cmd.Name == "Quit" {
				return true
			}
		}
		return false
	})
	h.sink.wait(t, "the marker", func(e connector.Event) bool { return e.Type == connector.EventNotice && e.Text == "marker" })
	if n := len(h.sink.of(connector.EventNoAgent)); n != 1 || len(h.sink.of(connector.EventEnded)) != 0 {
		t.Errorf("events %s", describe(h.sink.all()))
	}
	if err := h.v.LeaveMessage(ctx(t), c, &connector.Message{ID: 3, Text: "call me"}); err != nil {
		t.Fatal(err)
	}
	if left := h.srv.LeftMessages(); len(left) != 1 || left[0].ChatUID != uid {
		t.Errorf("left %+v", left)
	}
}

// An error event saying the chat is gone ends the conversation; any other
// is only logged.
func TestServerErrorEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Reply: echo}, nil)
	c := conversation(connector.Profile{})
	h.open(c)
	uid := chatUID(t, c)
	h.srv.SendEvent(uid, "error", "You cannot upload files of this type.")
	h.send(c, 1, "still here")
	h.sink.waitText(t, "echo: still here")
	if lines := h.srv.VisitorLines(uid); len(lines) != 1 {
		t.Errorf("visitor lines %q, want the line once", lines)
	}
	h.srv.SendEvent(uid, "error", "The chat session has ended.")
	if e := h.sink.waitType(t, connector.EventEnded); !strings.Contains(e.Reason, "has ended") {
		t.Errorf("ended = %+v", e)
	}
}

// A held operator line flushed by its timer (no translation came) that the
// store refuses stops the chat's reader, as a refusal of any other event
// does: the socket is dropped without a reconnect, and nothing after the
// refused line is relayed.
func TestHeldLineRefusalStopsChat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, whosontest.Operator{Name: "Alice", Greeting: "Hello"}, map[string]string{"translation": "true"})
	c := conversation(connector.Profile{})
	h.open(c)
	h.sink.waitType(t, connector.EventJoined)
	h.sink.mu.Lock()
	h.sink.failN, h.sink.failErr = 1, connector.Permanent(errors.New("conversation gone"))
	h.sink.mu.Unlock()
	// The greeting is held for its translation, then flushed and refused.
	waitFor(t, "the session to stop", func() bool { return h.v.session(c.ID) == nil })
	if n := h.logs.FilterMessageSnippet("event not stored").Len(); n != 1 {
		t.Errorf("%d log lines about the refused event, want 1", n)
	}
	if err := h.v.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := h.logs.FilterMessageSnippet("connection lost").Len(); n > 0 {
		t.Errorf("the chat reconnected after the refusal (%d log lines)", n)
	}
	h.sink.mu.Lock()
	calls := h.sink.calls
	h.sink.mu.Unlock()
	if calls != 2 {
		t.Errorf("sink called %d times, events %s; want joined and the refused line", calls, describe(h.sink.all()))
	}
}
