package cobrowser

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cobrowser/cobrowsertest"
)

// TestChat runs a whole chat against ejabberd over each transport: the
// REST start, the presence sequence, a 5,000-character line each way (one
// stanza, one WebSocket message), typing, the agent's closed answered with
// ours.
func TestChat(t *testing.T) {
	for _, transport := range []string{"ws", "wss", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			h := newHarness(t, transport, nil)
			c := conversation()
			h.open(c)
			joined := h.sink.waitType(t, c.ID, connector.EventJoined)
			if joined.Agent != "jim" || len(joined.Session) == 0 {
				t.Errorf("joined %+v", joined)
			}
			sessions := h.srv.Sessions()
			if len(sessions) != 1 || sessions[0].VisitorIdentifier != "Ann Customer" || sessions[0].TrackerID == "" {
				t.Fatalf("chat sessions at the API: %+v", sessions)
			}
			vis := visitor(t, c)
			// The resource the credentials name is the one bound.
			st, _ := parseSession(c.Session)
			if users := h.ej.ConnectedUsers(t); !slices.Contains(users, st.User+"/"+st.Resource) {
				t.Errorf("%s/%s not among the sessions %v", st.User, st.Resource, users)
			}
			// The document's presence sequence reached the agent.
			if _, err := h.agent.WaitStanza(ctx(t), func(s cobrowsertest.Stanza) bool {
				return s.Kind == "presence" && s.Type == "" && s.Show == "chat" && s.Bare() == vis
			}); err != nil {
				t.Fatal(err)
			}
			// Our subscribed and active answer to the agent's subscribe.
			if _, err := h.agent.WaitState(ctx(t), vis, "active"); err != nil {
				t.Fatal(err)
			}

			long := strings.Repeat("é", 4999) + "!"
			if err := h.send(c, 1, long); err != nil {
				t.Fatal(err)
			}
			if err := h.send(c, 2, "second"); err != nil {
				t.Fatal(err)
			}
			ms := h.lines(2)
			if ms[0].Body != long || ms[1].Body != "second" || ms[0].ID != "connectord-1" || ms[1].ID != "connectord-2" {
				t.Errorf("agent got %d-byte %q (id %s), then %q (id %s)", len(ms[0].Body), ms[0].Body[:10], ms[0].ID, ms[1].Body, ms[1].ID)
			}

			if err := h.agent.Composing(vis, true); err != nil {
				t.Fatal(err)
			}
			h.sink.wait(t, c.ID, "typing on", func(e connector.Event) bool { return e.Type == connector.EventTyping && e.Typing })
			agentLong := strings.Repeat("ü", 5000)
			if err := h.agent.Say(vis, agentLong); err != nil {
				t.Fatal(err)
			}
			text := h.sink.waitType(t, c.ID, connector.EventText)
			if text.Text != agentLong || text.Agent != "jim" || text.Format != connector.FormatPlain || text.SourceID == "" {
				t.Errorf("agent line: %d bytes, agent %q, format %q, source %q", len(text.Text), text.Agent, text.Format, text.SourceID)
			}

			if err := h.agent.Close(vis); err != nil {
				t.Fatal(err)
			}
			ended := h.sink.waitType(t, c.ID, connector.EventEnded)
			if ended.Reason != "agent" {
				t.Errorf("ended: %+v", ended)
			}
			if _, err := h.agent.WaitState(ctx(t), vis, "closed"); err != nil {
				t.Errorf("our closed: %v", err)
			}
			waitFor(t, "the chat's stream to end", func() bool { return h.v.session(c.ID) == nil })
			if err := h.v.End(ctx(t), c, "customer"); err != nil {
				t.Errorf("End after the agent closed: %v", err)
			}
		})
	}
}

// No availability, an inactive campaign and CoBrowser's 409 are the core's
// no-agent path: EventNoAgent committed before Open returns, nil error, a
// session saying there is no chat; the next Open asks again.
func TestNoAgent(t *testing.T) {
	h := newHarness(t, "ws", nil)
	for _, tc := range []struct {
		name  string
		setup func()
		posts int // POST chatsessions expected
	}{
		{"no availability", func() { h.srv.SetAvailable(0) }, 0},
		{"inactive campaign", func() { h.srv.SetAvailable("∞"); h.srv.SetCampaignActive(false) }, 0},
		{"409 on POST chatsessions", func() { h.srv.SetCampaignActive(true); h.srv.Fail(1, 409, "chatsessions") }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			before := countPosts(h.srv.Requests(), "chatsessions")
			c := conversation()
			sess, err := h.v.Open(ctx(t), c)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			st, err := parseSession(sess)
			if err != nil || !st.NoAgent {
				t.Fatalf("session %s: %v", sess, err)
			}
			e := h.sink.waitType(t, c.ID, connector.EventNoAgent)
			if e.LeaveMessage || e.Text == "" || string(e.Session) != string(sess) {
				t.Errorf("no-agent event %+v", e)
			}
			if got := countPosts(h.srv.Requests(), "chatsessions") - before; got != tc.posts {
				t.Errorf("%d POST chatsessions, want %d", got, tc.posts)
			}
			c.Session = sess
			if err := h.v.Resume(ctx(t), c); err != nil {
				t.Errorf("Resume of a chat that never started: %v", err)
			}
			if err := h.v.End(ctx(t), c, "customer"); err != nil {
				t.Errorf("End of a chat that never started: %v", err)
			}
		})
	}
	// Availability back: the next conversation gets its chat.
	c := conversation()
	h.open(c)
	h.sink.waitType(t, c.ID, connector.EventJoined)
}

