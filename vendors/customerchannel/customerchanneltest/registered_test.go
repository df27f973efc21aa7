package customerchanneltest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCampaignKeptUntilRegistered: a campaign goes only to registered
// sockets; one started while no socket is registered for its channel (the
// registered one went away) is kept and goes to the next socket that
// registers for that channel, once; State.Registered says who takes them.
func TestCampaignKeptUntilRegistered(t *testing.T) {
	eios(t, func(t *testing.T, s *Server) {
		ctx := ctxT(t)
		a, b := dialPolling(t, s), dialPolling(t, s)
		a.emit("registerConnector", map[string]string{"id": "sms", "name": "node A", "channel": "sms"})
		if err := s.WaitFor(ctx, func(st State) bool { return len(st.Registered) == 1 }); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.State(ctx); st.Registered[0].Name != "node A" || !st.Registered[0].Connected {
			t.Errorf("registered %+v, want node A", st.Registered)
		}
		first, err := s.Campaign(ctx, "+41790000001", "first", "", "sms")
		if err != nil {
			t.Fatal(err)
		}
		if m := a.nextMessage(); m.ID != first {
			t.Errorf("registered socket got %+v, want campaign %s", m, first)
		}

		// The registered socket goes away: nobody is registered, and what
		// the server starts now is kept.
		a.post("1") // Engine.IO close
		if err := s.WaitFor(ctx, func(st State) bool { return len(st.Registered) == 0 && len(st.Connected) == 1 }); err != nil {
			t.Fatal(err)
		}
		kept, err := s.Campaign(ctx, "+41790000002", "kept", "", "sms")
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.Campaign(ctx, "+41790000003", "for slack", "", "slack")
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := st.Campaigns[1]; c.ID != kept || !c.Pending || len(c.DeliveredTo) != 0 {
			t.Errorf("campaign started with nobody registered: %+v, want pending", c)
		}

		// b registers for sms: the kept sms campaign is its first message
		// (nothing reached it before), the slack one stays kept.
		b.emit("registerConnector", map[string]string{"id": "sms", "name": "node B", "channel": "sms"})
		if m := b.nextMessage(); m.ID != kept || m.RefID != "+41790000002" || m.Text != "kept" {
			t.Errorf("newly registered socket got %+v, want the kept campaign %s", m, kept)
		}
		later, err := s.Campaign(ctx, "+41790000004", "later", "", "sms")
		if err != nil {
			t.Fatal(err)
		}
		if m := b.nextMessage(); m.ID != later {
			t.Errorf("registered socket got %+v, want campaign %s (the kept one only once)", m, later)
		}
		st, err = s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending := map[string]bool{}
		for _, c := range st.Campaigns {
			pending[c.ID] = c.Pending
		}
		if diff := cmp.Diff(map[string]bool{first: false, kept: false, other: true, later: false}, pending); diff != "" {
			t.Errorf("pending (-want +got):\n%s", diff)
		}
		if len(st.Registered) != 1 || st.Registered[0].Name != "node B" {
			t.Errorf("registered %+v, want node B", st.Registered)
		}
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.State(ctx); len(st.Registered) != 0 {
			t.Errorf("registered after reset: %+v", st.Registered)
		}
	})
}
