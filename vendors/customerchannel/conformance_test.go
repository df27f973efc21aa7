package customerchannel

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

// TestConformance runs the core's vendor suite against the simulator on the
// reference Socket.IO servers of both generations, its agent scripted through
// the control API.
func TestConformance(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		connectortest.TestVendor(t, conformanceFixture(t, customerchanneltest.StartTest(t, eio)))
	})
}

func conformanceFixture(t *testing.T, sim *customerchanneltest.Server) connectortest.VendorFixture {
	ctl := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	agent := func(t *testing.T, c *connector.Conversation, a customerchanneltest.AgentAction) {
		t.Helper()
		a.ConversationID = simSession(t, c).ConversationID
		ctl(t, sim.Agent(simCtx(t), a))
	}
	return connectortest.VendorFixture{
		Start: func(t *testing.T, sink connector.EventSink) connector.Vendor { return startAgainst(t, sim, sink) },
		// The agent picks the chat up once the customer is in its room, as
		// an agent routed to a waiting chat does.
		Join: func(t *testing.T, c *connector.Conversation, name string) {
			t.Helper()
			s := simSession(t, c)
			ctl(t, sim.WaitFor(simCtx(t), func(st customerchanneltest.State) bool {
				conv := st.Conversation(s.ConversationID)
				return conv != nil && slices.Contains(conv.JoinedBy, s.ParticipantID)
			}))
			agent(t, c, customerchanneltest.AgentAction{Action: "join", Name: name})
		},
		Say: func(t *testing.T, c *connector.Conversation, text string) {
			agent(t, c, customerchanneltest.AgentAction{Action: "say", Text: text})
		},
		EndByAgent: func(t *testing.T, c *connector.Conversation) {
			agent(t, c, customerchanneltest.AgentAction{Action: "end"})
		},
		Lines: func(t *testing.T, c *connector.Conversation) []string {
			conv := simConversation(t, sim, c)
			if conv == nil {
				return nil
			}
			var lines []string
			for _, m := range conv.Messages {
				if m.From.ID == conv.CustomerParticipantID {
					lines = append(lines, m.Text)
				}
			}
			return lines
		},
		Ended: func(t *testing.T, c *connector.Conversation) bool {
			conv := simConversation(t, sim, c)
			return conv != nil && conv.Ended
		},
		Down: func(t *testing.T) { ctl(t, sim.SetDown(simCtx(t), true)) },
		Up:   func(t *testing.T) { ctl(t, sim.SetDown(simCtx(t), false)) },
	}
}

// startAgainst builds and starts the adapter against sim and waits until
// its socket is up: the suite's first Send must not meet errNotConnected,
// which the core would retry but the suite does not.
func startAgainst(t *testing.T, sim *customerchanneltest.Server, sink connector.EventSink) *Vendor {
	t.Helper()
	cfg := map[string]any{"url": sim.URL, "eio": sim.EIO, "connector_id": "sms", "connector_name": "connectord SMS",
		"reconnect_initial": "50ms", "reconnect_max": "500ms", "connect_timeout": "2s"}
	inst := connector.NewInstance("vendors.customerchannel.hub", "customerchannel", "hub", func(v any) error {
		b, err := toml.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = toml.Decode(string(b), v)
		return err
	})
	// Its own client without idle connections: the leak check after Stop
	// would count a pooled one, and a shared pool would hide a response the
	// adapter left open.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	v, err := New(connector.VendorEnv{Instance: inst, Logger: zaptest.NewLogger(t), Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	v.http = hc
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !v.Health().Ready; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not connected to the simulator after 10s: %+v", v.Health())
		}
	}
	return v
}

func simSession(t *testing.T, c *connector.Conversation) session {
	t.Helper()
	var s session
	if err := json.Unmarshal(c.Session, &s); err != nil || s.ConversationID == "" {
		t.Fatalf("conversation %d: session %s: %v", c.ID, c.Session, err)
	}
	return s
}

func simConversation(t *testing.T, sim *customerchanneltest.Server, c *connector.Conversation) *customerchanneltest.Conversation {
	t.Helper()
	st, err := sim.State(simCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return st.Conversation(simSession(t, c).ConversationID)
}

func simCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
