package cobrowser

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/vendors/cobrowser/cobrowsertest"
)

// TestConformance runs the core's vendor suite against the fake API and the
// real ejabberd, over WebSocket. CoBrowser assigns the agent when the chat
// starts, so Join has nothing to do: Open reports the joined agent. Down
// and Up stop and start ejabberd.
func TestConformance(t *testing.T) {
	ej := needPeer(t)
	srv := cobrowsertest.NewServer(t, cobrowsertest.Config{Ejabberd: ej,
		AgentUser: fmt.Sprintf("agent%d", agentSeq.Add(1)), AgentNick: "Alice"})
	h := &harness{t: t, ej: ej, srv: srv}
	agent := srv.Agent(t) // before the clauses: their leak checks ignore it
	vis := func(t *testing.T, c *connector.Conversation) string { return visitor(t, c) }
	connectortest.TestVendor(t, connectortest.VendorFixture{
		Start: func(t *testing.T, sink connector.EventSink) connector.Vendor {
			v, err := Build(connector.VendorEnv{Instance: instance(h.baseKeys("ws")), Logger: zap.NewNop(), Sink: sink})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return v
		},
		Join: func(*testing.T, *connector.Conversation, string) {},
		Say: func(t *testing.T, c *connector.Conversation, text string) {
			if err := agent.Say(vis(t, c), text); err != nil {
				t.Fatal(err)
			}
		},
		EndByAgent: func(t *testing.T, c *connector.Conversation) {
			if err := agent.Close(vis(t, c)); err != nil {
				t.Fatal(err)
			}
		},
		Lines: func(t *testing.T, c *connector.Conversation) []string {
			var out []string
			for _, m := range agent.Messages() {
				if m.Bare() == vis(t, c) {
					out = append(out, m.Body)
				}
			}
			return out
		},
		Ended: func(t *testing.T, c *connector.Conversation) bool {
			for _, cs := range srv.Sessions() {
				for _, cr := range cs.Credentials {
					if cr.JID == vis(t, c) {
						return cs.Status == "closed"
					}
				}
			}
			return false
		},
		Down: func(t *testing.T) { ej.Down(t) },
		Up:   func(t *testing.T) { ej.Up(t) },
		// Up starts a new ejabberd process, watched until it exits.
		Ignore: []goleak.Option{goleak.IgnoreAnyFunction("github.com/connectord/connectord/vendors/cobrowser/cobrowsertest.(*Ejabberd).launch.func1")},
	})
}
