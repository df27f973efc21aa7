package cobrowsertest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestChat runs the document's whole flow against the real ejabberd, once
// per visitor transport: REST, login, the presence and subscription
// sequence, a line each way, the agent's chat states and special messages,
// presence flaps, and the close from both sides.
func TestChat(t *testing.T) {
	e := StartEjabberd(t)
	s := NewServer(t, Config{Ejabberd: e})
	agent := s.Agent(t)
	for _, over := range []string{overWS, overWSS, overTCP} {
		t.Run(over, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			id, creds := openChat(t, s, "customer@"+over)
			if creds.Agent.JID != s.AgentJID() || !strings.HasSuffix(creds.Agent.JID, "@"+e.AgentDomain) {
				t.Fatalf("agent jid %q", creds.Agent.JID)
			}
			v := connectVisitor(t, e, creds, over)
			who := bare(v.conn.JID)
			if who != creds.Credentials.User {
				t.Fatalf("bound %q, credentials.user %q", v.conn.JID, creds.Credentials.User)
			}
			if over == overTCP && slices.Contains(v.conn.Mechanisms, "SCRAM-SHA-1-PLUS") {
				t.Logf("ejabberd offers over TCP+TLS: %v", v.conn.Mechanisms)
			}

			// The agent approved the subscription and asked for the visitor's;
			// the visitor answered with subscribed and an active state.
			if _, err := v.WaitStanza(ctx, func(s Stanza) bool { return s.Kind == "presence" && s.Type == "subscribe" }); err != nil {
				t.Fatal(err)
			}
			if _, err := agent.WaitState(ctx, who, "active"); err != nil {
				t.Fatal(err)
			}
			avail, err := agent.WaitStanza(ctx, func(s Stanza) bool {
				return s.Kind == "presence" && s.Bare() == who && s.Type == "" && s.Show == "chat"
			})
			if err != nil {
				t.Fatal(err)
			}
			if avail.Status != "available" {
				t.Errorf("visitor presence status %q", avail.Status)
			}
			if st := sessionStatus(t, s, id); st != "active" {
				t.Errorf("chat session status %q, want active", st)
			}

			had := len(agent.Messages())
			v.say(t, "hello <agent> & co")
			lines, err := agent.WaitMessage(ctx, had+1)
			if err != nil {
				t.Fatal(err)
			}
			got := lines[len(lines)-1]
			if got.Body != "hello <agent> & co" || got.Bare() != who || !strings.HasPrefix(got.ID, "v-") {
				t.Fatalf("agent got %+v", got)
			}

			if err := agent.Say(who, "hi, I am James"); err != nil {
				t.Fatal(err)
			}
			line, err := v.WaitStanza(ctx, func(s Stanza) bool { return s.Body == "hi, I am James" })
			if err != nil {
				t.Fatal(err)
			}
			if line.Type != "chat" || line.State != "active" || !strings.Contains(line.Raw, `<nick xmlns="http://jabber.org/protocol/nick">agent1</nick>`) ||
				line.Bare() != s.AgentJID() || line.ID == "" {
				t.Errorf("visitor got %+v", line)
			}

			checkAgentSpecials(t, agent, v, who)

			v.state(t, "closed")
			if _, err := agent.WaitState(ctx, who, "closed"); err != nil {
				t.Fatal(err)
			}
			if st := sessionStatus(t, s, id); st != "closed" {
				t.Errorf("chat session status %q, want closed", st)
			}
		})
	}
}

