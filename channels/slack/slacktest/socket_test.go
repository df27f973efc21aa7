package slacktest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// wsClient is a minimal Socket Mode app: it reads every frame (which also
// answers the server's pings) and hands them to the test.
type wsClient struct {
	conn   *websocket.Conn
	frames chan map[string]any // closed when the socket closes
	pings  atomic.Int32
}

// openURL calls apps.connections.open with the app token.
func openURL(t *testing.T, s *Server) string {
	t.Helper()
	_, body := rawCall(t, s, "apps.connections.open", s.AppToken, nil)
	u, _ := body["url"].(string)
	if body["ok"] != true || !strings.HasPrefix(u, "ws://127.0.0.1:") {
		t.Fatalf("apps.connections.open: %v", body)
	}
	return u
}

func dialSocket(t *testing.T, s *Server, u string) *wsClient {
	t.Helper()
	c := &wsClient{frames: make(chan map[string]any, 100)}
	conn, _, err := websocket.Dial(testContext(t), u, &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { c.pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	c.conn = conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.frames)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("frame %q is not JSON: %v", data, err)
				return
			}
			c.frames <- m
		}
	}()
	t.Cleanup(func() {
		_ = conn.CloseNow()
		<-done
	})
	return c
}

// connect opens a socket and checks its hello.
func connect(t *testing.T, s *Server) *wsClient {
	t.Helper()
	c := dialSocket(t, s, openURL(t, s))
	if hello := c.next(t); hello["type"] != "hello" {
		t.Fatalf("first frame %v, want hello", hello)
	}
	return c
}

// next returns the next frame, failing the test after 5s or on close.
func (c *wsClient) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, open := <-c.frames:
		if !open {
			t.Fatal("socket closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
	}
	return nil
}

func (c *wsClient) ack(t *testing.T, envelope map[string]any) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"envelope_id": envelope["envelope_id"]})
	if err := c.conn.Write(testContext(t), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// innerEvent is the inner event of an envelope.
func innerEvent(env map[string]any) map[string]any {
	p, _ := env["payload"].(map[string]any)
	e, _ := p["event"].(map[string]any)
	return e
}

func eventID(env map[string]any) string {
	p, _ := env["payload"].(map[string]any)
	id, _ := p["event_id"].(string)
	return id
}

func TestSocketHelloEnvelopeAck(t *testing.T) {
	s := newTestServer(t)
	c := dialSocket(t, s, openURL(t, s))
	hello := c.next(t)
	want := map[string]any{
		"type": "hello", "num_connections": float64(1),
		"debug_info":      map[string]any{"host": "fake", "build_number": float64(1), "approximate_connection_time": float64(18060)},
		"connection_info": map[string]any{"app_id": s.AppID},
	}
	if diff := cmp.Diff(want, hello); diff != "" {
		t.Errorf("hello (-want +got):\n%s", diff)
	}
	if s.Sockets() != 1 || s.Connections() != 1 {
		t.Errorf("Sockets %d, Connections %d; want 1, 1", s.Sockets(), s.Connections())
	}

	m := s.Post(Post{Channel: "C0SHARED01", User: "U0ALICE001", Text: "hello there"})
	env := c.next(t)
	if env["type"] != "events_api" || env["retry_attempt"] != float64(0) || env["retry_reason"] != "" || env["accepts_response_payload"] != false || eventID(env) != m.EventID {
		t.Errorf("envelope %v", env)
	}
	payload, _ := json.Marshal(env["payload"])
	parsed, err := slackevents.ParseEvent(payload, slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	msg, isMsg := parsed.InnerEvent.Data.(*slackevents.MessageEvent)
	if !isMsg {
		t.Fatalf("slackevents parsed %T", parsed.InnerEvent.Data)
	}
	if msg.Channel != "C0SHARED01" || msg.User != "U0ALICE001" || msg.Text != "hello there" || msg.TimeStamp != m.TS || msg.ChannelType != "channel" || parsed.TeamID != s.TeamID || parsed.APIAppID != s.AppID {
		t.Errorf("parsed message event %+v", msg)
	}
	if p := env["payload"].(map[string]any); p["is_ext_shared_channel"] != true {
		t.Errorf("is_ext_shared_channel = %v in a shared channel", p["is_ext_shared_channel"])
	}

	c.ack(t, env)
	waitFor(t, s, "the ack", func() bool { return len(s.Acks()) == 1 })
	if a := s.Acks()[0]; a.EnvelopeID != env["envelope_id"] || a.EventID != m.EventID {
		t.Errorf("ack %+v", a)
	}
}

func TestSocketWithheldAckRedelivery(t *testing.T) {
	s := newTestServer(t)
	c := connect(t, s)
	s.WithholdAcks(1)
	m := s.Post(Post{Channel: "D0ALICE001", User: "U0ALICE001", Text: "are you there?"})
	first := c.next(t)
	c.ack(t, first)
	second := c.next(t)
	if second["retry_attempt"] != float64(1) || second["retry_reason"] != "timeout" || eventID(second) != m.EventID || second["envelope_id"] == first["envelope_id"] {
		t.Errorf("redelivery %v after %v", second, first)
	}
	if innerEvent(second)["channel_type"] != "im" {
		t.Errorf("channel_type %v, want im", innerEvent(second)["channel_type"])
	}
	c.ack(t, second)
	waitFor(t, s, "the second ack", func() bool { return len(s.Acks()) == 1 })
	if ig := s.IgnoredAcks(); len(ig) != 1 || ig[0].EnvelopeID != first["envelope_id"] || ig[0].EventID != m.EventID {
		t.Errorf("IgnoredAcks %+v", ig)
	}
	select {
	case f := <-c.frames:
		t.Errorf("unexpected frame after the ack: %v", f)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestSocketDeliveriesAndOrder(t *testing.T) {
	s := newTestServer(t)
	c := connect(t, s)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "dup", Deliveries: 3})
	for attempt := range 3 {
		env := c.next(t)
		if env["retry_attempt"] != float64(attempt) || eventID(env) != m.EventID {
			t.Fatalf("delivery %d: %v", attempt, env)
		}
		c.ack(t, env)
	}
	var want, got []string
	for i := range 5 {
		want = append(want, s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: string(rune('a' + i))}).TS)
	}
	for range 5 {
		env := c.next(t)
		got = append(got, innerEvent(env)["ts"].(string))
		c.ack(t, env)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event order (-want +got):\n%s", diff)
	}
}

