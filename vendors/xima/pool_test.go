package xima

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// TestRESTBurstsReuseConnections: 200 customer lines at once (200 busy
// conversations) open at most http_connections connections to the REST
// API, and a second burst opens none. With the former pool (unbounded, 40
// idle) the bursts opened 175, then 160.
func TestRESTBurstsReuseConnections(t *testing.T) {
	const conns, lines = 8, 200
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // Xima's work, so that the calls overlap
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	keys := validKeys()
	keys["base_url"] = fmt.Sprintf("%q", srv.URL)
	keys["http_connections"] = fmt.Sprint(conns)
	keys["request_timeout"] = `"60s"` // a call waits for a connection within it; this test counts connections, not time
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.restHTTP.CloseIdleConnections)
	burst := func() int64 {
		t.Helper()
		before := accepted.Load()
		var wg sync.WaitGroup
		errs := make(chan error, lines)
		for i := range lines {
			wg.Go(func() {
				if err := v.api.say(context.Background(), fmt.Sprint("chat-", i), "hello", newJar(nil)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return accepted.Load() - before
	}
	first, second := burst(), burst()
	t.Logf("%d lines at once, twice: %d then %d new connections", lines, first, second)
	if first < 1 || first > conns {
		t.Errorf("first burst of %d lines opened %d connections, want 1..%d", lines, first, conns)
	}
	if second != 0 {
		t.Errorf("second burst of %d lines opened %d new connections, want 0", lines, second)
	}
}
