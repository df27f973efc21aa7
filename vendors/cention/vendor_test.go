package cention

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

// A whole chat: register with the customer's details, the agent joins and
// writes (HTML kept as HTML), lines go both ways, each with its umid and a
// growing mcount; the customer's own lines never come back as agent lines.
func TestChat(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	ch := h.chat(c)
	want := centiontest.Register{Area: 2, Name: "Jo Doe", Email: "jo@example.com", Phone: "+15550000001",
		Message: "Jo Doe writes by sms.main.", BaseURL: h.srv.URL(), ExternalData: `""`}
	if diff := cmp.Diff(want, ch.Register); diff != "" {
		t.Errorf("register (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(ch.Token, "connectord-") || len(ch.Token) < 30 {
		t.Errorf("token %q", ch.Token)
	}
	if err := h.srv.Say(h.token(c), "<p>Hello <b>Jo</b></p>"); err != nil {
		t.Fatal(err)
	}
	e := h.sink.waitText(t, c.ID, "<p>Hello <b>Jo</b></p>")
	if e.Format != connector.FormatHTML || e.Agent != "Alice" || !strings.HasPrefix(e.SourceID, "id:") {
		t.Errorf("agent line %+v", e)
	}
	for i, text := range []string{"first", "second", "third"} {
		if err := h.send(c, int64(10+i), text); err != nil {
			t.Fatalf("Send %q: %v", text, err)
		}
	}
	got := h.waitLines(c, 3)
	wantLines := []centiontest.Line{{Umid: "connectord-10", Mcount: 1, Text: "first"},
		{Umid: "connectord-11", Mcount: 2, Text: "second"}, {Umid: "connectord-12", Mcount: 3, Text: "third"}}
	if diff := cmp.Diff(wantLines, got, cmp.FilterPath(func(p cmp.Path) bool {
		f := p.Last().String()
		return f == ".FrameID" || f == ".MessageID" || f == ".Confirmed"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if err := h.srv.Say(h.token(c), "plain & simple"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitText(t, c.ID, "plain & simple")
	if got := h.sink.texts(c.ID); !slices.Equal(got, []string{"<p>Hello <b>Jo</b></p>", "plain & simple"}) {
		t.Errorf("agent lines %q (the customer's own must not be among them)", got)
	}
	if e := h.sink.of(c.ID, connector.EventText)[1]; e.Format != connector.FormatPlain {
		t.Errorf("plain line as %q", e.Format)
	}
}

// The document's vocabulary: "chat message" batches and "message sent"
// confirmations work as the SDK's do.
func TestDocumentEvents(t *testing.T) {
	h := newHarness(t, centiontest.Config{DocumentEvents: true}, nil)
	c := h.openJoined()
	if err := h.send(c, 1, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.send(c, 1, "hello"); err != nil { // a retry: confirmed as already seen
		t.Fatal(err)
	}
	if err := h.srv.Say(h.token(c), "hi"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitText(t, c.ID, "hi")
	if got := lineTexts(h.lines(c)); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("lines %q", got)
	}
}

// Typing and queue events reach the core; typing only on change.
func TestTypingAndQueue(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.conv()
	h.open(c)
	tok := h.token(c)
	for _, n := range []int{3, 3, 2} {
		if err := h.srv.Queue(tok, n); err != nil {
			t.Fatal(err)
		}
	}
	h.sink.wait(t, "queue 2", func(e connector.Event) bool { return e.Type == connector.EventQueue && e.Position == 2 })
	if err := h.srv.Join(tok, "Alice"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{5, 9, 0} {
		if err := h.srv.Typing(tok, n); err != nil {
			t.Fatal(err)
		}
	}
	h.sink.wait(t, "typing off", func(e connector.Event) bool { return e.Type == connector.EventTyping && !e.Typing })
	var got []string
	for _, e := range h.sink.all() {
		switch e.Type {
		case connector.EventQueue:
			got = append(got, "queue "+string(rune('0'+e.Position)))
		case connector.EventTyping:
			got = append(got, map[bool]string{true: "typing on", false: "typing off"}[e.Typing])
		case connector.EventJoined:
			got = append(got, "joined "+e.Agent)
		}
	}
	if want := []string{"queue 3", "queue 2", "joined Alice", "typing on", "typing off"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// canchat says the area is closed: no socket, the closed notice and a
// no-agent event before Open returns; with offline messages the customer's
// next message is left as an offline chat.
func TestCanChatFalse(t *testing.T) {
	for _, offline := range []bool{false, true} {
		t.Run(map[bool]string{false: "no offline messages", true: "offline messages"}[offline], func(t *testing.T) {
			h := newHarness(t, centiontest.Config{}, func(k map[string]string) {
				if offline {
					k["offline_messages"] = "true"
				}
			})
			h.srv.SetCanChat(false)
			c := h.conv()
			h.open(c)
			evs := h.sink.all()
			if len(evs) != 2 || evs[0].Type != connector.EventNotice || evs[0].Text != defaultConfig().ClosedNotice ||
				evs[1].Type != connector.EventNoAgent || evs[1].LeaveMessage != offline {
				t.Fatalf("events %s", describe(evs))
			}
			if st, _ := parseSession(c.Session); !st.NoAgent || st.Token != "" {
				t.Errorf("session %s", c.Session)
			}
			if n := len(h.srv.Chats()); n != 0 {
				t.Errorf("%d chats registered while closed", n)
			}
			if !offline {
				return
			}
			m := &connector.Message{ID: 7, ConversationID: c.ID, Kind: connector.KindLeaveMessage, Text: "please call me",
				Attachments: []connector.Attachment{{URL: "https://files.example.com/a.png"}}}
			if err := h.v.LeaveMessage(ctxFor(t), c, m); err != nil {
				t.Fatal(err)
			}
			if err := h.v.LeaveMessage(ctxFor(t), c, m); err != nil { // a retry leaves nothing twice
				t.Fatal(err)
			}
			chats := h.srv.Chats()
			if len(chats) != 1 || !chats[0].Register.OfflineChat ||
				chats[0].Register.Message != "please call me\nhttps://files.example.com/a.png" {
				t.Errorf("offline chats %+v", chats)
			}
		})
	}
}

// Agent unavailable and queue full after register: no agent, the chat
// closed at Cention.
func TestNoAgentAfterRegister(t *testing.T) {
	for _, event := range []string{"unavailable", "queue full"} {
		t.Run(event, func(t *testing.T) {
			h := newHarness(t, centiontest.Config{}, nil)
			c := h.conv()
			h.open(c)
			var err error
			if event == "unavailable" {
				err = h.srv.AgentUnavailable(h.token(c))
			} else {
				err = h.srv.QueueFull(h.token(c))
			}
			if err != nil {
				t.Fatal(err)
			}
			e := h.sink.waitType(t, c.ID, connector.EventNoAgent)
			if st, _ := parseSession(e.Session); !st.NoAgent {
				t.Errorf("no-agent session %s", e.Session)
			}
			if err := h.v.End(ctxFor(t), h.current(c), "timeout"); err != nil {
				t.Errorf("End after no agent: %v", err)
			}
		})
	}
}

// The agent ends the chat by an event, by in-text JSON, or Cention expires
// it: EventEnded, with the expired notice as its text; the system text is
// never shown as a line.
func TestAgentEnds(t *testing.T) {
	cases := []struct {
		name   string
		end    func(s *centiontest.Server, tok string) error
		reason string
		text   string
	}{
		{"finish chat session", func(s *centiontest.Server, tok string) error { return s.EndByEvent(tok) }, "agent", ""},
		{"OWNER_ENDS_CHAT event", func(s *centiontest.Server, tok string) error { return s.EndWithEvent(tok, "OWNER_ENDS_CHAT") }, "agent", ""},
		{"chat closed", func(s *centiontest.Server, tok string) error { return s.EndWithEvent(tok, "chat closed") }, "agent", ""},
		{"in-text OWNER_ENDS_CHAT", func(s *centiontest.Server, tok string) error { return s.EndInText(tok, centiontest.OwnerEndsChat) }, "agent", ""},
		{"in-text CHAT_EXPIRED", func(s *centiontest.Server, tok string) error { return s.EndInText(tok, centiontest.ChatExpired) },
			"expired", defaultConfig().ExpiredNotice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, centiontest.Config{}, nil)
			c := h.openJoined()
			if err := tc.end(h.srv, h.token(c)); err != nil {
				t.Fatal(err)
			}
			e := h.sink.waitType(t, c.ID, connector.EventEnded)
			if e.Reason != tc.reason || e.Text != tc.text {
				t.Errorf("ended %+v", e)
			}
			if n := len(h.sink.of(c.ID, connector.EventText)); n != 0 {
				t.Errorf("%d text events: %s", n, describe(h.sink.all()))
			}
			if st, _ := parseSession(e.Session); !st.Ended {
				t.Errorf("ended session %s", e.Session)
			}
			if err := h.v.End(ctxFor(t), h.current(c), "customer"); err != nil {
				t.Errorf("End after the agent ended: %v", err)
			}
			if ch := h.chat(c); ch.Sockets != 1 || ch.Resumes+ch.RefusedResumes != 0 {
				t.Errorf("End of an ended chat dialled: %d sockets, %d resumes", ch.Sockets, ch.Resumes+ch.RefusedResumes)
			}
		})
	}
}

// The customer ends: close chat reaches Cention; a second End is nil; an
// End after a restart resumes once to say it.
func TestEndByCustomer(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	if err := h.v.End(ctxFor(t), h.current(c), "customer"); err != nil {
		t.Fatal(err)
	}
	h.waitChat(c, "chat ended by the client", func(ch centiontest.Chat) bool { return ch.Ended && ch.EndedBy == centiontest.EndClient })
	if err := h.v.End(ctxFor(t), h.current(c), "customer"); err != nil {
		t.Errorf("second End: %v", err)
	}
	c2 := h.openJoined()
	h.restart()
	if err := h.v.End(ctxFor(t), h.current(c2), "timeout"); err != nil {
		t.Fatal(err)
	}
	h.waitChat(c2, "chat ended after a restart", func(ch centiontest.Chat) bool { return ch.Ended && ch.EndedBy == centiontest.EndClient })
}

// Agent files are attachments with an absolute link; no text.
func TestAgentFile(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	if err := h.srv.File(h.token(c), "report.pdf", "/Cention/web/chat/client/attachment/9?t=x"); err != nil {
		t.Fatal(err)
	}
	e := h.sink.waitType(t, c.ID, connector.EventText)
	want := []connector.Attachment{{URL: h.srv.URL() + "/Cention/web/chat/client/attachment/9?t=x", Name: "report.pdf"}}
	if diff := cmp.Diff(want, e.Attachments); diff != "" || e.Text != "" {
		t.Errorf("file event text %q, attachments (-want +got):\n%s", e.Text, diff)
	}
}

// A Send for a conversation whose stored session is unreadable is permanent.
func TestSendBadSession(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.conv()
	c.Session, c.State = []byte(`{"token":`), connector.StateActive
	if err := h.send(c, 1, "x"); !connector.IsPermanent(err) {
		t.Errorf("Send: %v, want a permanent error", err)
	}
	if err := h.v.Resume(ctxFor(t), c); !connector.IsPermanent(err) || errors.Is(err, connector.ErrChatLost) {
		t.Errorf("Resume: %v", err)
	}
}
