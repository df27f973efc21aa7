package cobrowser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cobrowser/cobrowsertest"
)

// peer is the package's one private ejabberd, started by TestMain; its
// start error, when there is none, is peerErr. The server pings every
// client each second and WebSocket-pings each second, so that every test
// also proves both kinds of ping are answered.
var (
	peer    *cobrowsertest.Ejabberd
	peerErr error
)

func TestMain(m *testing.M) {
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		peer, peerErr = cobrowsertest.Start(ctx, cobrowsertest.Options{
			PingInterval: time.Second, PingTimeout: 3 * time.Second,
			WebSocketPingInterval: time.Second, WebSocketTimeout: 4 * time.Second,
		})
		cancel()
		if peer != nil {
			defer peer.Close()
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needPeer gives the test the package's ejabberd, or stops it: failing
// under CI=true, skipping elsewhere, with why.
func needPeer(t *testing.T) *cobrowsertest.Ejabberd {
	t.Helper()
	if peer == nil {
		err := peerErr
		if err == nil {
			err = errors.New("ejabberd was not started")
		}
		if os.Getenv("CI") == "true" || !errors.Is(err, cobrowsertest.ErrNotInstalled) {
			t.Fatalf("ejabberd: %v", err)
		}
		t.Skipf("ejabberd: %v", err)
	}
	return peer
}

// sink records agent events; it can be told to fail its first calls.
type sink struct {
	mu      sync.Mutex
	events  []connector.Event
	failN   int
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) Event(ctx context.Context, e connector.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN > 0 {
		s.failN--
		return errors.New("store busy")
	}
	s.events = append(s.events, e)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (s *sink) all() []connector.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]connector.Event(nil), s.events...)
}

func (s *sink) of(id int64, typ connector.EventType) []connector.Event {
	var out []connector.Event
	for _, e := range s.all() {
		if e.ConversationID == id && e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until an event of conversation id matches, and returns it.
func (s *sink) wait(t *testing.T, id int64, what string, match func(connector.Event) bool) connector.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ch := s.changed
		for _, e := range s.events {
			if e.ConversationID == id && match(e) {
				s.mu.Unlock()
				return e
			}
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s event; have %s", what, describe(s.all()))
			return connector.Event{}
		}
	}
}

func (s *sink) waitType(t *testing.T, id int64, typ connector.EventType) connector.Event {
	t.Helper()
	return s.wait(t, id, string(typ), func(e connector.Event) bool { return e.Type == typ })
}

func describe(es []connector.Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  #%d %s agent=%q text=%.60q reason=%q typing=%v src=%q",
			e.ConversationID, e.Type, e.Agent, e.Text, e.Reason, e.Typing, e.SourceID)
	}
	return b.String()
}

// harness is a fake CoBrowser API on the package's ejabberd, its agent, and
// vendors built against them.
type harness struct {
	t     *testing.T
	ej    *cobrowsertest.Ejabberd
	srv   *cobrowsertest.Server
	agent *cobrowsertest.Agent
	sink  *sink
	v     *Vendor
	logs  *observer.ObservedLogs
	// progress, when set, is the send progress every vendor of the harness
	// shares (a store that outlives a restart).
	progress connector.SendProgress
}

var agentSeq atomic.Int64

// newHarness starts the fake API, logs its agent in and starts a vendor
// over transport ("ws" or "tcp"); keys override the block's values.
func newHarness(t *testing.T, transport string, keys map[string]string) *harness {
	t.Helper()
	ej := needPeer(t)
	// An agent account of its own per test: a stanza to another test's
	// agent would land here otherwise.
	user := fmt.Sprintf("agent%d", agentSeq.Add(1))
	srv := cobrowsertest.NewServer(t, cobrowsertest.Config{Ejabberd: ej, AgentUser: user, AgentName: "James", AgentNick: "jim"})
	h := &harness{t: t, ej: ej, srv: srv, agent: srv.Agent(t)}
	h.v, h.sink = h.vendor(transport, keys)
	return h
}