func TestSocketQueuedUntilConnectAndTicketsSingleUse(t *testing.T) {
	s := newTestServer(t)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "while you were away"})
	s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "silent", Silent: true})
	u := openURL(t, s)
	c := dialSocket(t, s, u)
	if hello := c.next(t); hello["type"] != "hello" {
		t.Fatalf("first frame %v", hello)
	}
	env := c.next(t)
	if eventID(env) != m.EventID {
		t.Errorf("queued envelope %v", env)
	}
	c.ack(t, env)

	_, resp, err := websocket.Dial(testContext(t), u, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reusing a ticket: %v, want 401", err)
	}
}

func TestSocketAppMessagesEchoed(t *testing.T) {
	s := newTestServer(t)
	c := connect(t, s)
	_, body := rawCall(t, s, "chat.postMessage", s.BotToken, map[string][]string{"channel": {"C0SUPPORT1"}, "text": {"from the bot"}})
	env := c.next(t)
	ev := innerEvent(env)
	if ev["bot_id"] != s.BotID || ev["user"] != s.BotUserID || ev["app_id"] != s.AppID || ev["ts"] != body["ts"] {
		t.Errorf("echo %v", ev)
	}
}

func TestSocketPingsAndRefresh(t *testing.T) {
	s := newTestServer(t)
	s.SetPingInterval(30 * time.Millisecond)
	c := connect(t, s)
	// Pings are not recorded changes, so WaitFor would not see them: poll.
	for deadline := time.Now().Add(3 * time.Second); c.pings.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings within 3s, want 2", c.pings.Load())
		}
	}
	// Measured from before the refresh, so that a late read of the
	// disconnect message cannot shorten it: the close comes a second after
	// the message was sent, so after start by at least that.
	start := time.Now()
	s.Refresh()
	msg := c.next(t)
	if msg["type"] != "disconnect" || msg["reason"] != "refresh_requested" {
		t.Errorf("got %v, want a refresh disconnect", msg)
	}
	select {
	case _, open := <-c.frames:
		if open {
			t.Error("a frame after the disconnect message")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("socket not closed after the refresh")
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("closed %v after the disconnect message, want about 1s", d)
	}
	waitFor(t, s, "the socket to go", func() bool { return s.Sockets() == 0 })
}

func TestSocketDropAndRedeliverOnNewSocket(t *testing.T) {
	s := newTestServer(t)
	c := connect(t, s)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "lost"})
	if env := c.next(t); eventID(env) != m.EventID {
		t.Fatalf("envelope %v", env)
	}
	s.DropSockets()
	waitFor(t, s, "the drop", func() bool { return s.Sockets() == 0 })
	c2 := connect(t, s)
	env := c2.next(t)
	if eventID(env) != m.EventID || env["retry_attempt"] != float64(1) {
		t.Errorf("after reconnecting: %v", env)
	}
	if s.Connections() != 2 {
		t.Errorf("Connections %d, want 2", s.Connections())
	}
}

// TestSlackGoSocketMode runs slack-go's own Socket Mode client against the
// server: it must connect, receive an event, ack it and reconnect after a
// refresh.
func TestSlackGoSocketMode(t *testing.T) {
	s := newTestServer(t)
	s.SetAckTimeout(3 * time.Second) // slack-go under -race may take longer than the usual test timeout
	api := slack.New(s.BotToken, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(s.AppToken))
	smc := socketmode.New(api)
	ctx, cancel := context.WithCancel(testContext(t))
	runDone := make(chan error, 1)
	go func() { runDone <- smc.RunContext(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()

	texts := make(chan string, 10)
	go func() {
		for {
			select {
			case e := <-smc.Events:
				if e.Type != socketmode.EventTypeEventsAPI {
					continue
				}
				smc.Ack(*e.Request)
				ev, _ := e.Data.(slackevents.EventsAPIEvent)
				if m, isMsg := ev.InnerEvent.Data.(*slackevents.MessageEvent); isMsg {
					texts <- m.Text
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	for i, text := range []string{"before refresh", "after refresh"} {
		if err := s.WaitFor(testContext(t), func() bool { return s.Sockets() == 1 && s.Connections() == i+1 }); err != nil {
			t.Fatalf("round %d: sockets %d, connections %d, calls %+v", i, s.Sockets(), s.Connections(), s.Calls(""))
		}
		m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: text})
		select {
		case got := <-texts:
			if got != text {
				t.Errorf("slack-go received %q, want %q", got, text)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("slack-go received nothing for %q", text)
		}
		waitFor(t, s, "slack-go's ack", func() bool {
			return slices.ContainsFunc(s.Acks(), func(a Ack) bool { return a.EventID == m.EventID })
		})
		if i == 0 {
			s.Refresh()
		}
	}
}
