package whosontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestChat(t *testing.T) {
	op := echo()
	op.Greeting = "Hi, I'm <b>Alice</b>."
	op.Translate = strings.ToUpper
	s := newServer(t, Config{Operator: op})
	c := dial(t, s, nil)
	if ev := c.connect("cookie-1"); ev.ChatUid != nil {
		t.Errorf("connected ChatUid = %q, want null", ev.uid())
	}
	c.hello("<Fields><Field><Name>Phone</Name><Value>+15557654321</Value></Field></Fields>")
	acc := c.next()
	uid := acc.uid()
	want := []string{
		"accepted: " + pagingText,
		"newline pagingmessage: " + pagingText,
		"operatorjoined",
		"newline linesays: Alice says:",
		"newline lineo: Hi, I'm <b>Alice</b>.",
		"newline linet: HI, I'M <B>ALICE</B>.",
	}
	got := append([]string{acc.String()}, c.nextN(len(want)-1)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after Hello (-want +got):\n%s", diff)
	}

	c.send("StartTyping", c.sid)
	c.send("message", c.sid, DefaultDomain, "hello there") // names are case-insensitive
	want = []string{
		"newline linesays: Thomas says:",
		"newline linev: hello there",
		"typing: ",
		"newline linesays: Alice says:",
		"newline lineo: echo: hello there",
		"newline linet: ECHO: HELLO THERE",
		"typingstop: ",
	}
	if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
		t.Errorf("after Message (-want +got):\n%s", diff)
	}

	if err := s.Say(uid, "Anything else?"); err != nil {
		t.Fatal(err)
	}
	if err := s.Typing(uid, true); err != nil {
		t.Fatal(err)
	}
	want = []string{"newline linesays: Alice says:", "newline lineo: Anything else?",
		"newline linet: ANYTHING ELSE?", "typing: "}
	if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
		t.Errorf("after Say (-want +got):\n%s", diff)
	}

	wantChats := []Chat{{UID: uid, Cookie: "cookie-1", VisitorName: "Thomas", Department: "Sales",
		Language: "en", Fields: map[string]string{"Phone": "+15557654321"}}}
	if diff := cmp.Diff(wantChats, s.Chats()); diff != "" {
		t.Errorf("Chats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hello there"}, s.VisitorLines(uid)); diff != "" {
		t.Errorf("VisitorLines (-want +got):\n%s", diff)
	}
	var names []string
	for _, cmd := range s.Commands() {
		if cmd.Name != "Connect" && cmd.Chat != uid {
			t.Errorf("command %s carries chat %q, want %q", cmd.Name, cmd.Chat, uid)
		}
		names = append(names, cmd.Name)
	}
	if diff := cmp.Diff([]string{"Connect", "Hello", "StartTyping", "Message"}, names); diff != "" {
		t.Errorf("Commands (-want +got):\n%s", diff)
	}
}

