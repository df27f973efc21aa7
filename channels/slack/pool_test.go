package slack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/BurntSushi/toml"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/connector"
)

// TestWebAPIKeepsConnections: slack-go closes an answer it decoded without
// reading its end; through the channel's client a large answer (a long
// history page) still leaves its connection for the next call. Without
// DrainOnClose, 20 such calls opened 20 connections.
func TestWebAPIKeepsConnections(t *testing.T) {
	var accepted atomic.Int64
	pad := strings.Repeat("x", 100<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"team_id":"T1","user_id":"U1","bot_id":"B1","pad":%q}`+"\n", pad)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	inst := connector.NewInstance("channels.slack.test", "slack", "test", func(v any) error {
		_, err := toml.Decode(goodConfig+"api_url = \""+srv.URL+"/api/\"\nhttp_connections = 4\n", v)
		return err
	})
	c, err := New(connector.ChannelEnv{Instance: inst, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.http.CloseIdleConnections)
	const calls = 20
	for range calls {
		if _, err := c.api.AuthTestContext(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("%d Web API calls in a row opened %d connections, want 1", calls, got)
	}
}
