package centiontest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestOriginRefused(t *testing.T) {
	s := NewServer(t, Config{})
	for _, origin := range []string{"", "https://evil.example.com", "http://www.example.com"} {
		_, resp, err := tryDial(t, s.WebSocketURL("tok"), origin)
		if err == nil {
			t.Fatalf("Origin %q: dial succeeded", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %q: response %v, want 403", origin, resp)
		}
	}
	req, _ := http.NewRequest("GET", s.URL()+"/socket/external.api/canchat?area=2", nil)
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("canchat with a foreign Origin: %d, want 403", resp.StatusCode)
	}
	want := []Refusal{{"/s/demo/external.ws", ""}, {"/s/demo/external.ws", "https://evil.example.com"},
		{"/s/demo/external.ws", "http://www.example.com"},
		{"/s/demo/socket/external.api/canchat", "https://evil.example.com"}}
	if diff := cmp.Diff(want, s.Refusals()); diff != "" {
		t.Errorf("Refusals (-want +got):\n%s", diff)
	}
	// The right Origin, in another case, is let in.
	if _, _, err := tryDial(t, s.WebSocketURL("tok"), "HTTPS://WWW.EXAMPLE.COM"); err != nil {
		t.Errorf("the configured Origin was refused: %v", err)
	}
	if len(s.Chats()) != 0 {
		t.Errorf("refused sockets made chats: %+v", s.Chats())
	}
}

