package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// sent is one thing an adapter was asked to do, as the tests compare it.
type sent struct {
	To   string // customer address or conversation id
	Kind connector.Kind
	Text string
}

// recorder collects what fakes were asked to do and lets tests wait for it.
type recorder struct {
	mu     sync.Mutex
	got    []sent
	change chan struct{}
}

func newRecorder() *recorder { return &recorder{change: make(chan struct{}, 1)} }

func (r *recorder) add(s sent) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.got...)
}

// wait returns once at least n entries are recorded, or fails the test.
func (r *recorder) wait(t testing.TB, n int, within time.Duration) []sent {
	t.Helper()
	deadline := time.After(within)
	for {
		if got := r.all(); len(got) >= n {
			return got
		}
		select {
		case <-r.change:
		case <-deadline:
			t.Fatalf("want %d recorded, have %d after %s: %+v", n, len(r.all()), within, r.all())
		}
	}
}

// fakeChannel is a Channel that records what it is asked to send; fail, when
// set, decides the outcome of each attempt.
type fakeChannel struct {
	name string
	rec  *recorder
	mu   sync.Mutex
	fail func(m *connector.Message) error
	max  int // Split limit; 0: no splitting
	seq  int
}

var (
	_ connector.Channel  = (*fakeChannel)(nil)
	_ connector.Splitter = (*fakeChannel)(nil)
)

func (f *fakeChannel) Name() string                    { return f.name }
func (f *fakeChannel) Start(ctx context.Context) error { return nil }
func (f *fakeChannel) Stop(ctx context.Context) error  { return nil }

func (f *fakeChannel) Send(ctx context.Context, to string, m *connector.Message) (string, error) {
	f.mu.Lock()
	fail := f.fail
	f.seq++
	id := fmt.Sprintf("R%d", f.seq)
	f.mu.Unlock()
	if fail != nil {
		if err := fail(m); err != nil {
			return "", err
		}
	}
	f.rec.add(sent{To: to, Kind: m.Kind, Text: m.Text})
	return id, nil
}

func (f *fakeChannel) Split(text string) []string {
	if f.max == 0 || len(text) <= f.max {
		return []string{text}
	}
	var parts []string
	for len(text) > f.max {
		parts, text = append(parts, text[:f.max]), text[f.max:]
	}
	return append(parts, text)
}

// fakeVendor is a Vendor whose behaviour each test scripts.
type fakeVendor struct {
	name string
	sink connector.EventSink
	rec  *recorder

	mu      sync.Mutex
	opens   int
	resumes int
	onOpen  func(c *connector.Conversation) error // after Open is recorded
	send    func(m *connector.Message) error      // decides each Send
	resume  func(c *connector.Conversation) error
}

var (
	_ connector.Vendor        = (*fakeVendor)(nil)
	_ connector.Resumer       = (*fakeVendor)(nil)
	_ connector.MessageLeaver = (*fakeVendor)(nil)
)

func (v *fakeVendor) Name() string                    { return v.name }
func (v *fakeVendor) Start(ctx context.Context) error { return nil }
func (v *fakeVendor) Stop(ctx context.Context) error  { return nil }

func (v *fakeVendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	v.mu.Lock()
	v.opens++
	n, onOpen := v.opens, v.onOpen
	v.mu.Unlock()
	if onOpen != nil {
		if err := onOpen(c); err != nil {
			return nil, err
		}
	}
	return json.RawMessage(fmt.Sprintf(`{"chat":%d}`, n)), nil
}

func (v *fakeVendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	if len(c.Session) == 0 { // as the real vendors: nothing to send on
		return connector.Permanent(errors.New("no session stored"))
	}
	v.mu.Lock()
	send := v.send
	v.mu.Unlock()
	if send != nil {
		if err := send(m); err != nil {
			return err
		}
	}
	v.rec.add(sent{To: c.Customer, Kind: m.Kind, Text: m.Text})
	return nil
}

func (v *fakeVendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	v.rec.add(sent{To: c.Customer, Kind: connector.KindEnd, Text: reason})
	return nil
}

func (v *fakeVendor) LeaveMessage(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	v.rec.add(sent{To: c.Customer, Kind: connector.KindLeaveMessage, Text: m.Text})
	return nil
}

func (v *fakeVendor) Resume(ctx context.Context, c *connector.Conversation) error {
	v.mu.Lock()
	v.resumes++
	resume := v.resume
	v.mu.Unlock()
	if resume != nil {
		return resume(c)
	}
	return nil
}

