package slack

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// daemon is the core (Router over the SQLite store) with this Slack channel,
// as connectord runs them; restart keeps the database, as after a crash.
type daemon struct {
	t      *testing.T
	dbPath string
	cfg    map[string]any
	store  *sqlite.Store
	router *connector.Router
	ch     *Channel
	saved  *savedIDs
}

// savedIDs notes which messages the channel recorded progress for, on the
// way to the Router.
type savedIDs struct {
	connector.SendProgress
	mu  sync.Mutex
	ids []int64
}

func (s *savedIDs) SaveProgress(ctx context.Context, id int64, p []byte) error {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	return s.SendProgress.SaveProgress(ctx, id, p)
}

func (s *savedIDs) first() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return 0, false
	}
	return s.ids[0], true
}

func (d *daemon) start() {
	d.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, d.dbPath)
	if err != nil {
		d.t.Fatal(err)
	}
	r, err := connector.NewRouter(connector.RouterConfig{Store: st, Logger: zap.NewNop(),
		Conversation: connector.ConversationConfig{InactivityTimeout: time.Hour, RetryInitial: 5 * time.Millisecond,
			RetryMax: 50 * time.Millisecond, GiveUpAfter: time.Hour},
		Notices: connector.DefaultNotices(), VendorFor: func(string) (string, bool) { return "", false }})
	if err != nil {
		d.t.Fatal(err)
	}
	inst := connector.NewInstance("channels.slack.test", "slack", "test", func(v any) error {
		b, err := toml.Marshal(d.cfg)
		if err != nil {
			return err
		}
		_, err = toml.Decode(string(b), v)
		return err
	})
	d.saved = &savedIDs{SendProgress: r}
	ch, err := New(connector.ChannelEnv{Instance: inst, Logger: zaptest.NewLogger(d.t), Sink: r,
		Conversations: r, Progress: d.saved})
	if err != nil {
		d.t.Fatal(err)
	}
	r.AddChannel(ch)
	if err := ch.Start(ctx); err != nil {
		d.t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		d.t.Fatal(err)
	}
	d.store, d.router, d.ch = st, r, ch
}

func (d *daemon) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.router.Stop(ctx)
	if err := d.ch.Stop(ctx); err != nil {
		d.t.Errorf("stop channel: %v", err)
	}
	if err := d.store.Close(); err != nil {
		d.t.Errorf("close store: %v", err)
	}
}

// Through the real core: a vendor's message with two files stops after the
// first upload; the process dies; the next one, on the same database,
// uploads only the second file, and the store drops the record once sent.
func TestSendProgressThroughCoreSurvivesRestart(t *testing.T) {
	files := fileServer(t)
	e := newEnv(t, false, nil) // the fake Slack only; the core builds the channel
	to, root := e.thread("help")
	d := &daemon{t: t, dbPath: filepath.Join(t.TempDir(), "c.db"), cfg: map[string]any{
		"bot_token": e.fake.BotToken, "signing_secret": e.fake.SigningSecret, "channels": []string{chSupport},
		"api_url": e.fake.APIURL(), "post_interval": "0s", "fetch_allow": []string{"127.0.0.0/8"}}}
	e.fake.Fail("files.completeUploadExternal", slacktest.Fault{Times: 1})    // the first upload goes through
	e.fake.Fail("files.completeUploadExternal", slacktest.Fault{Status: 503}) // every later one fails
	d.start()
	err := d.router.Outbound(context.Background(), connector.Outbound{Vendor: "whoson.sales", Channel: "slack.test",
		Customer: to, Text: "two files", SourceID: "v-1",
		Attachments: []connector.Attachment{{URL: files.URL + "/a.pdf", Name: "a.pdf"}, {URL: files.URL + "/b.pdf", Name: "b.pdf"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the second upload failing", func() bool { return len(e.fake.Calls("files.completeUploadExternal")) >= 2 })
	id, ok := d.saved.first()
	if !ok {
		t.Error("no progress recorded through the core")
	} else if b, err := d.store.SendProgress(context.Background(), id); err != nil {
		t.Error(err)
	} else if p, err := decodeProgress(b); err != nil || p.Files != 1 || p.TS == "" {
		t.Errorf("stored record %q = %+v, %v; want the ts and 1 file", b, p, err)
	}
	d.stop() // the crash: the second upload keeps failing until then

	e.fake.ClearFaults()
	d.start()
	defer d.stop()
	e.waitFor("the message sent", func() bool {
		out, err := d.store.Outbox(context.Background())
		return err == nil && len(out) == 0
	})
	want := []string{"two files", "file:a.pdf", "file:b.pdf"}
	if got := threadNames(e.fake, root.TS); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("thread = %q, want %q", got, want)
	}
	if b, err := d.store.SendProgress(context.Background(), id); ok && (err != nil || b != nil) {
		t.Errorf("record after sending = %q, %v; want none", b, err)
	}
}
