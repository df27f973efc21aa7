package xima

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	"github.com/connectord/connectord/vendors/xima/ximatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sink records agent events as the core would commit them: the newest
// session of each conversation is kept, as the store does. failWith, when
// set, answers an event instead of storing it; onEvent runs after an event
// is stored, on the vendor's goroutine.
type sink struct {
	mu       sync.Mutex
	events   []connector.Event
	sessions map[int64]json.RawMessage
	changed  chan struct{}
	failWith func(connector.Event) error
	onEvent  func(connector.Event)
}

func newSink() *sink {
	return &sink{changed: make(chan struct{}), sessions: map[int64]json.RawMessage{}}
}

func (s *sink) Event(ctx context.Context, e connector.Event) error {
	s.mu.Lock()
	if s.failWith != nil {
		if err := s.failWith(e); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.events = append(s.events, e)
	if e.Session != nil && e.Type != connector.EventLost {
		s.sessions[e.ConversationID] = e.Session
	}
	close(s.changed)
	s.changed = make(chan struct{})
	hook := s.onEvent
	s.mu.Unlock()
	if hook != nil {
		hook(e)
	}
	return nil
}

func (s *sink) all() []connector.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// of returns conversation id's events of type typ ("" for all).
func (s *sink) of(id int64, typ connector.EventType) []connector.Event {
	var out []connector.Event
	for _, e := range s.all() {
		if e.ConversationID == id && (typ == "" || e.Type == typ) {
			out = append(out, e)
		}
	}
	return out
}

// texts returns conversation id's agent lines, in order.
func (s *sink) texts(id int64) []string {
	var out []string
	for _, e := range s.of(id, connector.EventText) {
		out = append(out, e.Text)
	}
	return out
}

// session is the newest session stored for conversation id.
func (s *sink) session(id int64) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// wait waits until cond holds over the events.
func (s *sink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; events:%s", what, describe(s.all()))
		}
	}
}

func (s *sink) waitType(t *testing.T, id int64, typ connector.EventType) connector.Event {
	t.Helper()
	s.wait(t, string(typ), func() bool { return len(s.of(id, typ)) > 0 })
	return s.of(id, typ)[0]
}

func (s *sink) waitTexts(t *testing.T, id int64, n int) []string {
	t.Helper()
	s.wait(t, fmt.Sprintf("%d agent lines", n), func() bool { return len(s.texts(id)) >= n })
	return s.texts(id)
}

func describe(es []connector.Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  conv=%d %s agent=%q text=%q reason=%q typing=%v src=%q",
			e.ConversationID, e.Type, e.Agent, e.Text, e.Reason, e.Typing, e.SourceID)
	}
	return b.String()
}

// harness is a fake Xima and vendors built against it.
type harness struct {
	t    *testing.T
	srv  *ximatest.Server
	sink *sink
	v    *Vendor
	logs *observer.ObservedLogs
	keys map[string]string
}

// newHarness starts a fake with cfg and a started vendor; keys override
// the test block's values.
func newHarness(t *testing.T, cfg ximatest.Config, keys map[string]string) *harness {
	t.Helper()
	h := &harness{t: t, srv: ximatest.NewServer(t, cfg), sink: newSink()}
	h.keys = baseKeys(h.srv)
	for k, v := range keys {
		h.keys[k] = v
	}
	h.v = h.vendor(true)
	return h
}

// baseKeys is a valid block for the fake, with short timings.
func baseKeys(srv *ximatest.Server) map[string]string {
	return map[string]string{
		"base_url":            fmt.Sprintf("%q", srv.URL()),
		"installation_id":     fmt.Sprintf("%q", ximatest.DefaultInstallationID),
		"api_key":             fmt.Sprintf("%q", ximatest.DefaultAPIKey),
		"skill":               `"Support"`,
		"sqs_endpoint":        fmt.Sprintf("%q", srv.SQSEndpoint()),
		"still_here_interval": `"200ms"`,
		"still_here_jitter":   `"100ms"`,
		"poll_wait":           `"2s"`,
		"request_timeout":     `"3s"`,
		"health_interval":     `"100ms"`,
		"reconnect_initial":   `"20ms"`,
		"reconnect_max":       `"200ms"`,
		"reconnect_stable":    `"1s"`,
	}
}

