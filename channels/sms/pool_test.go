package sms

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSendBurstsReuseConnections: 200 sends at once (200 busy
// conversations) open at most http_connections connections to Twilio, and
// a second burst opens none: the pool keeps as many idle as it may open.
// With Go's default pool (2 idle per host) each burst opened about 200.
func TestSendBurstsReuseConnections(t *testing.T) {
	const conns, sends = 8, 200
	// A send waits for a free connection within request_timeout: a long
	// one, so that a slow (race-instrumented, shared) machine times nothing
	// out; this test counts connections, not time.
	w := newWorld(t, setup{extra: fmt.Sprintf("http_connections = %d\ncatch_up = false\nrequest_timeout = \"60s\"\n", conns)})
	// Every answer takes a while, as Twilio's do, so the sends overlap.
	w.twilio.SetLatency(5 * time.Millisecond)
	burst := func(round int) int64 {
		t.Helper()
		before := w.twilio.Connections()
		var wg sync.WaitGroup
		errs := make(chan error, sends)
		for i := range sends {
			wg.Go(func() {
				to := fmt.Sprintf("+1555700%04d", i) // one customer each: no loop protection
				if _, err := w.ch.Send(context.Background(), to, text(int64(round*sends+i+1), "hello")); err != nil {
					errs <- fmt.Errorf("send to %s: %w", to, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return w.twilio.Connections() - before
	}
	first, second := burst(0), burst(1)
	t.Logf("%d sends at once, twice: %d then %d new connections", sends, first, second)
	if first < 1 || first > conns {
		t.Errorf("first burst of %d sends opened %d connections, want 1..%d", sends, first, conns)
	}
	if second != 0 {
		t.Errorf("second burst of %d sends opened %d new connections, want 0", sends, second)
	}
	waitSent(t, w, 2*sends)
}
