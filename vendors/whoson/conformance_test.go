package whoson

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// TestConformance runs the core's vendor suite against the fake server. Its
// operator joins every chat at once, so Join has nothing to do.
func TestConformance(t *testing.T) {
	srv, err := whosontest.New(whosontest.Config{Operator: whosontest.Operator{Name: "Alice"},
		APIKey: testServerKey, ResumeGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	uid := func(t *testing.T, c *connector.Conversation) string { return chatUID(t, c) }
	connectortest.TestVendor(t, connectortest.VendorFixture{
		Start: func(t *testing.T, sink connector.EventSink) connector.Vendor {
			keys := baseKeys(srv.URL())
			keys["reconnect_initial"] = `"50ms"`
			keys["reconnect_max"] = `"500ms"`
			v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sink})
			if err != nil {
				t.Fatal(err)
			}
			v.probeEvery = 50 * time.Millisecond
			if err := v.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return v
		},
		Join: func(*testing.T, *connector.Conversation, string) {},
		Say: func(t *testing.T, c *connector.Conversation, text string) {
			if err := srv.Say(uid(t, c), text); err != nil {
				t.Fatal(err)
			}
		},
		EndByAgent: func(t *testing.T, c *connector.Conversation) {
			if err := srv.Quit(uid(t, c)); err != nil {
				t.Fatal(err)
			}
		},
		Lines: func(t *testing.T, c *connector.Conversation) []string { return srv.VisitorLines(uid(t, c)) },
		Ended: func(t *testing.T, c *connector.Conversation) bool {
			for _, ch := range srv.Chats() {
				if ch.UID == uid(t, c) {
					return ch.Ended
				}
			}
			return false
		},
		Down: func(*testing.T) { srv.SetDown(true) },
		Up:   func(*testing.T) { srv.SetDown(false) },
		// A chat outlives its socket at the server (it is resumable), and
		// so does its operator script.
		Ignore: []goleak.Option{goleak.IgnoreAnyFunction("github.com/connectord/connectord/vendors/whoson/whosontest.(*Server).runOperator")},
	})
}
