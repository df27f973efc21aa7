package slacktest

import (
	"context"
	"slices"
	"testing"
	"time"
)

// waitPings polls (pings are not recorded changes) until c has n pings.
func waitPings(t *testing.T, c *wsClient, n int32) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.pings.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings within 5s, want %d", c.pings.Load(), n)
		}
	}
}

// pingFails reports whether the app's ping gets no pong within 300 ms: for
// a socket that must never answer, where a pong would come at once.
func pingFails(t *testing.T, c *wsClient) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
	defer cancel()
	return c.conn.Ping(ctx) != nil
}

// A silent socket stays connected but sends nothing (no pings, its
// envelopes lost) and answers nothing; what was lost there is redelivered
// on a socket still talking, and the silent one goes once the app closes it.
func TestSilenceSockets(t *testing.T) {
	s := newTestServer(t)
	s.SetPingInterval(20 * time.Millisecond)
	c1 := connect(t, s)
	// Answered at all: testContext is a give-up, not a speed claim.
	if err := c1.conn.Ping(testContext(t)); err != nil {
		t.Fatalf("a talking socket does not answer a ping: %v", err)
	}
	s.SilenceSockets()
	if s.QuietSockets() != 1 || s.Sockets() != 1 {
		t.Fatalf("QuietSockets %d, Sockets %d; want 1, 1", s.QuietSockets(), s.Sockets())
	}
	if !pingFails(t, c1) {
		t.Error("a silent socket answered a ping")
	}
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "into the void"})
	waitFor(t, s, "the envelope lost", func() bool { return slices.Contains(s.Lost(), m.EventID) })

	silentPings := c1.pings.Load()
	c2 := connect(t, s)
	env := c2.next(t)
	if eventID(env) != m.EventID || env["retry_attempt"] != float64(1) || env["retry_reason"] != "timeout" {
		t.Errorf("on the new socket: %v, want the lost event's first retry", env)
	}
	c2.ack(t, env)
	waitFor(t, s, "the ack", func() bool { return len(s.Acks()) == 1 })
	// The new socket hears several pings while the silent one hears none
	// (one may have been on its way when it went silent).
	waitPings(t, c2, 5)
	if n := c1.pings.Load() - silentPings; n > 1 {
		t.Errorf("the silent socket got %d pings", n)
	}
	select {
	case f := <-c1.frames:
		t.Errorf("the silent socket delivered %v", f)
	default:
	}
	_ = c1.conn.CloseNow()
	waitFor(t, s, "the silent socket gone", func() bool { return s.Sockets() == 1 && s.QuietSockets() == 0 })
}

// A deaf socket still pings and delivers but reads nothing: the app's
// pings get no pong and its acks are never seen, so the envelope is
// redelivered.
func TestDeafenSockets(t *testing.T) {
	s := newTestServer(t)
	s.SetPingInterval(20 * time.Millisecond)
	c := connect(t, s)
	s.DeafenSockets()
	if !pingFails(t, c) {
		t.Error("a deaf socket answered a ping")
	}
	waitPings(t, c, c.pings.Load()+3)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "unheard ack"})
	first := c.next(t)
	for first["type"] != "events_api" {
		first = c.next(t)
	}
	c.ack(t, first)
	second := c.next(t)
	if eventID(second) != m.EventID || second["retry_attempt"] != float64(1) {
		t.Errorf("after an ack the server did not read: %v, want the event's first retry", second)
	}
	if len(s.Acks())+len(s.IgnoredAcks()) != 0 {
		t.Errorf("a deaf socket read acks: %v %v", s.Acks(), s.IgnoredAcks())
	}
}

// A revoked app token opens no more sockets; the bot token still works.
func TestRevokeAppToken(t *testing.T) {
	s := newTestServer(t)
	openURL(t, s)
	s.RevokeAppToken()
	for _, tc := range []struct{ method, token, want string }{
		{"apps.connections.open", s.AppToken, "token_revoked"},
		{"auth.test", s.AppToken, "token_revoked"},
		{"apps.connections.open", "xapp-1-other", "invalid_auth"},
		{"apps.connections.open", "", "not_authed"},
		{"apps.connections.open", s.BotToken, "not_allowed_token_type"},
	} {
		if _, body := rawCall(t, s, tc.method, tc.token, nil); body["ok"] != false || body["error"] != tc.want {
			t.Errorf("%s with %q: %v, want %s", tc.method, tc.token, body, tc.want)
		}
	}
	if _, body := rawCall(t, s, "auth.test", s.BotToken, nil); body["ok"] != true {
		t.Errorf("auth.test with the bot token: %v", body)
	}
}
