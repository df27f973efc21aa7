package slack

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
)

// A refresh is not a reconnect: the next socket opens at once, whatever the
// reconnect policy's wait, while the old one drains, and /readyz never
// drops.
func TestSocketModeRefreshKeepsReady(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "3s", "3s" // a reconnect would wait 1.5-3 s
	})
	e.start()
	var dips atomic.Int32
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if h := e.ch.Health(); !h.Ready && dips.Add(1) == 1 {
				t.Logf("not ready during a refresh: %+v", h)
			}
		}
	}()
	for i := range 3 {
		began := time.Now()
		e.fake.Refresh()
		e.waitFor("the next socket", func() bool { return e.fake.Connections() >= i+2 })
		if took := time.Since(began); took > time.Second {
			t.Errorf("refresh %d: next socket after %s, want at once", i+1, took)
		}
		m := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "after a refresh"})
		e.waitFor("the message acked", func() bool { return ackedEvents(e.fake, m.EventID) > 0 })
	}
	close(stop)
	<-sampled
	if n := dips.Load(); n > 0 {
		t.Errorf("Health was not ready %d times across refreshes", n)
	}
}

// Slack refusing the app token during the run ends supervision: no more
// apps.connections.open calls, and Health and the log say why.
func TestSocketModeRefusedAppTokenStopsRetrying(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "10ms", "20ms"
	})
	logs := e.observe()
	e.start()
	e.fake.Fail("apps.connections.open", slacktest.Fault{Error: "token_revoked"})
	e.fake.DropSockets()
	e.waitFor("the refusal in Health", func() bool { return strings.Contains(e.ch.Health().Detail, "token_revoked") })
	if h := e.ch.Health(); h.Ready || !strings.Contains(h.Detail, "socket mode: ") || !strings.Contains(h.Detail, "not retrying") {
		t.Errorf("Health = %+v, want not ready, the socket named, and no retry", h)
	}
	calls := len(e.fake.Calls("apps.connections.open"))
	time.Sleep(300 * time.Millisecond) // 15 or more attempts, were it retrying
	if n := len(e.fake.Calls("apps.connections.open")); n != calls {
		t.Errorf("apps.connections.open called %d more times after Slack refused the token", n-calls)
	}
	if logs.FilterMessageSnippet("socket mode stopped").Len() != 1 {
		t.Errorf("the end of supervision is not logged once: %v", logs.All())
	}
}

// A dropped socket reconnects after the configured wait, not at once, and
// the waits between failing attempts follow reconnect_initial.
func TestSocketModeReconnectFollowsPolicy(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "600ms", "600ms" // every wait 300-600 ms
	})
	e.start()
	e.fake.Fail("apps.connections.open", slacktest.Fault{Status: 500, Times: 2})
	before := len(e.fake.Calls("apps.connections.open"))
	dropped := time.Now()
	e.fake.DropSockets()
	e.waitFor("three attempts", func() bool { return len(e.fake.Calls("apps.connections.open")) >= before+3 })
	e.waitFor("a socket again", func() bool { return e.ch.Health().Ready })
	calls := e.fake.Calls("apps.connections.open")[before:]
	if len(calls) != 3 {
		t.Fatalf("%d attempts, want 3 (two refused, one good)", len(calls))
	}
	last := dropped
	for i, c := range calls {
		if gap := c.Time.Sub(last); gap < 290*time.Millisecond {
			t.Errorf("attempt %d came %s after the previous failure, want the policy's wait (at least 300ms)", i+1, gap)
		}
		last = c.Time
	}
}

// A 429 from apps.connections.open is waited out as Slack asks, however
// short the policy's own wait.
func TestSocketModeOpenHonoursRetryAfter(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "10ms", "20ms"
	})
	e.start()
	e.fake.Fail("apps.connections.open", slacktest.Fault{Status: 429, RetryAfter: time.Second, Times: 1})
	before := len(e.fake.Calls("apps.connections.open"))
	e.fake.DropSockets()
	e.waitFor("two attempts", func() bool { return len(e.fake.Calls("apps.connections.open")) >= before+2 })
	e.waitFor("a socket again", func() bool { return e.ch.Health().Ready })
	calls := e.fake.Calls("apps.connections.open")[before:]
	if len(calls) != 2 || calls[0].Status != 429 {
		t.Fatalf("attempts %+v, want a 429 then a good one", calls)
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < time.Second {
		t.Errorf("retried %s after a 429 asking for 1s", gap)
	}
}