// harness is a Router over the real SQLite store with one fake channel and
// one fake vendor.
type harness struct {
	t       testing.TB
	store   connector.Store
	router  *connector.Router
	channel *fakeChannel
	// asChannel, when set, is what the router gets instead of channel (a
	// wrapper with more abilities).
	asChannel connector.Channel
	vendor    *fakeVendor
	toUser    *recorder
	toAgent   *recorder
	conv      connector.ConversationConfig
	notices   connector.Notices
	dbPath    string
	stopOnce  sync.Once
	// wrap, when set, is the store the router gets, around the real one (to
	// inject failures).
	wrap func(connector.Store) connector.Store
	// open, when set, opens the store instead of SQLite at dbPath.
	open func(ctx context.Context) (connector.Store, error)
	// log, when set, is the router's logger (to observe its decisions).
	log *zap.Logger
}

func quickConversation() connector.ConversationConfig {
	return connector.ConversationConfig{InactivityTimeout: time.Hour, RetryInitial: 5 * time.Millisecond,
		RetryMax: 50 * time.Millisecond, GiveUpAfter: time.Hour, ContextLines: 5, ReopenWindow: time.Minute,
		OutboxSweep: time.Minute}
}

// newHarness builds and starts a router; tweak changes the config first.
func newHarness(t testing.TB, tweak func(h *harness)) *harness {
	t.Helper()
	h := &harness{t: t, toUser: newRecorder(), toAgent: newRecorder(), conv: quickConversation(),
		notices: connector.DefaultNotices(), dbPath: filepath.Join(t.TempDir(), "c.db")}
	h.channel = &fakeChannel{name: "sms.main", rec: h.toUser}
	h.vendor = &fakeVendor{name: "whoson.sales", rec: h.toAgent}
	if tweak != nil {
		tweak(h)
	}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx := context.Background()
	var st connector.Store
	var err error
	if h.open != nil {
		st, err = h.open(ctx)
	} else {
		st, err = sqlite.Open(ctx, h.dbPath)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	log := zap.NewNop()
	if tt, ok := h.t.(*testing.T); ok && testing.Verbose() {
		log = zaptest.NewLogger(tt)
	}
	if h.log != nil {
		log = h.log
	}
	var rs connector.Store = st
	if h.wrap != nil {
		rs = h.wrap(st)
	}
	r, err := connector.NewRouter(connector.RouterConfig{Store: rs, Logger: log, Conversation: h.conv,
		Notices: h.notices, VendorFor: func(string) (string, bool) { return "whoson.sales", true }})
	if err != nil {
		h.t.Fatal(err)
	}
	h.vendor.sink = r
	if h.asChannel != nil {
		r.AddChannel(h.asChannel)
	} else {
		r.AddChannel(h.channel)
	}
	r.AddVendor(h.vendor)
	if err := r.Start(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.store, h.router = st, r
	h.stopOnce = sync.Once{}
}

func (h *harness) stop() {
	h.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.router.Stop(ctx)
		if err := h.store.Close(); err != nil {
			h.t.Errorf("close store: %v", err)
		}
	})
}

// restart stops the router and starts a new one on the same database.
func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) inbound(customer, sid, text string) {
	h.t.Helper()
	err := h.router.Receive(context.Background(), connector.Inbound{Channel: "sms.main",
		Customer: customer, Text: text, SourceID: sid})
	if err != nil {
		h.t.Fatalf("receive %s: %v", sid, err)
	}
}

// event hands the router an agent event for the customer's open conversation.
func (h *harness) event(customer string, e connector.Event) {
	h.t.Helper()
	e.ConversationID = h.openConversation(customer).ID
	if err := h.router.Event(context.Background(), e); err != nil {
		h.t.Fatalf("event %s: %v", e.Type, err)
	}
}

func (h *harness) openConversation(customer string) *connector.Conversation {
	h.t.Helper()
	open, err := h.store.OpenConversations(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range open {
		if c.Customer == customer {
			return c
		}
	}
	h.t.Fatalf("no open conversation for %s", customer)
	return nil
}

// idle waits until the router has nothing left to do: what has not
// arrived by then never will.
func (h *harness) idle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.router.WaitIdle(ctx); err != nil {
		h.t.Fatalf("router not idle: %v", err)
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func texts(ss []sent) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s.Kind) + ":" + s.Text
	}
	return out
}

func hasPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func (v *fakeVendor) openCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.opens
}