func TestLinesBeforeJoinAreAnsweredAfter(t *testing.T) {
	op := echo()
	op.JoinDelay = 200 * time.Millisecond
	s := newServer(t, Config{Operator: op})
	c := dial(t, s, nil)
	c.connect("")
	c.accepted()
	c.message("one")
	c.message("two")
	want := []string{
		"newline linesays: Thomas says:", "newline linev: one",
		"newline linesays: Thomas says:", "newline linev: two",
		"operatorjoined",
		"typing: ", "newline linesays: Alice says:", "newline lineo: echo: one", "typingstop: ",
		"typing: ", "newline linesays: Alice says:", "newline lineo: echo: two", "typingstop: ",
	}
	if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConnectedData(t *testing.T) {
	s := newServer(t, Config{Operator: Operator{Name: "Bob", LeaveMessageEnabled: true}})
	c := dial(t, s, nil)
	ev := c.connect("")
	var d map[string]any
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d["LeaveMessageEnabled"] != true || d["Domain"] != DefaultDomain || d["SessionID"] == "" {
		t.Errorf("connected data = %v", d)
	}
	pre, _ := d["PreChatSurvey"].(map[string]any)
	if fields, _ := pre["Fields"].([]any); len(fields) == 0 {
		t.Errorf("no pre-chat survey fields in %v", d)
	}
}

func TestNotAcceptedThenLeaveMessage(t *testing.T) {
	s := newServer(t, Config{Operator: Operator{Name: "Alice", NotAccepted: true, LeaveMessageEnabled: true}})
	c := dial(t, s, nil)
	c.connect("")
	c.hello("")
	ev := c.next()
	if ev.EventName != evNotAccepted || ev.ChatUid == nil || !strings.Contains(ev.String(), "leave a message") {
		t.Fatalf("Hello answered %s (uid %s), want notaccepted offering a message", ev, ev.uid())
	}
	uid := ev.uid()
	c.message("anyone?")
	if got := c.next().String(); got != "error: "+chatEnded {
		t.Errorf("Message after notaccepted answered %q", got)
	}
	c.send("LeaveMessage", uid, c.sid, DefaultDomain, "198.51.100.1", "Thomas", "", "t@example.com",
		"+15557654321", "Please call back")
	if got := c.next(); got.EventName != evAcknowledged || got.uid() != "" {
		t.Errorf("LeaveMessage answered %s (uid %q)", got, got.uid())
	}
	want := []LeftMessage{{ChatUID: uid, SessionID: c.sid, Domain: DefaultDomain, VisitorIP: "198.51.100.1",
		Name: "Thomas", Email: "t@example.com", Phone: "+15557654321", Text: "Please call back"}}
	if diff := cmp.Diff(want, s.LeftMessages()); diff != "" {
		t.Errorf("LeftMessages (-want +got):\n%s", diff)
	}
	if chats := s.Chats(); len(chats) != 1 || !chats[0].Ended {
		t.Errorf("Chats = %+v, want one ended", chats)
	}
}

func TestQueue(t *testing.T) {
	op := echo()
	op.QueueFor = 2 * time.Second
	s := newServer(t, Config{Operator: op})
	c := dial(t, s, nil)
	c.connect("")
	c.accepted()
	start := time.Now()
	want := []string{
		"newline queuemessage: Thank you for waiting. You are in position 2 of 2.",
		"queue: 2", "queue: 1", "operatorjoined",
	}
	if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if took := time.Since(start); took < 1900*time.Millisecond {
		t.Errorf("joined after %s, want about 2s", took)
	}
}

func TestQuit(t *testing.T) {
	for _, by := range []string{"visitor", "operator"} {
		t.Run(by, func(t *testing.T) {
			s := newServer(t, Config{Operator: echo()})
			c := dial(t, s, nil)
			c.connect("")
			uid := c.accepted()
			c.next() // operatorjoined
			if by == "visitor" {
				c.send("Quit", c.sid, DefaultDomain)
				// Commands are answered in order: if the next event is the
				// answer to GetOperators, Quit was answered by nothing.
				c.send("GetOperators", c.sid)
				if ev := c.next(); ev.EventName != evOperators {
					t.Errorf("after Quit: %s, want nothing before the operators answer", ev)
				}
			} else {
				if err := s.Quit(uid); err != nil {
					t.Fatal(err)
				}
				if got := c.next().String(); got != "quit: " {
					t.Errorf("got %q, want quit", got)
				}
			}
			if chats := s.Chats(); len(chats) != 1 || !chats[0].Ended {
				t.Errorf("Chats = %+v, want one ended", chats)
			}
			if err := s.Say(uid, "still there?"); err == nil {
				t.Error("Say on an ended chat succeeded")
			}
			c.message("hello?")
			if got := c.next().String(); got != "error: "+chatEnded {
				t.Errorf("Message after Quit answered %q", got)
			}
		})
	}
}

func TestInvalidFrameBlacklists(t *testing.T) {
	for name, frame := range map[string]string{
		"unknown command": `{"Command":"Noop","Parameters":null}`,
		"malformed JSON":  `{"Command":`,
		"not strings":     `{"Command":"Message","Parameters":[1,2,3]}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, Config{Operator: echo(), EnforceBlacklist: true})
			header := http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.1"}}
			c := dial(t, s, header)
			c.connect("")
			c.sendRaw(frame)
			if got := c.next().String(); got != "error: "+invalidCommand {
				t.Errorf("got %q, want the invalid command error", got)
			}
			if err := c.ended(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Errorf("socket ended with %v, want status 1008", err)
			}
			if diff := cmp.Diff([]string{"203.0.113.7"}, s.Blacklisted()); diff != "" {
				t.Errorf("Blacklisted (-want +got):\n%s", diff)
			}
			_, resp, err := tryDial(t, s, header)
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("blacklisted dial: err %v, response %v; want 403", err, resp)
			}
			dial(t, s, http.Header{"X-Forwarded-For": {"203.0.113.8"}}).connect("") // others still get in
			s.Unblacklist()
			dial(t, s, header).connect("")
		})
	}
}

func TestBlacklistNotEnforcedByDefault(t *testing.T) {
	s := newServer(t, Config{Operator: echo()})
	c := dial(t, s, nil)
	c.send("Bogus")
	c.ended()
	if got := s.Blacklisted(); len(got) != 1 {
		t.Errorf("Blacklisted = %q, want the loopback address", got)
	}
	dial(t, s, nil).connect("")
}

func TestConnectRefused(t *testing.T) {
	good := []string{DefaultAuthString, DefaultDomain, "", "", "", "", "secret"}
	tests := []struct {
		name  string
		param int
		value string
		want  string
	}{
		{"auth string", 0, "wrong", accessDenied},
		{"domain", 1, "www.other.com", accessDenied},
		{"api key", 6, "wrong", badAPIKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Config{APIKey: "secret"})
			header := http.Header{"X-Forwarded-For": {"198.51.100.9"}}
			for i := range badConnectLimit {
				c := dial(t, s, header)
				params := append([]string(nil), good...)
				params[tt.param] = tt.value
				c.send("connect", params...)
				if got := c.next(); got.String() != "error: "+tt.want || got.ChatUid != nil {
					t.Errorf("attempt %d: got %s (uid %s), want error %q", i, got, got.uid(), tt.want)
				}
				c.ended()
			}
			if diff := cmp.Diff([]string{"198.51.100.9"}, s.Blacklisted()); diff != "" {
				t.Errorf("after %d refusals, Blacklisted (-want +got):\n%s", badConnectLimit, diff)
			}
			c := dial(t, s, nil)
			c.send("Connect", good...)
			if ev := c.next(); ev.EventName != evConnected {
				t.Errorf("good Connect answered %s", ev)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	s := newServer(t, Config{Operator: Operator{Name: "Alice", JoinDelay: time.Hour}})
	c := dial(t, s, nil)
	answers := func(want string, name string, params ...string) {
		t.Helper()
		c.send(name, params...)
		if got := c.next().String(); got != want {
			t.Errorf("%s answered %q, want %q", name, got, want)
		}
	}
	answers("error: "+notConnected, "Message", "x", DefaultDomain, "too early")
	answers("error: "+tooFewParams, "Hello", "Thomas")
	c.connect("")
	answers("error: "+noChat, "Message", c.sid, DefaultDomain, "no chat yet")
	answers("error: "+badSession, "Hello", "Thomas", DefaultDomain, "", "", "not-the-session")
	answers("error: "+badSurvey, "Hello", "Thomas", DefaultDomain, "", "", c.sid, "", "", "en", "false", "<Fields><Field>")
	c.accepted()
	answers("error: "+badSession, "Message", "not-the-session", DefaultDomain, "hi")
	answers("error: "+lineTooLong, "Message", c.sid, DefaultDomain, strings.Repeat("é", maxLineChars+1))
	answers("error: "+badFileType, "File", c.sid, DefaultDomain, "virus.exe", "https://example.com/virus.exe")
	answers("newline linesays: Thomas says:", "Message", c.sid, DefaultDomain, strings.Repeat("é", maxLineChars))
	if got := s.AllVisitorLines(); len(got) != 1 {
		t.Errorf("%d visitor lines recorded, want only the 4000-character one", len(got))
	}
	if got := s.Blacklisted(); len(got) != 0 {
		t.Errorf("Blacklisted = %q, want none", got)
	}
}

func TestResumeAfterDropAll(t *testing.T) {
	for _, how := range []string{"cookie", "uid as cookie", "uid parameter"} {
		t.Run(how, func(t *testing.T) {
			s := newServer(t, Config{Operator: echo()})
			c := dial(t, s, nil)
			c.connect("cookie-7")
			uid := c.accepted()
			oldSID := c.sid
			c.next() // operatorjoined
			c.message("first")
			c.nextN(5)
			s.DropAll()
			if err := c.ended(); websocket.CloseStatus(err) != -1 {
				t.Errorf("dropped socket ended with %v, want no close frame", err)
			}
			if err := s.Say(uid, "said while you were away"); err != nil {
				t.Fatal(err)
			}

			c = dial(t, s, nil)
			var ev gotEvent
			switch how {
			case "cookie":
				ev = c.connect("cookie-7")
			case "uid as cookie":
				ev = c.connect(uid)
			default:
				ev = c.connect("other-cookie", uid)
			}
			if ev.uid() != uid {
				t.Fatalf("resumed connected ChatUid = %s, want %s", ev.uid(), uid)
			}
			want := []string{"newline linesays: Alice says:", "newline lineo: said while you were away"}
			if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
				t.Errorf("kept events (-want +got):\n%s", diff)
			}
			for i, sid := range []string{c.sid, oldSID} { // the first session stays valid
				c.sid = sid
				text := fmt.Sprint("line ", i)
				c.message(text)
				want := []string{
					"newline linesays: Thomas says:", "newline linev: " + text,
					"typing: ", "newline linesays: Alice says:", "newline lineo: echo: " + text, "typingstop: ",
				}
				if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
			if n := len(s.Chats()); n != 1 {
				t.Errorf("%d chats, want 1", n)
			}
		})
	}
}

func TestResumeTakesOverByUID(t *testing.T) {
	s := newServer(t, Config{Operator: echo()})
	old := dial(t, s, nil)
	old.connect("c")
	uid := old.accepted()
	c := dial(t, s, nil)
	if ev := c.connect("", uid); ev.uid() != uid {
		t.Fatalf("connected ChatUid = %s, want %s", ev.uid(), uid)
	}
	old.ended()
	if err := s.Say(uid, "here"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"newline linesays: Alice says:", "newline lineo: here"}, c.nextN(2)); diff != "" {
		t.Errorf("on the new socket (-want +got):\n%s", diff)
	}
}

func TestResumeRefused(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration
		lose  func(s *Server, uid string)
	}{
		{"forgotten", 0, func(s *Server, uid string) { s.DropAll(); s.Forget(uid) }},
		{"forgotten while attached", 0, func(s *Server, uid string) { s.Forget(uid) }},
		{"grace over", 50 * time.Millisecond, func(s *Server, uid string) {
			s.DropAll()
			time.Sleep(100 * time.Millisecond)
		}},
		{"quit", 0, func(s *Server, uid string) { s.Quit(uid); s.DropAll() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Config{Operator: echo(), ResumeGrace: tt.grace})
			c := dial(t, s, nil)
			c.connect("cookie-9")
			uid := c.accepted()
			tt.lose(s, uid)
			c.ended()
			if err := s.Say(uid, "hello?"); err == nil {
				t.Error("Say on a lost chat succeeded")
			}

			c = dial(t, s, nil)
			ev := c.connect("cookie-9")
			if ev.ChatUid == nil || ev.uid() == uid {
				t.Fatalf("connected ChatUid = %s, want a new one (old %s)", ev.uid(), uid)
			}
			if got := c.accepted(); got != ev.uid() {
				t.Errorf("accepted ChatUid %s, want the announced %s", got, ev.uid())
			}
			chats := s.Chats()
			if len(chats) != 2 || !chats[0].Ended || chats[1].Ended {
				t.Errorf("Chats = %+v, want the old one ended and a new live one", chats)
			}
		})
	}
}

// With RefuseReattach on, a Connect naming a chat gets a new one, however
// it names it; the old chat ends if detached (its kept events are not
// delivered) and stays with its socket if attached. Off again, chats
// resume.
func TestRefuseReattach(t *testing.T) {
	for _, how := range []string{"cookie", "uid as cookie", "uid parameter"} {
		t.Run(how, func(t *testing.T) {
			s := newServer(t, Config{Operator: echo()})
			c := dial(t, s, nil)
			c.connect("cookie-5")
			uid := c.accepted()
			c.next() // operatorjoined
			s.DropAll()
			c.ended()
			if err := s.Say(uid, "kept for a resume"); err != nil {
				t.Fatal(err)
			}
			s.RefuseReattach(true)

			c = dial(t, s, nil)
			var ev gotEvent
			switch how {
			case "cookie":
				ev = c.connect("cookie-5")
			case "uid as cookie":
				ev = c.connect(uid)
			default:
				ev = c.connect("other-cookie", uid)
			}
			if ev.ChatUid == nil || ev.uid() == uid {
				t.Fatalf("connected ChatUid = %s, want a new one (old %s)", ev.uid(), uid)
			}
			if got := c.accepted(); got != ev.uid() {
				t.Errorf("accepted ChatUid %s, want the announced %s", got, ev.uid())
			}
			if got := c.next().String(); got != "operatorjoined" {
				t.Errorf("after accepted: %s, want the new chat's operator, not the old chat's kept lines", got)
			}
			chats := s.Chats()
			if len(chats) != 2 || !chats[0].Ended || chats[1].Ended {
				t.Errorf("Chats = %+v, want the old one ended and a new live one", chats)
			}
			if err := s.Say(uid, "hello?"); err == nil {
				t.Error("Say on the refused chat succeeded")
			}
		})
	}
	t.Run("attached elsewhere", func(t *testing.T) {
		s := newServer(t, Config{Operator: echo()})
		s.RefuseReattach(true)
		old := dial(t, s, nil)
		old.connect("c")
		uid := old.accepted()
		old.next() // operatorjoined
		c := dial(t, s, nil)
		if ev := c.connect("", uid); ev.ChatUid == nil || ev.uid() == uid {
			t.Fatalf("connected ChatUid = %s, want a new one", ev.uid())
		}
		old.message("still mine")
		if got := old.nextN(2); got[1] != "newline linev: still mine" {
			t.Errorf("old socket after a refused take-over: %q", got)
		}
		if chats := s.Chats(); len(chats) != 1 || chats[0].Ended {
			t.Errorf("Chats = %+v, want the one chat, live", chats)
		}
	})
	t.Run("off again", func(t *testing.T) {
		s := newServer(t, Config{Operator: echo()})
		s.RefuseReattach(true)
		s.RefuseReattach(false)
		c := dial(t, s, nil)
		c.connect("cookie-6")
		uid := c.accepted()
		s.DropAll()
		c.ended()
		c = dial(t, s, nil)
		if ev := c.connect("", uid); ev.uid() != uid {
			t.Errorf("connected ChatUid = %s, want the resumed %s", ev.uid(), uid)
		}
	})
}

func TestWaitVisitorLines(t *testing.T) {
	s := newServer(t, Config{Operator: echo()})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.WaitVisitorLines(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "0 of 1 visitor lines") {
		t.Errorf("WaitVisitorLines = %v, want a deadline error naming 0 of 1", err)
	}

	c := dial(t, s, nil)
	c.connect("")
	c.accepted()
	type result struct {
		lines []string
		err   error
	}
	waited := make(chan result)
	ctx, cancel = context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	go func() {
		lines, err := s.WaitVisitorLines(ctx, 1)
		waited <- result{lines, err}
	}()
	c.message("a")
	if r := <-waited; r.err != nil || !cmp.Equal(r.lines, []string{"a"}) {
		t.Errorf("WaitVisitorLines = %q, %v", r.lines, r.err)
	}
	chats, err := s.WaitChats(ctx, 1)
	if err != nil || len(chats) != 1 {
		t.Errorf("WaitChats = %+v, %v", chats, err)
	}
}

func TestOtherCommands(t *testing.T) {
	s := newServer(t, Config{Operator: echo()})
	c := dial(t, s, nil)
	c.connect("")
	c.send("GetOperators", c.sid, DefaultDomain)
	c.send("GetImage", c.sid, DefaultDomain, "5")
	uid := ""
	want := []string{"operators", "image"}
	if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	uid = c.accepted()
	c.next() // operatorjoined
	c.send("DynamicField", c.sid, DefaultDomain, "OrderNumber", "12345")
	c.send("PostChatSurvey", uid, c.sid, DefaultDomain, "", "<Fields><Field><Name>Rating</Name><Value>5</Value></Field></Fields>")
	if got := c.next(); got.EventName != evAcknowledged {
		t.Errorf("PostChatSurvey answered %s", got)
	}
	if err := s.SendEvent(uid, "requestfile", "pdf, doc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Line(uid, "lineo final", "Nobody is here."); err != nil {
		t.Fatal(err)
	}
	want = []string{"requestfile: pdf, doc", "newline lineo final: Nobody is here."}
	if diff := cmp.Diff(want, c.nextN(len(want))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := s.Chats()[0].Fields["OrderNumber"]; got != "12345" {
		t.Errorf("DynamicField recorded %q", got)
	}
}

func TestPing(t *testing.T) {
	s := newServer(t, Config{})
	c := dial(t, s, nil)
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	op := echo()
	op.QueueFor = time.Hour
	s, err := New(Config{Operator: op})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, nil)
	c.connect("")
	c.accepted()
	d := dial(t, s, nil)
	d.connect("")
	s.Close()
	s.Close()
	c.ended()
	d.ended()
	goleak.VerifyNone(t)
}

// TestFlood: SetFlood answers Connect with the set number of events before
// connected, or with no end; the zero Flood turns it off.
func TestFlood(t *testing.T) {
	s := newServer(t, Config{Operator: echo()})
	s.SetFlood(Flood{Events: 3, Size: 5})
	c := dial(t, s, nil)
	c.send("Connect", DefaultAuthString, DefaultDomain, "", "cookie", "ua", "", "key")
	if got := strings.Join(c.nextN(3), "|"); got != "typing: xxxxx|typing: xxxxx|typing: xxxxx" {
		t.Errorf("flood = %s", got)
	}
	if ev := c.next(); ev.EventName != evConnected {
		t.Errorf("after the flood: %s, want connected", ev)
	}

	s.SetFlood(Flood{Events: -1})
	c2 := dial(t, s, nil)
	c2.send("Connect", DefaultAuthString, DefaultDomain, "", "cookie2", "ua", "", "key")
	for range 1000 {
		if ev := c2.next(); ev.EventName != evTyping {
			t.Fatalf("endless flood sent %s", ev)
		}
	}
	c2.ws.CloseNow()
	if n := s.Flooded(); n < 1002 { // the last one read may not be counted yet
		t.Errorf("Flooded = %d", n)
	}

	s.SetFlood(Flood{})
	c3 := dial(t, s, nil)
	c3.connect("cookie3")
}
