package cention

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" {
		os.Exit(serveFake())
	}
	goleak.VerifyTestMain(m)
}

// load parses a [vendors.cention.test] block made of keys (TOML values as
// written in a file; "" leaves a key out) through the daemon's loader.
func load(keys map[string]string) (connector.Instance, error) {
	var lines []string
	for k, v := range keys {
		if v != "" {
			lines = append(lines, k+" = "+v)
		}
	}
	sort.Strings(lines)
	text := "[vendors.cention.test]\n" + strings.Join(lines, "\n") + "\n"
	cfg, err := connector.ParseConfig([]byte(text), connector.Expander{Getenv: os.LookupEnv})
	if cfg == nil || len(cfg.Vendors) != 1 {
		panic(fmt.Sprintf("loader gave no vendor block: %v", err))
	}
	var mine []error
	for _, e := range connector.Problems(err) {
		var ce *connector.ConfigError
		if errors.As(e, &ce) && strings.HasPrefix(ce.Path, "vendors.cention.test") {
			mine = append(mine, e)
		}
	}
	return cfg.Vendors[0], errors.Join(mine...)
}

func instance(keys map[string]string) connector.Instance {
	inst, err := load(keys)
	if err != nil {
		panic(err)
	}
	return inst
}

// sink records agent events; it can be told to fail its first calls, and
// onEvent (set under mu) sees each event before it is taken.
type sink struct {
	mu      sync.Mutex
	events  []connector.Event
	failN   int
	onEvent func(connector.Event)
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) Event(ctx context.Context, e connector.Event) error {
	s.mu.Lock()
	on := s.onEvent
	s.mu.Unlock()
	if on != nil {
		on(e)
	}
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
	return slices.Clone(s.events)
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

// wait waits until an event matches, and returns it.
func (s *sink) wait(t *testing.T, what string, match func(connector.Event) bool) connector.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ch := s.changed
		for _, e := range s.events {
			if match(e) {
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
	return s.wait(t, string(typ), func(e connector.Event) bool { return e.ConversationID == id && e.Type == typ })
}

func (s *sink) waitText(t *testing.T, id int64, text string) connector.Event {
	t.Helper()
	return s.wait(t, "text "+text, func(e connector.Event) bool {
		return e.ConversationID == id && e.Type == connector.EventText && e.Text == text
	})
}

// texts is the Text of every EventText of conversation id, in order.
func (s *sink) texts(id int64) []string {
	var out []string
	for _, e := range s.of(id, connector.EventText) {
		out = append(out, e.Text)
	}
	return out
}

// session is the newest session reported for conversation id.
func (s *sink) session(id int64) []byte {
	var sess []byte
	for _, e := range s.all() {
		if e.ConversationID == id && e.Session != nil && e.Type != connector.EventLost {
			sess = e.Session
		}
	}
	return sess
}

func describe(es []connector.Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %d %s agent=%q text=%q reason=%q leave=%v typing=%v pos=%d src=%q att=%v",
			e.ConversationID, e.Type, e.Agent, e.Text, e.Reason, e.LeaveMessage, e.Typing, e.Position, e.SourceID, e.Attachments)
	}
	return b.String()
}

// harness is a fake Cention and vendors built against it.
type harness struct {
	t        *testing.T
	srv      *centiontest.Server
	sink     *sink
	v        *Vendor
	keys     map[string]string
	progress *connector.MemoryProgress // shared by every vendor of the harness: the core's store
	nextID   int64
}

func baseKeys(url string) map[string]string {
	return map[string]string{
		"base_url":          `"` + url + `"`,
		"area":              "2",
		"origin":            `"` + centiontest.DefaultOrigin + `"`,
		"reconnect_initial": `"20ms"`,
		"reconnect_max":     `"200ms"`,
		"send_timeout":      `"2s"`,
		"connect_timeout":   `"3s"`,
		"health_interval":   `"100ms"`,
	}
}

