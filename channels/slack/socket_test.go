package slack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/channels/slack/slacktest"
)

// A refresh is not a reconnect: the next socket opens at once, whatever the
// reconnect policy's wait, while the old one drains, and /readyz never
// drops. A reconnect would wait half an hour or more, so only the refresh
// can bring the next socket before the test gives up.
func TestSocketModeRefreshKeepsReady(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "1h", "1h"
	})
	logs := e.observe()
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
		e.fake.Refresh()
		e.waitFor("the next socket", func() bool { return e.fake.Connections() >= i+2 })
		m := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "after a refresh"})
		e.waitFor("the message acked", func() bool { return ackedEvents(e.fake, m.EventID) > 0 })
	}
	close(stop)
	<-sampled
	if n := dips.Load(); n > 0 {
		t.Errorf("Health was not ready %d times across refreshes", n)
	}
	if n := logs.FilterMessageSnippet("reconnecting").Len(); n != 0 {
		t.Errorf("%d reconnects across refreshes, want none", n)
	}
}

// Slack refusing the app token while the channel runs (an admin revoked
// it) leaves the channel up but not ready, naming the key, and every retry
// waits reconnect_max: no storm of apps.connections.open calls.
func TestSocketModeRevokedAppTokenBacksOff(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "10ms", "300ms"
	})
	logs := e.observe()
	e.start()
	e.fake.RevokeAppToken()
	before := len(e.fake.Calls("apps.connections.open"))
	e.fake.DropSockets()
	// Between attempts; during one it says "connecting".
	e.waitFor("Health naming the key and Slack's refusal", func() bool {
		h := e.ch.Health()
		return !h.Ready && strings.HasPrefix(h.Detail, "socket mode: channels.slack.test.app_token: ") && strings.Contains(h.Detail, "token_revoked")
	})
	e.waitFor("four refused attempts", func() bool { return len(e.fake.Calls("apps.connections.open")) >= before+4 })
	named := logs.FilterMessageSnippet("reconnecting").Filter(func(e observer.LoggedEntry) bool {
		err, _ := e.ContextMap()["error"].(string)
		return strings.HasPrefix(err, "channels.slack.test.app_token: ")
	})
	if named.Len() < 3 {
		t.Errorf("%d log lines name the key, want one a refusal: %v", named.Len(), logs.All())
	}
	// The wait chosen after each refusal, as the supervisor logs it: the
	// policy alone would start at 5-10ms.
	for i, l := range named.All() {
		if in := logWait(t, l); in < 300*time.Millisecond {
			t.Errorf("refusal %d: next attempt in %s, want reconnect_max (300ms)", i+1, in)
		}
	}
}

// logWait is the wait a "reconnecting" log line announces (its "in").
func logWait(t *testing.T, l observer.LoggedEntry) time.Duration {
	t.Helper()
	in, ok := l.ContextMap()["in"].(time.Duration)
	if !ok {
		t.Fatalf("log line without its wait: %+v", l.ContextMap())
	}
	return in
}

// An app token Slack refuses at start fails Start with an error naming
// the key, and no socket is opened; a Slack that fails otherwise does not
// fail Start (the socket retries).
func TestStartRefusedAppToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  string // Slack's answer; "" opens a socket after a 500
		fault bool   // scripted, else the token itself
	}{
		{"unknown token", "invalid_auth", false},
		{"a bot token", "not_allowed_token_type", true},
		{"no token", "not_authed", true},
		{"revoked", "token_revoked", false},
		{"Slack failing", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, func(cfg map[string]any) {
				if tc.code == "invalid_auth" {
					cfg["app_token"] = "xapp-1-not-this-app"
				}
			})
			switch {
			case tc.code == "token_revoked":
				e.fake.RevokeAppToken()
			case tc.code == "":
				e.fake.Fail("apps.connections.open", slacktest.Fault{Status: 500, Times: 1})
			case tc.fault:
				e.fake.Fail("apps.connections.open", slacktest.Fault{Error: tc.code})
			}
			err := e.ch.Start(t.Context())
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := e.ch.Stop(ctx); err != nil {
					t.Errorf("Stop: %v", err)
				}
			})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Start: %v, want the socket to retry", err)
				}
				e.waitFor("the socket", func() bool { return e.ch.Health().Ready })
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "channels.slack.test.app_token: ") || !strings.Contains(err.Error(), tc.code) {
				t.Errorf("Start: %v, want an error naming channels.slack.test.app_token and %s", err, tc.code)
			}
			if strings.Contains(fmt.Sprint(err), e.fake.AppToken) {
				t.Errorf("the error shows the token: %v", err)
			}
			if n := e.fake.Connections(); n != 0 {
				t.Errorf("%d sockets opened", n)
			}
		})
	}
}

// silentEnv is a Socket Mode channel with a 1 s silence timeout and a
// reconnect policy slow enough (2.5-5 s) to tell a replacement within the
// session from a reconnect.
func silentEnv(t *testing.T) (*env, *observer.ObservedLogs) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["socket_silence_timeout"] = "1s"
		cfg["reconnect_initial"], cfg["reconnect_max"] = "5s", "5s"
	})
	return e, e.observe()
}