// checkAgentSpecials: composing, paused, forward, blocked, closed and a
// presence flap reach the visitor as the document shows them.
func checkAgentSpecials(t *testing.T, agent *Agent, v *visitor, who string) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	for _, step := range []struct {
		do   func() error
		want func(Stanza) bool
		raw  string
	}{
		{func() error { return agent.Composing(who, true) }, func(s Stanza) bool { return s.State == "composing" }, `<composing xmlns="http://jabber.org/protocol/chatstates"/>`},
		{func() error { return agent.Composing(who, false) }, func(s Stanza) bool { return s.State == "paused" }, `<paused xmlns="http://jabber.org/protocol/chatstates"/>`},
		{func() error { return agent.Forward(who, "visitor_forward_message") }, func(s Stanza) bool { return strings.Contains(s.Raw, "chat_forwarding") },
			`<internal xmlns="http://cobrowser.io/protocol/chatsession#forward"><chat_forwarding>visitor_forward_message</chat_forwarding><agent><nickname>agent3</nickname><firstname>Pedro</firstname></agent></internal>`},
		{func() error { return agent.Block(who) }, func(s Stanza) bool { return s.State == "blocked" }, `<blocked xmlns="http://jabber.org/protocol/chatstates"/>`},
		{func() error { return agent.Close(who) }, func(s Stanza) bool { return s.State == "closed" }, `<closed xmlns="http://jabber.org/protocol/chatstates"/>`},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		got, err := v.WaitStanza(ctx, step.want)
		if err != nil {
			t.Fatalf("waiting for %s: %v", step.raw, err)
		}
		if !strings.Contains(got.Raw, step.raw) {
			t.Errorf("visitor got %s, want it to contain %s", got.Raw, step.raw)
		}
	}
	before := countAgentPresence(v.Stanzas(), "unavailable")
	if err := agent.Flap(2); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitStanza(ctx, func(Stanza) bool { return countAgentPresence(v.Stanzas(), "unavailable") >= before+2 }); err != nil {
		t.Fatalf("two unavailable presences after Flap(2): %v\n%v", err, v.Stanzas())
	}
}

func countAgentPresence(all []Stanza, typ string) int {
	n := 0
	for _, s := range all {
		if s.Kind == "presence" && strings.HasPrefix(s.From, "agent1@") && s.Type == typ {
			n++
		}
	}
	return n
}

func sessionStatus(t *testing.T, s *Server, id string) string {
	t.Helper()
	var cs map[string]any
	if st := call(t, s, s.Token(), "GET", "chatsessions/"+id, nil, &cs); st != 200 {
		t.Fatalf("GET chatsessions: %d", st)
	}
	return cs["status"].(string)
}

// TestLongLinesOverWebSocket: 5,000 characters each way over the
// WebSocket, each stanza one WebSocket message (ejabberd neither rejects
// nor splits it: the visitor parses every message as one whole element).
func TestLongLinesOverWebSocket(t *testing.T) {
	e := StartEjabberd(t)
	s := NewServer(t, Config{Ejabberd: e})
	agent := s.Agent(t)
	ctx := testCtx(t, 20*time.Second)
	_, creds := openChat(t, s, "long")
	v := connectVisitor(t, e, creds, overWS)
	who := bare(v.conn.JID)
	long := string([]rune(strings.Repeat("0123456789é<&>", 400))[:5000])
	v.say(t, long)
	lines, err := agent.WaitMessage(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if lines[0].Body != long {
		t.Fatalf("agent got %d bytes, want the %d sent", len(lines[0].Body), len(long))
	}
	if err := agent.Say(who, long); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitStanza(ctx, func(s Stanza) bool { return s.Body == long }); err != nil {
		t.Fatal(err)
	}
	if err := v.Ended(); err != nil {
		t.Fatalf("visitor stream ended: %v", err)
	}
}

// TestSplitStanzaEndsWebSocketSession documents why each stanza must be
// one WebSocket message: ejabberd ends a session that splits one across
// two ("internal server error" in its log, then <close/>).
func TestSplitStanzaEndsWebSocketSession(t *testing.T) {
	e := StartEjabberd(t)
	e.Register(t, "split", "pw")
	ctx := testCtx(t, 10*time.Second)
	c, err := dial(ctx, login{WSURL: e.WSURL, Domain: e.Domain, User: "split", Password: "pw", Resource: "r"})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, c)
	if err := c.Send(`<message to="split@` + e.Domain + `" type="chat"><body>first half`); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(` second half</body></message>`); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitEnded(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("the session survived a split stanza: %v", err)
	}
	if len(r.Messages()) != 0 {
		t.Errorf("the split line was delivered: %v", r.Messages())
	}
}
