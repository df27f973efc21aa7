package whoson

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" {
		os.Exit(serveFake())
	}
	goleak.VerifyTestMain(m)
}

// sink records agent events; it can be told to fail its first calls (with
// failErr, else a plain "store busy"), and counts every call.
type sink struct {
	mu      sync.Mutex
	events  []connector.Event
	calls   int
	failN   int
	failErr error
	changed chan struct{}
	entered atomic.Int64 // calls begun, counted before the lock is taken
	// onEvent, when set, is called with each stored event after the sink's
	// lock is released, on the vendor's goroutine: a core acting inline.
	onEvent func(connector.Event)
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) Event(ctx context.Context, e connector.Event) error {
	s.entered.Add(1)
	s.mu.Lock()
	s.calls++
	if s.failN > 0 {
		s.failN--
		err := s.failErr
		s.mu.Unlock()
		if err != nil {
			return err
		}
		return errors.New("store busy")
	}
	s.events = append(s.events, e)
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
	return append([]connector.Event(nil), s.events...)
}

// of returns the recorded events of type typ.
func (s *sink) of(typ connector.EventType) []connector.Event {
	var out []connector.Event
	for _, e := range s.all() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until an event matches, and returns it.
func (s *sink) wait(t *testing.T, what string, match func(connector.Event) bool) connector.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
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

func (s *sink) waitType(t *testing.T, typ connector.EventType) connector.Event {
	t.Helper()
	return s.wait(t, string(typ), func(e connector.Event) bool { return e.Type == typ })
}

func (s *sink) waitText(t *testing.T, text string) connector.Event {
	t.Helper()
	return s.wait(t, "text "+text, func(e connector.Event) bool { return e.Type == connector.EventText && e.Text == text })
}

func describe(es []connector.Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s agent=%q text=%q reason=%q leave=%v typing=%v pos=%d src=%q",
			e.Type, e.Agent, e.Text, e.Reason, e.LeaveMessage, e.Typing, e.Position, e.SourceID)
	}
	return b.String()
}

// texts returns the Text of every EventText, in order.
func texts(es []connector.Event) []string {
	var out []string
	for _, e := range es {
		if e.Type == connector.EventText {
			out = append(out, e.Text)
		}
	}
	return out
}

// harness is a fake WhosOn server and a vendor built against it.
type harness struct {
	t    *testing.T
	srv  *whosontest.Server
	sink *sink
	v    *Vendor
	logs *observer.ObservedLogs
	// progress, when set, is the send-progress store every vendor of the
	// harness is built with (else each keeps its own in memory).
	progress connector.SendProgress
}

const testServerKey = "fake-api-key"

// newHarness starts a fake server with op and a started vendor; keys
// override the test block's TOML values.
func newHarness(t *testing.T, op whosontest.Operator, keys map[string]string) *harness {
	t.Helper()
	srv, err := whosontest.New(whosontest.Config{Operator: op, APIKey: testServerKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h := &harness{t: t, srv: srv}
	h.v, h.sink = h.vendor(keys)
	return h
}

// baseKeys is a valid test block for a server at url, with short timings.
func baseKeys(url string) map[string]string {
	return map[string]string{
		"url":                   fmt.Sprintf("%q", url),
		"domain":                `"www.example.com"`,
		"auth_string":           `"test-auth"`,
		"api_key":               `"` + testServerKey + `"`,
		"connect_timeout":       `"2s"`,
		"accept_timeout":        `"2s"`,
		"ping_interval":         `"250ms"`,
		"queue_notice_interval": `"1h"`,
		"reconnect_max":         `"200ms"`,
	}
}

// vendor builds and starts another vendor against the harness's server;
// keys override baseKeys.
func (h *harness) vendor(keys map[string]string) (*Vendor, *sink) {
	h.t.Helper()
	all := baseKeys(h.srv.URL())
	for k, v := range keys {
		all[k] = v
	}
	return h.vendorAt(all, true)
}

// vendorAt builds a vendor from a whole block, started or not, stopped when
// the test ends.
func (h *harness) vendorAt(all map[string]string, start bool) (*Vendor, *sink) {
	h.t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	if h.logs == nil {
		h.logs = logs
	}
	sk := newSink()
	v, err := Build(connector.VendorEnv{Instance: instance(all), Logger: zap.New(core), Sink: sk, Progress: h.progress})
	if err != nil {
		h.t.Fatal(err)
	}
	v.probeEvery = 50 * time.Millisecond
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
			if strings.Contains(line, "test-auth") || strings.Contains(line, testServerKey) {
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

var nextConversation atomic.Int64

// conversation makes a conversation as the core would hold it.
func conversation(p connector.Profile) *connector.Conversation {
	return &connector.Conversation{ID: nextConversation.Add(1), Channel: "sms.main", Customer: "+15557654321",
		Vendor: "whoson.test", State: connector.StatePending, Profile: p}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// open opens c at h.v and stores the session in c.
func (h *harness) open(c *connector.Conversation) {
	h.t.Helper()
	sess, err := h.v.Open(ctx(h.t), c)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	c.Session = sess
}

// send sends a customer message, retrying errors as the Router would.
func (h *harness) send(c *connector.Conversation, id int64, text string) {
	h.t.Helper()
	m := &connector.Message{ID: id, Text: text, Direction: connector.ToAgent, Kind: connector.KindText}
	var err error
	for range 5 {
		if err = h.v.Send(ctx(h.t), c, m); err == nil {
			return
		}
		h.t.Logf("Send %q: %v (retrying)", text, err)
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("Send %q: %v", text, err)
}

func (h *harness) visitorLines(n int) []string {
	h.t.Helper()
	lines, err := h.srv.WaitVisitorLines(ctx(h.t), n)
	if err != nil {
		h.t.Fatal(err)
	}
	return lines
}

func chatUID(t *testing.T, c *connector.Conversation) string {
	t.Helper()
	st, err := parseSession(c.Session)
	if err != nil || st.ChatUID == "" {
		t.Fatalf("session %s: %v", c.Session, err)
	}
	return st.ChatUID
}

func echo(s string) string { return "echo: " + s }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