func TestRegisterThenLinesRecorded(t *testing.T) {
	s := NewServer(t, Config{})
	token := "sessionId=abc; Path=/; HttpOnly" // the SDK's tokens need url-encoding
	c := dial(t, s, token)
	sess := c.register("John", "Where is your office?", 2)
	if sess.AreaID != 2 || sess.ClientName != "John" {
		t.Errorf("session %+v", sess)
	}
	q := c.expect(evNewMessage).batch(t)
	if len(q) != 1 || q[0].Text != "Where is your office?" || !q[0].FromClient || q[0].Sender != SenderClient || q[0].Umid != "" {
		t.Fatalf("question batch %+v", q)
	}

	c.line("c-1", "hello", 1)
	echo := c.expect(evNewMessage).batch(t)
	if len(echo) != 1 || echo[0].Umid != "c-1" || !echo[0].FromClient || echo[0].Text != "hello" || echo[0].ID <= q[0].ID {
		t.Fatalf("confirmation %+v", echo)
	}
	c.line("c-2", "second", 2)
	c.expect(evNewMessage)
	c.send("preview", map[string]any{"message": "typ"})

	lines, err := s.WaitLines(ctxT(t), token, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{{Umid: "c-1", Mcount: 1, Text: "hello", FrameID: "2", MessageID: echo[0].ID, Confirmed: true},
		{Umid: "c-2", Mcount: 2, Text: "second", FrameID: "3", MessageID: echo[0].ID + 1, Confirmed: true}}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if err := s.Wait(ctxT(t), func(cs []Chat) bool { return len(cs[0].Frames) == 4 }); err != nil {
		t.Fatal(err)
	}
	ch, _ := s.Chat(token)
	wantReg := Register{Area: 2, Name: "John", Email: "John@example.com", Message: "Where is your office?",
		ExternalData: `""`, BaseURL: "https://x/s/demo", TrackClientURL: true}
	if diff := cmp.Diff(wantReg, ch.Register); diff != "" {
		t.Errorf("register (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"register", "chat message", "chat message", "preview"}, ch.Frames); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	if ch.SessionID != sess.SessionID || ch.SessionSecret != sess.SessionSecret || ch.Sockets != 1 {
		t.Errorf("chat %+v, session %+v", ch, sess)
	}
}

func TestRegisterRefusals(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	c.send(frameRegister, map[string]any{"area": 7, "name": "John", "message": "hi"})
	var e errorArg
	c.expect(evRegister).arg(t, &e)
	if e.Error != errInvalidArea {
		t.Errorf("wrong area answered %+v", e)
	}
	c.line("c-1", "before any chat", 1)
	c.expect(evChatClosed)

	s.SetCanChat(false)
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	c.expect(evAgentUnavailable)
	ch, _ := s.Chat("t1")
	if !ch.Ended || ch.EndedBy != EndAgentUnavailable {
		t.Errorf("chat after register while closed: %+v", ch)
	}
}

func TestReregisterKeepsChat(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	first := c.register("John", "hi", 2)
	c.expect(evNewMessage)
	again := c.register("John", "hi", 2)
	if again != first {
		t.Errorf("second register answered %+v, want %+v", again, first)
	}
	if got := texts(c.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"hi"}) {
		t.Errorf("history after re-register: %q", got)
	}
	if cs := s.Chats(); len(cs) != 1 || cs[0].Reregisters != 1 {
		t.Errorf("chats %+v", cs)
	}
}

func TestRepeatedUmid(t *testing.T) {
	for _, doc := range []bool{false, true} {
		t.Run(map[bool]string{false: "sdk", true: "document"}[doc], func(t *testing.T) {
			s := NewServer(t, Config{DocumentEvents: doc})
			c := dial(t, s, "t1")
			c.register("John", "hi", 2)
			c.expect(map[bool]string{false: evNewMessage, true: evChatMessage}[doc])
			c.line("c-1", "hello", 1)
			first := c.next()
			c.line("c-1", "hello", 1) // resent: the client never saw the confirmation
			second := c.next()
			if !doc {
				a, b := first.batch(t), second.batch(t)
				if len(b) != 1 || b[0].ID != a[0].ID || b[0].Umid != "c-1" {
					t.Errorf("repeat confirmed with %+v, first %+v", b, a)
				}
			} else {
				var a, b messageSent
				first.arg(t, &a)
				second.arg(t, &b)
				if first.Event != evMessageSent || a.Umid != "c-1" || a.ID == "" || strings.HasPrefix(a.ID, "already") {
					t.Errorf("first confirmation %s %+v", first.Event, a)
				}
				if second.Event != evMessageSent || b.ID != "already-seen-c-1" || b.Umid != "c-1" {
					t.Errorf("repeat confirmation %s %+v", second.Event, b)
				}
			}
			ch, _ := s.Chat("t1")
			if len(ch.Lines) != 1 || len(ch.Repeats) != 1 || ch.Repeats[0].MessageID != ch.Lines[0].MessageID {
				t.Errorf("lines %+v repeats %+v", ch.Lines, ch.Repeats)
			}
		})
	}
}

func TestAgentScript(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)

	if err := s.Join("t1", "Alice"); err != nil {
		t.Fatal(err)
	}
	var b sdkBatch
	c.expect(evNewMessage).arg(t, &b)
	if b.Session.Agent != "Alice" || len(b.Messages) != 1 || b.Messages[0].Sender != SenderSystem ||
		b.Messages[0].Text != "Agent(s) added: Alice" {
		t.Errorf("join batch %+v", b)
	}
	html := `<p>Our office is <b>here</b> &amp; there</p>`
	must(t, s.Say("t1", html))
	m := c.expect(evNewMessage).batch(t)
	if len(m) != 1 || m[0].Text != html || m[0].Agent != "Alice" || m[0].Sender != SenderAgent || m[0].FromClient {
		t.Errorf("say batch %+v", m)
	}
	must(t, s.SayBatch("t1", "one", "two", "three"))
	if got := texts(c.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("batch texts %q", got)
	}
	must(t, s.Typing("t1", 12))
	var p agentPreview
	c.expect(evAgentPreview).arg(t, &p)
	must(t, s.Queue("t1", 3))
	var pos int
	c.expect(evQueue).arg(t, &pos)
	if p.MessageLen != 12 || pos != 3 {
		t.Errorf("preview %+v queue %d", p, pos)
	}
	must(t, s.File("t1", "map.png", "https://files.example.com/map.png"))
	f := c.expect(evNewMessage).batch(t)
	n, ok := ParseFileNotice(f[0].Text)
	if !ok || n.FileName != "map.png" || n.FileDownload != "https://files.example.com/map.png" || n.Event != "FILE_UPLOAD" {
		t.Errorf("file notice %q -> %+v", f[0].Text, n)
	}
	c.line("c-1", "thanks", 1)
	echo := c.expect(evNewMessage).batch(t)
	must(t, s.AgentSeen("t1"))
	var acked messageAcked
	c.expect(evMessageAcked).arg(t, &acked)
	if len(acked.IDs) != 2 || acked.IDs[1] != echo[0].ID {
		t.Errorf("acked %+v (line id %d)", acked, echo[0].ID)
	}
	if err := s.Say("nobody", "x"); !errors.Is(err, ErrNoChat) {
		t.Errorf("Say to an unknown token: %v", err)
	}
}

