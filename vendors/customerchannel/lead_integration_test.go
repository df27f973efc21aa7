package customerchannel

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

// clusterHarness is one of several instances on one chat server: its
// connector_name tells the simulator's registrations apart. lead is what
// the core tells it before Start.
func clusterHarness(t *testing.T, sim *customerchanneltest.Server, name string, lead bool) *harness {
	t.Helper()
	h := buildHarness(t, sim.URL, sim.EIO, map[string]any{"connector_name": name, "reconnect_initial": "50ms"})
	h.v.Lead(context.Background(), lead)
	h.start()
	waitFor(t, name+" connected", func() bool { return h.v.Health().Ready })
	return h
}

// registeredNames lists the simulator's standing registrations by name.
func registeredNames(st customerchanneltest.State) []string {
	var out []string
	for _, r := range st.Registered {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

func waitRegistered(t *testing.T, sim *customerchanneltest.Server, names ...string) {
	t.Helper()
	err := sim.WaitFor(simCtx(t), func(st customerchanneltest.State) bool {
		return slices.Equal(names, registeredNames(st))
	})
	if err != nil {
		t.Fatalf("registered connectors are not %v: %v", names, err)
	}
}

// campaignIDs lists the source ids of the server-started messages h stored.
func campaignIDs(h *harness) []string {
	_, out := h.rec.all()
	var ids []string
	for _, o := range out {
		ids = append(ids, o.SourceID)
	}
	return ids
}

// TestCampaignReachesOnlyTheLeader: two instances on one server, one told
// Lead(false) before Start. A campaign reaches the leader only. The leader
// loses the role: it connects again unregistered, and a campaign started
// while nobody is registered reaches the other once it is told Lead(true),
// exactly once. Then the new leader's vendor stops and the first takes the
// role back: the campaign started meanwhile reaches it, once.
func TestCampaignReachesOnlyTheLeader(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		sim := customerchanneltest.StartTest(t, eio)
		ctx := simCtx(t)
		a := clusterHarness(t, sim, "node A", true)
		b := clusterHarness(t, sim, "node B", false)
		waitRegistered(t, sim, "node A")
		wantDetail(t, a.v, "connected (eio "+strconv.Itoa(eio)+"), the registered connector")
		wantDetail(t, b.v, "connected (eio "+strconv.Itoa(eio)+"), not the registered connector (another instance is)")

		campaign := func(id string) customerchanneltest.CampaignSent {
			t.Helper()
			if _, err := sim.Campaign(ctx, "+1555000"+id[len(id)-4:], "sale "+id, id, ""); err != nil {
				t.Fatal(err)
			}
			st, err := sim.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return st.Campaigns[len(st.Campaigns)-1]
		}
		if c := campaign("camp-0001"); len(c.DeliveredTo) != 1 || c.Pending {
			t.Errorf("campaign offered to %v (pending %v), want the leader's socket alone", c.DeliveredTo, c.Pending)
		}
		waitFor(t, "the campaign at the leader", func() bool { return len(campaignIDs(a)) == 1 })

		// The leader loses the role: it drops its registered connection and
		// connects again without registering.
		a.v.Lead(ctx, false)
		waitRegistered(t, sim)
		wantDetail(t, a.v, "connected (eio "+strconv.Itoa(eio)+"), not the registered connector (another instance is)")
		if c := campaign("camp-0002"); !c.Pending {
			t.Errorf("campaign with nobody registered offered to %v", c.DeliveredTo)
		}
		b.v.Lead(ctx, true)
		waitRegistered(t, sim, "node B")
		waitFor(t, "the kept campaign at the new leader", func() bool { return len(campaignIDs(b)) == 1 })
		wantDetail(t, b.v, "connected (eio "+strconv.Itoa(eio)+"), the registered connector")

		// The new leader stops (a shutdown, or a crash the lease notices):
		// the core tells the other to lead.
		if err := b.v.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		waitRegistered(t, sim)
		if c := campaign("camp-0003"); !c.Pending {
			t.Errorf("campaign with nobody registered offered to %v", c.DeliveredTo)
		}
		a.v.Lead(ctx, true)
		waitRegistered(t, sim, "node A")
		waitFor(t, "the kept campaign at the first node again", func() bool { return len(campaignIDs(a)) == 2 })
		if c := campaign("camp-0004"); len(c.DeliveredTo) != 1 {
			t.Errorf("campaign offered to %v, want the leader's socket alone", c.DeliveredTo)
		}
		waitFor(t, "the last campaign", func() bool { return len(campaignIDs(a)) == 3 })

		if diff := cmp.Diff([]string{"camp-0001", "camp-0003", "camp-0004"}, campaignIDs(a)); diff != "" {
			t.Errorf("node A stored (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"camp-0002"}, campaignIDs(b)); diff != "" {
			t.Errorf("node B stored (-want +got):\n%s", diff)
		}
	})
}

// coreSink plays the core's side of agent events: it drops an agent line
// whose source id it stored already, as the core's de-duplication does,
// and counts the drops.
type coreSink struct {
	mu      sync.Mutex
	seen    map[string]bool
	lines   []string
	dropped int
}

func (s *coreSink) Event(ctx context.Context, e connector.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Type != connector.EventText {
		return nil
	}
	if s.seen[e.SourceID] {
		s.dropped++
		return nil
	}
	s.seen[e.SourceID] = true
	s.lines = append(s.lines, e.Text)
	return nil
}

func (s *coreSink) Outbound(ctx context.Context, o connector.Outbound) error { return nil }

func (s *coreSink) relayed() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines), s.dropped
}

