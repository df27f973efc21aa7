package slack

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The workspace every test uses.
const (
	chSupport = "C0SUPPORT1"
	chOther   = "C0OTHER001"
	dmAnn     = "D0ANN00001"
	ann       = "U0ANN00001"
	otherBot  = "B0OTHER001"
)

// fakeSink commits in memory: it de-duplicates by source id like the store,
// and can be told to fail or to hold commits.
type fakeSink struct {
	mu     sync.Mutex
	got    []connector.Inbound
	seen   map[string]bool
	calls  int
	fail   error
	panics int           // the next this many Receive calls panic
	hold   chan struct{} // non-nil: Receive waits for it to close
	open   []connector.CustomerCursor
	stored []string // source ids the store held before the test
	// trackOpen: a message that starts a conversation adds it to open, as
	// the store would list it.
	trackOpen bool
	// progress is the send progress store channels built on this sink get;
	// nil builds them without one (in memory).
	progress *fakeProgress
}

// fakeProgress is the core's send progress store as a map. It outlives the
// channels built on it, as the database outlives a crashed process.
type fakeProgress struct {
	mu    sync.Mutex
	m     map[int64][]byte
	saves int
	// first holds the first record saved for each message: what a process
	// that died right after that save left behind.
	first map[int64][]byte
}

func newFakeProgress() *fakeProgress {
	return &fakeProgress{m: map[int64][]byte{}, first: map[int64][]byte{}}
}

func (f *fakeProgress) LoadProgress(_ context.Context, id int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[id], nil
}

func (f *fakeProgress) SaveProgress(_ context.Context, id int64, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	if _, ok := f.first[id]; !ok && p != nil {
		f.first[id] = append([]byte(nil), p...)
	}
	if p == nil {
		delete(f.m, id)
	} else {
		f.m[id] = append([]byte(nil), p...)
	}
	return nil
}

func (f *fakeProgress) saveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saves
}

// record returns the stored record of message id, decoded.
func (f *fakeProgress) record(t testing.TB, id int64) progress {
	t.Helper()
	f.mu.Lock()
	b := f.m[id]
	f.mu.Unlock()
	p, err := decodeProgress(b)
	if err != nil {
		t.Fatalf("record of message %d: %v", id, err)
	}
	return p
}

func (s *fakeSink) Receive(ctx context.Context, in connector.Inbound) error {
	if err := ctx.Err(); err != nil {
		return err // as the store: a commit whose time is up fails
	}
	s.mu.Lock()
	s.calls++
	hold, fail := s.hold, s.fail
	if s.panics > 0 {
		s.panics--
		s.mu.Unlock()
		panic("fakeSink: a bug while committing " + in.SourceID)
	}
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[in.SourceID] {
		s.seen[in.SourceID] = true
		s.got = append(s.got, in)
		if s.trackOpen && !in.Continues {
			s.open = append(s.open, connector.CustomerCursor{Customer: in.Customer, LastSourceID: in.SourceID})
		}
	}
	return nil
}

func (s *fakeSink) DeliveryStatus(context.Context, string, string, connector.Delivery, string) error {
	return nil
}

func (s *fakeSink) OpenCustomers(context.Context, string) ([]connector.CustomerCursor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]connector.CustomerCursor(nil), s.open...), nil
}

// NewestSourceID is the greatest source id with the prefix committed or
// listed in stored (what the store held before the test).
func (s *fakeSink) NewestSourceID(_ context.Context, _, prefix string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	newest := ""
	for _, id := range append(slices.Collect(maps.Keys(s.seen)), s.stored...) {
		if strings.HasPrefix(id, prefix) && id > newest {
			newest = id
		}
	}
	return newest, nil
}

func (s *fakeSink) inbound() []connector.Inbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]connector.Inbound(nil), s.got...)
}

// env is one test's fake Slack, sink and channel.
type env struct {
	t    *testing.T
	fake *slacktest.Server
	sink *fakeSink
	ch   *Channel
	web  *httptest.Server // the channel's routes, as the core serves them
}

// newEnv starts a fake Slack with a workspace and builds a channel for it;
// socket selects Socket Mode, else the Events API. tweak edits the config.
func newEnv(t *testing.T, socket bool, tweak func(cfg map[string]any)) *env {
	t.Helper()
	fake := slacktest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetRetryDelay(100 * time.Millisecond)
	fake.SetAckTimeout(500 * time.Millisecond)
	fake.AddUser(slacktest.User{ID: ann, Name: "ann", RealName: "Ann Lee", DisplayName: "Ann", Email: "ann@example.com"})
	fake.AddChannel(slacktest.Channel{ID: chSupport, Name: "support"})
	fake.AddChannel(slacktest.Channel{ID: chOther, Name: "random"})
	fake.AddChannel(slacktest.Channel{ID: dmAnn, IM: true, User: ann})
	e := &env{t: t, fake: fake, sink: &fakeSink{progress: newFakeProgress()}}
	mux := http.NewServeMux()
	e.web = httptest.NewServer(mux)
	t.Cleanup(e.web.Close)
	cfg := map[string]any{
		"bot_token": fake.BotToken, "signing_secret": fake.SigningSecret, "channels": []string{chSupport},
		"api_url": fake.APIURL(), "post_interval": "0s", "catch_up_interval": "10ms", "request_timeout": "2s",
	}
	if socket {
		cfg["app_token"] = fake.AppToken
	}
	if tweak != nil {
		tweak(cfg)
	}
	e.ch = build(t, cfg, e.sink, e.web.URL)
	for pattern, h := range e.ch.Routes() {
		mux.Handle(pattern, h)
	}
	if !socket {
		fake.SetEventsURL(e.web.URL + "/slack/test/events")
	}
	return e
}

// build makes a channel named slack.test from a config table.
func build(t testing.TB, cfg map[string]any, sink *fakeSink, publicURL string) *Channel {
	t.Helper()
	inst := connector.NewInstance("channels.slack.test", "slack", "test", func(v any) error {
		b, err := toml.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = toml.Decode(string(b), v)
		return err
	})
	env := connector.ChannelEnv{Instance: inst, Logger: zaptest.NewLogger(t), Sink: sink,
		Conversations: sink, PublicURL: publicURL}
	if sink.progress != nil {
		env.Progress = sink.progress
	}
	ch, err := New(env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ch
}

func (e *env) start() {
	e.t.Helper()
	if err := e.ch.Start(context.Background()); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.ch.Stop(ctx); err != nil {
			e.t.Errorf("Stop: %v", err)
		}
	})
	e.waitFor("the channel ready", func() bool { return e.ch.Health().Ready })
}

// waitFor waits up to 10 s for cond, re-checking whenever the fake records
// something and every 10 ms (the sink is not the fake).
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitInbound waits until the sink has n messages and returns them.
func (e *env) waitInbound(n int) []connector.Inbound {
	e.t.Helper()
	e.waitFor("inbound messages", func() bool { return len(e.sink.inbound()) >= n })
	return e.sink.inbound()
}