// A socket that goes silent (no frame, no ping, no pong: a half-open
// connection) is replaced within the silence timeout: the channel is not
// ready until the next socket's hello, the next socket opens before the
// silent one is closed, and the envelope lost in the silent socket is
// committed and acked through the next.
func TestSocketModeSilentSocketReplaced(t *testing.T) {
	e, logs := silentEnv(t)
	e.start()
	// A slow apps.connections.open keeps the not-ready time long enough to see.
	e.fake.Fail("apps.connections.open", slacktest.Fault{Delay: 300 * time.Millisecond, Times: 1})
	e.fake.SilenceSockets()
	m := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "said into a dead socket"})
	e.waitFor("the envelope lost", func() bool { return slices.Contains(e.fake.Lost(), m.EventID) })
	e.waitFor("not ready, saying why", func() bool {
		h := e.ch.Health()
		return !h.Ready && strings.Contains(h.Detail, "socket mode connection dead: ")
	})
	e.waitFor("the next socket", func() bool { return e.fake.Connections() == 2 })
	e.waitFor("ready again", func() bool { return e.ch.Health().Ready })
	e.waitFor("the silent socket closed", func() bool { return e.fake.Sockets() == 1 && e.fake.QuietSockets() == 0 })
	e.waitFor("the lost event acked", func() bool { return ackedEvents(e.fake, m.EventID) > 0 })
	if got := e.sink.inbound(); len(got) != 1 || got[0].Text != "said into a dead socket" {
		t.Errorf("committed %+v, want the lost message once", got)
	}
	// Found by the liveness rule, and replaced within the session: a silent
	// socket sees no error, and a reconnect would have waited 2.5-5 s more.
	if n := logs.FilterMessageSnippet("socket mode connection dead").Len(); n != 1 {
		t.Errorf("the silent socket found dead %d times, want once: %v", n, logs.All())
	}
	if logs.FilterMessageSnippet("reconnecting").Len() != 0 {
		t.Errorf("the session reconnected instead of replacing the socket: %v", logs.All())
	}
}

// A socket whose Slack end no longer reads (Slack's pings still come, our
// pings get no pong, our acks go nowhere) is replaced too.
func TestSocketModeDeafSocketReplaced(t *testing.T) {
	e, logs := silentEnv(t)
	e.fake.SetPingInterval(100 * time.Millisecond) // Slack's pings alone never let it look silent
	e.start()
	e.fake.DeafenSockets()
	e.waitFor("the next socket", func() bool { return e.fake.Connections() == 2 })
	e.waitFor("the deaf socket closed", func() bool { return e.fake.Sockets() == 1 && e.fake.QuietSockets() == 0 })
	// Slack's pings keep coming every 100 ms, so only the missing pong can
	// find it dead (silence too, were the machine stalled past 1 s); a deaf
	// socket sees no error, so without the rule it would never be replaced.
	dead := logs.FilterMessageSnippet("socket mode connection dead").All()
	if len(dead) != 1 {
		t.Fatalf("the dead socket is not logged once: %v", logs.All())
	}
	t.Logf("replaced: %s", dead[0].ContextMap()["why"])
	if logs.FilterMessageSnippet("reconnecting").Len() != 0 {
		t.Errorf("the session reconnected instead of replacing the socket: %v", logs.All())
	}
	m := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "heard again"})
	e.waitFor("the message acked", func() bool { return ackedEvents(e.fake, m.EventID) > 0 })
}

// A dropped socket reconnects after the configured wait, not at once, and
// the waits between failing attempts follow reconnect_initial. The waits
// are the ones the supervisor announces before each attempt.
func TestSocketModeReconnectFollowsPolicy(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "600ms", "600ms" // every wait 300-600 ms
	})
	logs := e.observe()
	e.start()
	e.fake.Fail("apps.connections.open", slacktest.Fault{Status: 500, Times: 2})
	before := len(e.fake.Calls("apps.connections.open"))
	e.fake.DropSockets()
	e.waitFor("three attempts", func() bool { return len(e.fake.Calls("apps.connections.open")) >= before+3 })
	e.waitFor("a socket again", func() bool { return e.ch.Health().Ready })
	calls := e.fake.Calls("apps.connections.open")[before:]
	if len(calls) != 3 {
		t.Fatalf("%d attempts, want 3 (two refused, one good)", len(calls))
	}
	waits := logs.FilterMessageSnippet("reconnecting").All()
	if len(waits) != 3 {
		t.Fatalf("%d reconnect waits logged, want 3 (the drop, two refusals): %v", len(waits), logs.All())
	}
	for i, l := range waits {
		if in := logWait(t, l); in < 300*time.Millisecond || in > 600*time.Millisecond {
			t.Errorf("attempt %d after a wait of %s, want the policy's 300-600ms", i+1, in)
		}
	}
}

// A 429 from apps.connections.open is waited out as Slack asks, however
// short the policy's own wait.
func TestSocketModeOpenHonoursRetryAfter(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) {
		cfg["reconnect_initial"], cfg["reconnect_max"] = "10ms", "20ms"
	})
	logs := e.observe()
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
	// The wait announced after the 429 (the policy's own is 5-20ms).
	waits := logs.FilterMessageSnippet("reconnecting").All()
	if len(waits) != 2 {
		t.Fatalf("%d reconnect waits logged, want 2 (the drop, the 429): %v", len(waits), logs.All())
	}
	if in := logWait(t, waits[1]); in < time.Second {
		t.Errorf("retried %s after a 429 asking for 1s", in)
	}
}