// TestResignLosesAndDoublesNoLine: the leader is told Lead(false) while a
// chat is live. It drops the connection and rejoins; the agent speaks and
// the customer writes around the reconnect. Every customer line reaches
// the server once, and every agent line reaches the core once (a line the
// rejoin's history offers again carries its source id, which the core
// drops).
func TestResignLosesAndDoublesNoLine(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		sim := customerchanneltest.StartTest(t, eio)
		ctx := simCtx(t)
		if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true, Whisper: true}); err != nil {
			t.Fatal(err)
		}
		core := &coreSink{seen: map[string]bool{}}
		h := buildHarness(t, sim.URL, eio, map[string]any{"connector_name": "node A", "reconnect_initial": "50ms"})
		h.v.sink, h.v.outbound = core, core
		h.v.Lead(ctx, true)
		h.start()
		waitRegistered(t, sim, "node A")
		conv := conversation()
		raw, err := h.v.Open(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		conv.Session = raw
		chat := simSession(t, conv).ConversationID
		send := func(id int64, text string) {
			t.Helper()
			if err := sendWhenUp(ctx, h.v, conv, &connector.Message{ID: id, Text: text}); err != nil {
				t.Fatalf("send %q: %v", text, err)
			}
		}
		send(1, "one")
		send(2, "two")
		waitFor(t, "the echoes", func() bool { l, _ := core.relayed(); return slices.Contains(l, "echo: two") })

		h.v.Lead(ctx, false)
		// Around the reconnect: the agent speaks and the customer writes
		// while the connection is being replaced.
		if err := sim.Agent(ctx, customerchanneltest.AgentAction{ConversationID: chat, Action: "say", Text: "while you were away"}); err != nil {
			t.Fatal(err)
		}
		send(3, "three")
		waitRegistered(t, sim)
		send(4, "four")
		if err := sim.Agent(ctx, customerchanneltest.AgentAction{ConversationID: chat, Action: "say", Text: "after"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the last lines", func() bool {
			l, _ := core.relayed()
			return slices.Contains(l, "echo: four") && slices.Contains(l, "after")
		})

		st, err := sim.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sc := st.Conversation(chat)
		if n := len(sc.JoinedBy); n < 2 {
			t.Fatalf("joined %d times: the connection was not replaced", n)
		}
		var customer, agent []string
		for _, m := range sc.Messages {
			switch {
			case m.From.ID == sc.CustomerParticipantID:
				customer = append(customer, m.Text)
			case m.Tag != "whisper":
				agent = append(agent, m.Text)
			}
		}
		if diff := cmp.Diff([]string{"one", "two", "three", "four"}, customer); diff != "" {
			t.Errorf("customer lines at the server (-want +got):\n%s", diff)
		}
		relayed, dropped := core.relayed()
		if diff := cmp.Diff(agent, relayed); diff != "" {
			t.Errorf("agent lines relayed (-server's +relayed):\n%s", diff)
		}
		for _, l := range relayed {
			if strings.HasPrefix(l, "whisper:") {
				t.Errorf("whisper relayed: %q", l)
			}
		}
		t.Logf("eio %d: %d agent lines, %d offered again by the rejoin's history and dropped by id", eio, len(relayed), dropped)
	})
}

// TestRoleFlipsBounded: every loss of the role replaces the connection,
// every gain registers on the live one; twenty of each leave no goroutine
// behind and make exactly twenty new connections.
func TestRoleFlipsBounded(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		sim := customerchanneltest.StartTest(t, eio)
		ctx := simCtx(t)
		h := clusterHarness(t, sim, "node A", true)
		waitRegistered(t, sim, "node A")
		before := runtime.NumGoroutine()
		const flips = 20
		for range flips {
			h.v.Lead(ctx, false)
			waitRegistered(t, sim)
			wantDetail(t, h.v, "connected (eio "+strconv.Itoa(eio)+"), not the registered connector (another instance is)")
			h.v.Lead(ctx, true)
			waitRegistered(t, sim, "node A")
		}
		st, err := sim.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Connections != 1+flips {
			t.Errorf("%d connections after %d losses of the role, want %d", st.Connections, flips, 1+flips)
		}
		var after int
		waitFor(t, "goroutines back to their number before the flips", func() bool {
			after = runtime.NumGoroutine()
			return after <= before
		})
		t.Logf("eio %d: %d goroutines before %d role flips, %d after", eio, before, flips, after)
	})
}