func TestBatchesRedeliverSeenMessages(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	must(t, s.SayBatch("t1", "a", "b"))
	seen := c.expect(evNewMessage).batch(t)

	must(t, s.Redeliver("t1"))
	again := c.expect(evNewMessage).batch(t)
	if got := texts(again); !cmp.Equal(got, []string{"hi", "a", "b"}) {
		t.Errorf("Redeliver sent %q", got)
	}
	if again[1].ID != seen[0].ID || again[2].ID != seen[1].ID {
		t.Errorf("redelivered ids %d,%d, first %d,%d", again[1].ID, again[2].ID, seen[0].ID, seen[1].ID)
	}

	s.SetRedeliver(2)
	must(t, s.Say("t1", "c"))
	if got := texts(c.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("mixed batch %q", got)
	}
}

func TestLateAck(t *testing.T) {
	const late = 300 * time.Millisecond
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	s.LateAck(late)

	start := time.Now()
	c.line("c-1", "slow", 1)
	echo := c.expect(evNewMessage).batch(t)
	if waited := time.Since(start); waited < late {
		t.Errorf("confirmation after %v, want >= %v", waited, late)
	}
	if len(echo) != 1 || echo[0].Umid != "c-1" {
		t.Errorf("confirmation %+v", echo)
	}
}

func TestHeldAcks(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	s.HoldAcks()

	c.line("c-1", "unconfirmed", 1)
	lines, err := s.WaitLines(ctxT(t), "t1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if lines[0].Confirmed {
		t.Fatalf("lines while held %+v", lines)
	}
	must(t, s.Say("t1", "agent first")) // after the line, yet before its confirmation
	if got := texts(c.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"agent first"}) {
		t.Errorf("while held: %q", got)
	}

	// The socket drops before the confirmation: the resume's history does
	// not carry the line, the client resends it, the server takes it as a
	// repeat and confirms nothing more than the one confirmation.
	must(t, s.Drop("t1"))
	c.ended()
	c2 := dial(t, s, "t1")
	c2.resume()
	if got := texts(c2.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"hi", "agent first"}) {
		t.Errorf("history while held: %q", got)
	}
	c2.line("c-1", "unconfirmed", 1)
	c2.line("c-2", "next", 2)
	if _, err := s.WaitLines(ctxT(t), "t1", 2); err != nil {
		t.Fatal(err)
	}
	s.ReleaseAcks()
	var umids []string
	for range 2 {
		for _, m := range c2.expect(evNewMessage).batch(t) {
			umids = append(umids, m.Umid)
		}
	}
	if !cmp.Equal(umids, []string{"c-1", "c-2"}) {
		t.Errorf("confirmations after release: %q", umids)
	}
	ch, _ := s.Chat("t1")
	if len(ch.Lines) != 2 || len(ch.Repeats) != 1 || !ch.Lines[0].Confirmed || !ch.Lines[1].Confirmed {
		t.Errorf("lines %+v repeats %+v", ch.Lines, ch.Repeats)
	}

	// A confirmation released while no socket is there comes with the
	// next resume's history.
	s.HoldAcks()
	c2.line("c-3", "third", 3)
	if _, err := s.WaitLines(ctxT(t), "t1", 3); err != nil {
		t.Fatal(err)
	}
	must(t, s.Drop("t1"))
	c2.ended()
	s.ReleaseAcks()
	c3 := dial(t, s, "t1")
	c3.resume()
	hist := c3.expect(evNewMessage).batch(t)
	if last := hist[len(hist)-1]; last.Umid != "c-3" || !last.FromClient {
		t.Errorf("history ends with %+v", last)
	}
}

func TestRefusedResume(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	first := c.register("John", "hi", 2)
	c.expect(evNewMessage)

	s.RefuseResume("t1")
	must(t, s.Drop("t1"))
	c.ended()
	c2 := dial(t, s, "t1")
	if a := c2.resume(); a["error"] != errNoSession {
		t.Fatalf("resume answered %v", a)
	}
	c2.line("c-1", "anyone?", 1)
	c2.expect(evChatClosed)
	again := c2.register("John", "hi again", 2)
	if again.SessionID == first.SessionID || again.SessionSecret == first.SessionSecret {
		t.Errorf("new chat reuses the session: %+v", again)
	}
	cs := s.Chats()
	if len(cs) != 2 || !cs[0].Lost || cs[0].RefusedResumes != 1 || len(cs[0].AfterEnd) != 1 || cs[1].Lost {
		t.Errorf("chats %+v", cs)
	}
	if err := s.Say("t1", "to the new chat"); err != nil {
		t.Error(err)
	}
}

