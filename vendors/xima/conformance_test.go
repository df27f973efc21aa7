package xima

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/vendors/xima/ximatest"
)

// gate is a reverse proxy in front of one half of the fake that can be
// switched off: then it drops every connection, as a server that went away.
type gate struct {
	down atomic.Bool
	srv  *httptest.Server
}

func newGate(t *testing.T, target string) *gate {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	// No idle connection to the fake outlives a request: the suite's leak
	// check after each clause would count its goroutines.
	proxy.Transport = &http.Transport{DisableKeepAlives: true}
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a long poll cut by Stop is no news
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.down.Load() {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestConformance runs the core's vendor suite against the fake, through
// gates that Down and Up switch off and on.
func TestConformance(t *testing.T) {
	srv := ximatest.NewServer(t, ximatest.Config{})
	rest, sqsGate := newGate(t, srv.URL()), newGate(t, srv.SQSEndpoint())
	chatID := func(t *testing.T, c *connector.Conversation) string { return chatIDOf(t, c.Session) }
	connectortest.TestVendor(t, connectortest.VendorFixture{
		Start: func(t *testing.T, sink connector.EventSink) connector.Vendor {
			keys := baseKeys(srv)
			keys["base_url"] = fmt.Sprintf("%q", rest.srv.URL)
			keys["sqs_endpoint"] = fmt.Sprintf("%q", sqsGate.srv.URL)
			v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sink})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return v
		},
		Join: func(t *testing.T, c *connector.Conversation, name string) {
			agent(t, srv.StartChat(chatID(t, c), name))
		},
		Say: func(t *testing.T, c *connector.Conversation, text string) {
			agent(t, srv.Say(chatID(t, c), text))
		},
		EndByAgent: func(t *testing.T, c *connector.Conversation) {
			agent(t, srv.End(chatID(t, c)))
		},
		Lines: func(t *testing.T, c *connector.Conversation) []string {
			ch, _ := srv.Chat(chatID(t, c))
			return ch.Lines
		},
		Ended: func(t *testing.T, c *connector.Conversation) bool {
			ch, _ := srv.Chat(chatID(t, c))
			return ch.Ended != ""
		},
		Down: func(*testing.T) {
			rest.down.Store(true)
			sqsGate.down.Store(true)
		},
		Up: func(*testing.T) {
			rest.down.Store(false)
			sqsGate.down.Store(false)
		},
	})
}