// vendor builds another vendor over the harness's keys and sink (a
// restart), started or not; it is stopped when the test ends.
func (h *harness) vendor(start bool) *Vendor {
	h.t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	if h.logs == nil {
		h.logs = logs
	}
	v, err := Build(connector.VendorEnv{Instance: instance(h.keys), Logger: zap.New(core), Sink: h.sink})
	if err != nil {
		h.t.Fatal(err)
	}
	if start {
		if err := v.Start(context.Background()); err != nil {
			h.t.Fatal(err)
		}
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := v.Stop(ctx); err != nil {
			h.t.Error(err)
		}
		for _, e := range logs.All() {
			line := fmt.Sprint(e.Message, e.ContextMap())
			if strings.Contains(line, ximatest.DefaultAPIKey) {
				h.t.Errorf("the API key was logged: %s", line)
			}
		}
		if h.t.Failed() {
			for _, e := range logs.All() {
				h.t.Logf("%s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
	return v
}

// stop stops a vendor now (a restart's first half).
func (h *harness) stop(v *Vendor) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.Stop(ctx); err != nil {
		h.t.Fatal(err)
	}
}

var nextConversation atomic.Int64

// conversation makes a conversation as the core would hold it.
func conversation() *connector.Conversation {
	return &connector.Conversation{ID: nextConversation.Add(1), Channel: "sms.main", Customer: "+15557654321",
		Vendor: "xima.test", State: connector.StatePending, Profile: connector.Profile{Name: "Ada Lovelace"}}
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// open opens a conversation at h.v and returns it with its session and the
// fake's chat id.
func (h *harness) open() (*connector.Conversation, string) {
	h.t.Helper()
	c := conversation()
	sess, err := h.v.Open(ctxT(h.t), c)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	c.Session, c.State = sess, connector.StateQueued
	return c, chatIDOf(h.t, sess)
}

// current is c with the newest session the sink stored.
func (h *harness) current(c *connector.Conversation) *connector.Conversation {
	cc := *c
	if s := h.sink.session(c.ID); s != nil {
		cc.Session = s
	}
	return &cc
}

// send sends customer line id to the agent through v.
func (h *harness) send(v *Vendor, c *connector.Conversation, id int64, text string) error {
	return v.Send(ctxT(h.t), h.current(c), &connector.Message{ID: id, ConversationID: c.ID,
		Direction: connector.ToAgent, Kind: connector.KindText, Text: text})
}

func chatIDOf(t *testing.T, sess json.RawMessage) string {
	t.Helper()
	st, err := parseSession(sess)
	if err != nil {
		t.Fatalf("session %s: %v", sess, err)
	}
	return st.Chat
}

// chat is the fake's view of a chat.
func (h *harness) chat(id string) ximatest.Chat {
	h.t.Helper()
	c, ok := h.srv.Chat(id)
	if !ok {
		h.t.Fatalf("the fake has no chat %s", id)
	}
	return c
}

// waitSrv waits until cond holds at the fake.
func (h *harness) waitSrv(what string, cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Wait(ctx, cond); err != nil {
		h.t.Fatalf("timed out waiting for %s: %v", what, err)
	}
}

// waitDropped waits until the vendor no longer serves conversation id's
// chat. A chat is dropped right after its end or loss is committed, not
// before (a failed commit must leave it to try again), so a test that saw
// the event may still find it for a moment.
func (h *harness) waitDropped(id int64) {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); h.v.chat(id) != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatalf("chat of conversation %d still live", id)
		}
	}
}

// agent does what the fake's agent does, failing the test on an error.
func agent(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