func TestDroppedSocketResumes(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	sess := c.register("John", "hi", 2)
	c.expect(evNewMessage)
	c.line("c-1", "one", 1)
	c.expect(evNewMessage)

	must(t, s.Drop("t1"))
	var ce websocket.CloseError
	if err := c.ended(); errors.As(err, &ce) {
		t.Errorf("Drop sent a close frame: %v", err)
	}
	must(t, s.Say("t1", "while you were away")) // kept for the resume

	c2 := dial(t, s, "t1")
	a := c2.resume()
	if a["sessionSecret"] != sess.SessionSecret {
		t.Errorf("resume answered %v", a)
	}
	if got := texts(c2.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"hi", "one", "while you were away"}) {
		t.Errorf("history %q", got)
	}
	c2.line("c-2", "two", 2)
	c2.expect(evNewMessage)

	// A second socket with the token takes the chat over; the first is dropped.
	c3 := dial(t, s, "t1")
	c2.ended()
	must(t, s.Say("t1", "to the newest socket"))
	if got := texts(c3.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"to the newest socket"}) {
		t.Errorf("after takeover %q", got)
	}

	s.DropAll()
	c3.ended()
	ch, _ := s.Chat("t1")
	if ch.Sockets != 3 || ch.Resumes != 1 || len(ch.Lines) != 2 || ch.Ended {
		t.Errorf("chat %+v", ch)
	}
}

func TestEnds(t *testing.T) {
	cases := []struct {
		name    string
		end     func(s *Server) error
		event   string // top-level event, or "" for an in-text one
		inText  string
		endedBy string
	}{
		{"owner in text", func(s *Server) error { return s.EndInText("t1", OwnerEndsChat) }, "", `{"event":"OWNER_ENDS_CHAT"}`, OwnerEndsChat},
		{"expired in text", func(s *Server) error { return s.EndInText("t1", ChatExpired) }, "", `{"event":"CHAT_EXPIRED"}`, ChatExpired},
		{"finish chat session", func(s *Server) error { return s.EndByEvent("t1") }, evFinishSession, "", evFinishSession},
		{"OWNER_ENDS_CHAT event", func(s *Server) error { return s.EndWithEvent("t1", OwnerEndsChat) }, OwnerEndsChat, "", OwnerEndsChat},
		{"agent unavailable", func(s *Server) error { return s.AgentUnavailable("t1") }, evAgentUnavailable, "", EndAgentUnavailable},
		{"queue full", func(s *Server) error { return s.QueueFull("t1") }, evQueueFull, "", EndQueueFull},
		{"client", func(*Server) error { return nil }, "", `{"event":"CLIENT_ENDS_CHAT"}`, EndClient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(t, Config{})
			c := dial(t, s, "t1")
			c.register("John", "hi", 2)
			c.expect(evNewMessage)
			if tc.endedBy == EndClient {
				c.send(frameClose, nil)
			}
			must(t, tc.end(s))
			if tc.event != "" {
				c.expect(tc.event)
			} else {
				m := c.expect(evNewMessage).batch(t)
				if len(m) != 1 || m[0].Text != tc.inText || m[0].Sender != SenderSystem {
					t.Errorf("end batch %+v", m)
				}
			}
			c.line("c-1", "after the end", 1)
			c.expect(evChatClosed)
			if a := c.resume(); a["error"] != errNoSession {
				t.Errorf("resume after the end answered %v", a)
			}
			if err := s.Say("t1", "x"); !errors.Is(err, ErrEnded) {
				t.Errorf("Say after the end: %v", err)
			}
			ch, _ := s.Chat("t1")
			if !ch.Ended || ch.EndedBy != tc.endedBy || len(ch.AfterEnd) != 1 {
				t.Errorf("chat %+v", ch)
			}
		})
	}
}

func TestEndWhileAwayReachesResume(t *testing.T) {
	s := NewServer(t, Config{})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	must(t, s.Drop("t1"))
	c.ended()
	must(t, s.Say("t1", "bye"))
	must(t, s.EndByEvent("t1"))

	c2 := dial(t, s, "t1")
	if a := c2.resume(); a["error"] != nil {
		t.Fatalf("resume of a chat whose end nobody saw: %v", a)
	}
	if got := texts(c2.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"hi", "bye"}) {
		t.Errorf("history %q", got)
	}
	c2.expect(evFinishSession)
	if a := c2.resume(); a["error"] != errNoSession {
		t.Errorf("second resume answered %v", a)
	}
}