// baseKeys is a valid block for the harness over transport, with short
// timings.
func (h *harness) baseKeys(transport string) map[string]string {
	keys := map[string]string{
		"api_url":           fmt.Sprintf("%q", h.srv.URL()),
		"api_token":         fmt.Sprintf("%q", h.srv.Token()),
		"campaign_id":       fmt.Sprintf("%q", h.srv.CampaignID()),
		"ca_file":           fmt.Sprintf("%q", h.ej.CAFile),
		"connect_timeout":   `"5s"`,
		"send_timeout":      `"3s"`,
		"request_timeout":   `"3s"`,
		"ping_interval":     `"2s"`,
		"health_interval":   `"100ms"`,
		"presence_debounce": `"2s"`,
		"reconnect_initial": `"50ms"`,
		"reconnect_max":     `"300ms"`,
	}
	switch transport {
	case "ws":
		keys["xmpp_websocket_url"] = fmt.Sprintf("%q", h.ej.WSURL)
	case "wss":
		keys["xmpp_websocket_url"] = fmt.Sprintf("%q", h.ej.WSSURL)
	default:
		keys["xmpp_address"] = fmt.Sprintf("%q", h.ej.TCPAddr)
	}
	return keys
}

// vendor builds and starts a vendor; keys override baseKeys.
func (h *harness) vendor(transport string, keys map[string]string) (*Vendor, *sink) {
	h.t.Helper()
	all := h.baseKeys(transport)
	for k, v := range keys {
		all[k] = v
	}
	core, logs := observer.New(zapcore.DebugLevel)
	if h.logs == nil {
		h.logs = logs
	}
	sk := newSink()
	v, err := Build(connector.VendorEnv{Instance: instance(all), Logger: zap.New(core), Sink: sk, Progress: h.progress})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := v.Stop(ctx); err != nil {
			h.t.Error(err)
		}
		for _, e := range logs.All() {
			line := fmt.Sprint(e.Message, e.ContextMap())
			if strings.Contains(line, h.srv.Token()) || passwordRE.MatchString(line) {
				h.t.Errorf("a secret was logged: %s", line)
			}
		}
		if h.t.Failed() {
			for _, e := range logs.All() {
				h.t.Logf("%s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
	return v, sk
}

// passwordRE finds a visitor password of the fake (56 hex digits) in a log line.
var passwordRE = regexp.MustCompile(`[0-9a-f]{56}`)

var nextConversation atomic.Int64

func conversation() *connector.Conversation {
	id := nextConversation.Add(1)
	return &connector.Conversation{ID: id, Channel: "sms.main", Customer: fmt.Sprintf("+1555000%04d", id),
		Vendor: "cobrowser.test", State: connector.StatePending, Profile: connector.Profile{Name: "Ann Customer"}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

// open opens c at h.v, waits for the joined event and stores the session.
func (h *harness) open(c *connector.Conversation) {
	h.t.Helper()
	sess, err := h.v.Open(ctx(h.t), c)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	c.Session, c.State = sess, connector.StateActive
}

// visitor is the chat's visitor bare JID.
func visitor(t *testing.T, c *connector.Conversation) string {
	t.Helper()
	st, err := parseSession(c.Session)
	if err != nil || st.User == "" {
		t.Fatalf("session %s: %v", c.Session, err)
	}
	return st.User
}

// send sends a customer line, as the Router would, once.
func (h *harness) send(c *connector.Conversation, id int64, text string) error {
	return h.v.Send(ctx(h.t), c, &connector.Message{ID: id, Text: text, Direction: connector.ToAgent, Kind: connector.KindText})
}

// lines waits for n customer lines at the agent.
func (h *harness) lines(n int) []cobrowsertest.Message {
	h.t.Helper()
	ms, err := h.agent.WaitMessage(ctx(h.t), n)
	if err != nil {
		h.t.Fatal(err)
	}
	return ms
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