func newHarness(t *testing.T, cfg centiontest.Config, edit func(map[string]string)) *harness {
	t.Helper()
	srv := centiontest.NewServer(t, cfg)
	h := &harness{t: t, srv: srv, sink: newSink(), keys: baseKeys(srv.URL()), progress: connector.NewMemoryProgress(1000)}
	if edit != nil {
		edit(h.keys)
	}
	h.v = h.start()
	return h
}

// start builds and starts a new vendor against the fake (a restart keeps
// the fake, the sink and the send progress).
func (h *harness) start() *Vendor {
	h.t.Helper()
	v, err := Build(connector.VendorEnv{Instance: instance(h.keys), Logger: zap.NewNop(), Sink: h.sink, Progress: h.progress})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { stopVendor(h.t, v) })
	return v
}

func stopVendor(t *testing.T, v *Vendor) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// restart stops the vendor and starts a new one.
func (h *harness) restart() {
	h.t.Helper()
	stopVendor(h.t, h.v)
	h.v = h.start()
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// conv is a new conversation of an SMS customer.
func (h *harness) conv() *connector.Conversation {
	h.nextID++
	return &connector.Conversation{ID: h.nextID, Channel: "sms.main", Customer: fmt.Sprintf("+1555000%04d", h.nextID),
		Vendor: "cention.test", State: connector.StatePending, Profile: connector.Profile{Name: "Jo Doe", Email: "jo@example.com"}}
}

// open opens c and stores the session as the core would.
func (h *harness) open(c *connector.Conversation) {
	h.t.Helper()
	sess, err := h.v.Open(ctxFor(h.t), c)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	c.Session, c.State = sess, connector.StateQueued
}

// openJoined opens c and has the agent Alice join it.
func (h *harness) openJoined() *connector.Conversation {
	h.t.Helper()
	c := h.conv()
	h.open(c)
	if err := h.srv.Join(h.token(c), "Alice"); err != nil {
		h.t.Fatal(err)
	}
	h.sink.waitType(h.t, c.ID, connector.EventJoined)
	return c
}

// token is the chat token of c's newest session.
func (h *harness) token(c *connector.Conversation) string {
	h.t.Helper()
	sess := c.Session
	if s := h.sink.session(c.ID); s != nil {
		sess = s
	}
	st, err := parseSession(sess)
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Token
}

// current is c with the newest session reported for it.
func (h *harness) current(c *connector.Conversation) *connector.Conversation {
	cc := *c
	if s := h.sink.session(c.ID); s != nil {
		cc.Session = s
	}
	return &cc
}

func (h *harness) send(c *connector.Conversation, id int64, text string) error {
	m := &connector.Message{ID: id, ConversationID: c.ID, Direction: connector.ToAgent, Kind: connector.KindText, Text: text}
	return h.v.Send(ctxFor(h.t), h.current(c), m)
}

// lines are the customer lines the fake took for c's chat, in order.
func (h *harness) lines(c *connector.Conversation) []centiontest.Line {
	ch, _ := h.srv.Chat(h.token(c))
	return ch.Lines
}

func lineTexts(ls []centiontest.Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Text)
	}
	return out
}

// waitLines waits until the fake took n lines for c's chat.
func (h *harness) waitLines(c *connector.Conversation, n int) []centiontest.Line {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ls, err := h.srv.WaitLines(ctx, h.token(c), n)
	if err != nil {
		h.t.Fatalf("waiting for %d lines: %v (have %q)", n, err, lineTexts(h.lines(c)))
	}
	return ls
}

// chat is the fake's record of c's chat.
func (h *harness) chat(c *connector.Conversation) centiontest.Chat {
	h.t.Helper()
	ch, ok := h.srv.Chat(h.token(c))
	if !ok {
		h.t.Fatalf("the fake has no chat for conversation %d", c.ID)
	}
	return ch
}

// waitChat waits until cond holds of c's chat.
func (h *harness) waitChat(c *connector.Conversation, what string, cond func(centiontest.Chat) bool) {
	h.t.Helper()
	token := h.token(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.srv.Wait(ctx, func(chats []centiontest.Chat) bool {
		for _, ch := range chats {
			if ch.Token == token && cond(ch) {
				return true
			}
		}
		return false
	})
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}