func countPosts(rs []cobrowsertest.Request, path string) int {
	n := 0
	for _, r := range rs {
		if r.Method == "POST" && r.Path == path {
			n++
		}
	}
	return n
}

// A transfer's internal message is never relayed: the customer hears of the
// new agent, never CoBrowser's placeholder body.
func TestTransferBodyNeverRelayed(t *testing.T) {
	h := newHarness(t, "ws", nil)
	c := conversation()
	h.open(c)
	vis := visitor(t, c)
	if err := h.agent.Forward(vis, "visitor_forward_message"); err != nil {
		t.Fatal(err)
	}
	if err := h.agent.Say(vis, "Pedro here"); err != nil {
		t.Fatal(err)
	}
	tr := h.sink.waitType(t, c.ID, connector.EventTransferred)
	if tr.Agent != "Pedro" {
		t.Errorf("transferred to %q, want Pedro", tr.Agent)
	}
	text := h.sink.waitType(t, c.ID, connector.EventText) // after the transfer, in order
	if text.Text != "Pedro here" {
		t.Errorf("first line %q", text.Text)
	}
	for _, e := range h.sink.all() {
		if strings.Contains(e.Text, "visitor_forward_message") {
			t.Errorf("internal text reached the core: %+v", e)
		}
	}
}

// A blocked customer: the chat ends with closed sent, the customer is told,
// and while the block lasts a new chat is refused without asking CoBrowser.
func TestBlocked(t *testing.T) {
	h := newHarness(t, "tcp", map[string]string{"block_duration": `"1h"`})
	c := conversation()
	h.open(c)
	vis := visitor(t, c)
	if err := h.agent.Block(vis); err != nil {
		t.Fatal(err)
	}
	ended := h.sink.waitType(t, c.ID, connector.EventEnded)
	if ended.Reason != "blocked" || ended.Text != h.v.cfg.BlockedNotice {
		t.Errorf("ended %+v, want reason blocked and the blocked notice as its text", ended)
	}
	if _, err := h.agent.WaitState(ctx(t), vis, "closed"); err != nil {
		t.Errorf("our closed after blocked: %v", err)
	}

	posts := countPosts(h.srv.Requests(), "chatsessions")
	again := conversation()
	again.Channel, again.Customer = c.Channel, c.Customer // the same customer writes again
	sess, err := h.v.Open(ctx(t), again)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := parseSession(sess); !st.NoAgent {
		t.Errorf("blocked customer got a chat: %s", sess)
	}
	h.sink.waitType(t, again.ID, connector.EventNoAgent)
	if n := h.sink.of(again.ID, connector.EventNotice); len(n) != 1 {
		t.Errorf("blocked customer not told: %+v", n)
	}
	if got := countPosts(h.srv.Requests(), "chatsessions"); got != posts {
		t.Errorf("CoBrowser asked for a blocked customer: %d POSTs, had %d", got, posts)
	}
	// Another customer is not blocked; the block ends with its time.
	other := conversation()
	h.open(other)
	h.v.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	later := conversation()
	later.Channel, later.Customer = c.Channel, c.Customer
	h.open(later)
	h.sink.waitType(t, later.ID, connector.EventJoined)
}

// Agent presence flaps (a page refresh) say nothing; an absence that lasts
// the debounce is told once, and its end once.
func TestAgentPresenceDebounced(t *testing.T) {
	h := newHarness(t, "ws", map[string]string{"presence_debounce": `"300ms"`})
	c := conversation()
	h.open(c)
	vis := visitor(t, c)
	if _, err := h.agent.WaitState(ctx(t), vis, "active"); err != nil { // subscribed: presence flows
		t.Fatal(err)
	}
	if err := h.agent.Flap(5); err != nil {
		t.Fatal(err)
	}
	if err := h.agent.Say(vis, "after the flaps"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitType(t, c.ID, connector.EventText)
	if n := h.sink.of(c.ID, connector.EventNotice); len(n) != 0 {
		t.Fatalf("flaps told: %+v", n)
	}
	if err := h.agent.Send(`<presence type="unavailable"/>`); err != nil {
		t.Fatal(err)
	}
	away := h.sink.waitType(t, c.ID, connector.EventNotice)
	if away.Text != h.v.cfg.AgentAwayNotice {
		t.Errorf("away notice %q", away.Text)
	}
	if err := h.agent.Send(`<presence><status>available</status></presence>`); err != nil {
		t.Fatal(err)
	}
	h.sink.wait(t, c.ID, "back notice", func(e connector.Event) bool {
		return e.Type == connector.EventNotice && e.Text == h.v.cfg.AgentBackNotice
	})
	if n := h.sink.of(c.ID, connector.EventNotice); len(n) != 2 {
		t.Errorf("notices %+v", n)
	}
}