func TestMalformedFrames(t *testing.T) {
	s := NewServer(t, Config{})
	for i, f := range []struct {
		typ websocket.MessageType
		p   string
	}{
		{websocket.MessageBinary, `{"type":"register"}`},
		{websocket.MessageText, `not json`},
		{websocket.MessageText, `{"data":{}}`},
		{websocket.MessageText, `{"type":"chat message","data":"a string"}`},
	} {
		c := dial(t, s, "t1")
		c.raw(f.typ, []byte(f.p))
		if got := websocket.CloseStatus(c.ended()); got != websocket.StatusInvalidFramePayloadData {
			t.Errorf("frame %d: close status %v, want 1007", i, got)
		}
	}
	if got := s.Malformed(); got != 4 {
		t.Errorf("Malformed() = %d, want 4", got)
	}
}

func TestDocumentEvents(t *testing.T) {
	s := NewServer(t, Config{DocumentEvents: true})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evChatMessage)
	must(t, s.Join("t1", "Bob"))
	var b docBatch
	c.expect(evChatMessage).arg(t, &b)
	if b.Agent != "Bob" || b.Client != "John" || len(b.Chat) != 1 {
		t.Errorf("join %+v", b)
	}
	c.line("c-1", "hello", 4)
	var sent messageSent
	c.expect(evMessageSent).arg(t, &sent)
	ch, _ := s.Chat("t1")
	if sent.Umid != "c-1" || sent.ID != strconv.FormatInt(ch.Lines[0].MessageID, 10) || sent.SentHuman == "" {
		t.Errorf("message sent %+v, line %+v", sent, ch.Lines[0])
	}
}

func TestAutoAgent(t *testing.T) {
	s := NewServer(t, Config{Agent: &Agent{Greeting: "Hi, I'm Alice.",
		Reply: func(text string) string { return "echo: " + text }}})
	c := dial(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	var b sdkBatch
	c.expect(evNewMessage).arg(t, &b)
	if b.Session.Agent != "Alice" {
		t.Errorf("join %+v", b)
	}
	if got := texts(c.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"Hi, I'm Alice."}) {
		t.Errorf("greeting %q", got)
	}
	c.line("c-1", "ping", 1)
	c.expect(evNewMessage) // the confirmation
	if got := texts(c.expect(evNewMessage).batch(t)); !cmp.Equal(got, []string{"echo: ping"}) {
		t.Errorf("reply %q", got)
	}
}

func TestPingsAndIdle(t *testing.T) {
	s := NewServer(t, Config{IdleTimeout: 500 * time.Millisecond, PingInterval: 50 * time.Millisecond})
	c := dial(t, s, "t1")
	// The client's pings are counted and keep the socket: Ping returns only
	// once the server answered, and the socket outlives several idle timeouts.
	for i := range 10 {
		ctx := ctxT(t)
		if err := c.ws.Ping(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond) // pacing the client's own pings, not waiting for an absence
	}
	if got := s.Pings("t1"); got != 10 {
		t.Errorf("Pings = %d, want 10", got)
	}
	// A client that sends nothing is dropped, though it answers the
	// server's pings (its reader runs).
	// Measured from before the dial, so that a slow dial cannot shorten it:
	// the idle timer starts when the server accepts.
	start := time.Now()
	idle := dial(t, s, "t2")
	idle.ended()
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("idle socket dropped after %v", d)
	}
	if c.pings.Load() == 0 || idle.pings.Load() == 0 {
		t.Errorf("server pings received: %d and %d, want some", c.pings.Load(), idle.pings.Load())
	}
}

func TestUnansweredPingDrops(t *testing.T) {
	const interval = 500 * time.Millisecond
	s := NewServer(t, Config{PingInterval: interval})
	start := time.Now()
	c := dialNoPong(t, s, "t1")
	c.register("John", "hi", 2)
	c.expect(evNewMessage)
	c.ended()
	// The first ping comes one interval after the upgrade (not two), and
	// the socket is dropped one interval later when no pong comes.
	first := time.Duration(c.firstPing.Load() - start.UnixNano())
	if c.pings.Load() == 0 || first < interval || first > interval*9/5 {
		t.Errorf("%d pings, the first after %v; want the first after about %v", c.pings.Load(), first, interval)
	}
	if ch, _ := s.Chat("t1"); ch.Ended {
		t.Error("the drop ended the chat")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
