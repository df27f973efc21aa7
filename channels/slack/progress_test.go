package slack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

// fileServer serves every path as a small file named after it.
func fileServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "content of "+r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

// twoFiles is an agent line with two attachments on files.
func twoFiles(files *httptest.Server) *connector.Message {
	return &connector.Message{ID: 31, Kind: connector.KindText, Text: "two files", Agent: "Dee", CreatedAt: time.Now(),
		Attachments: []connector.Attachment{{URL: files.URL + "/a.pdf", Name: "a.pdf"}, {URL: files.URL + "/b.pdf", Name: "b.pdf"}}}
}

// failSecondUpload lets one upload through and fails the next, retryably.
func failSecondUpload(fake *slacktest.Server) {
	fake.Fail("files.completeUploadExternal", slacktest.Fault{Times: 1})
	fake.Fail("files.completeUploadExternal", slacktest.Fault{Status: 503, Times: 1})
}

// threadNames lists a thread's replies: the text, or "file:NAME" per file.
func threadNames(fake *slacktest.Server, root string) []string {
	var out []string
	for _, r := range fake.Replies(chSupport, root) {
		if r.Text != "" {
			out = append(out, r.Text)
		}
		for _, f := range r.Files {
			out = append(out, "file:"+f.Name)
		}
	}
	return out
}

// A send that stops after its first upload, then a new process on the same
// progress store: neither the text nor the first file goes out again.
func TestSendResumesAfterCrashBetweenUploads(t *testing.T) {
	files := fileServer(t)
	e := newEnv(t, true, func(cfg map[string]any) { cfg["fetch_allow"] = []string{"127.0.0.0/8"} })
	e.start()
	to, root := e.thread("help")
	failSecondUpload(e.fake)
	m := twoFiles(files)
	if _, err := e.send(to, m); err == nil {
		t.Fatal("first attempt succeeded despite the failed upload")
	}
	first := e.sink.progress.record(t, m.ID)
	if first.TS == "" || first.Files != 1 {
		t.Errorf("record after the first attempt = %+v; want the ts and 1 file", first)
	}

	again := build(t, map[string]any{"bot_token": e.fake.BotToken, "app_token": e.fake.AppToken,
		"api_url": e.fake.APIURL(), "channels": []string{chSupport}, "post_interval": "0s",
		"fetch_allow": []string{"127.0.0.0/8"}}, e.sink, "")
	if err := again.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer again.Stop(context.Background())
	repliesCalls := len(e.fake.Calls("conversations.replies"))
	ts, err := again.Send(context.Background(), to, m)
	if err != nil {
		t.Fatal(err)
	}
	if ts != first.TS && first.TS != "" {
		t.Errorf("Send after restart = %s, want the first post's ts %s", ts, first.TS)
	}
	want := []string{"two files", "file:a.pdf", "file:b.pdf"}
	if got := threadNames(e.fake, root.TS); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("thread = %q, want %q", got, want)
	}
	if n := len(e.fake.Calls("conversations.replies")) - repliesCalls; n != 0 {
		t.Errorf("%d history reads for a post the record already knew", n)
	}
}

// A post whose outcome is unknown is recorded with the time the attempt
// began, so that a new process checks the thread before posting again.
func TestSendRecordsUnknownOutcome(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	e.fake.Fail("chat.postMessage", slacktest.Fault{Status: 500, AfterApply: true, Times: 1})
	// Created after the next process starts (clocks differ): only the
	// record can tell that process an attempt may have posted it.
	m := &connector.Message{ID: 44, Kind: connector.KindText, Text: "once", CreatedAt: time.Now().Add(time.Minute)}
	before := time.Now()
	if _, err := e.send(to, m); err == nil {
		t.Fatal("first attempt succeeded despite the fault")
	}
	rec := e.sink.progress.record(t, m.ID)
	if rec.Unknown.Before(before) || rec.Unknown.After(time.Now()) || rec.TS != "" {
		t.Errorf("record = %+v; want the unknown outcome's start, after %v", rec, before)
	}
	again := build(t, map[string]any{"bot_token": e.fake.BotToken, "app_token": e.fake.AppToken,
		"api_url": e.fake.APIURL(), "channels": []string{chSupport}, "post_interval": "0s"}, e.sink, "")
	if err := again.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer again.Stop(context.Background())
	if _, err := again.Send(context.Background(), to, m); err != nil {
		t.Fatal(err)
	}
	if got := threadNames(e.fake, root.TS); len(got) != 1 {
		t.Errorf("thread = %q, want the line once", got)
	}
}

// A record that cannot be read is reported and the send goes on carefully:
// the text is looked for before it is posted again.
func TestSendUnreadableRecordChecksThread(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	m := &connector.Message{ID: 45, Kind: connector.KindText, Text: "once"}
	ts, err := e.send(to, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"ts":"12;DROP"}`, `{"files":-1}`, `not json`, strings.Repeat(" ", maxProgressBytes+1)} {
		e.sink.progress.SaveProgress(t.Context(), m.ID, []byte(bad))
		got, err := e.send(to, m)
		if err != nil || got != ts {
			t.Errorf("record %.20q: Send = %q, %v; want the earlier ts %s", bad, got, err, ts)
		}
	}
	if n := len(threadNames(e.fake, root.TS)); n != 1 {
		t.Errorf("thread has %d replies, want 1", n)
	}
}

// A store that cannot say what earlier attempts did stops the send: sending
// blind could repeat what went out.
func TestSendProgressStoreUnavailable(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	failing := &failingProgress{err: errors.New("database is locked")}
	e.ch.progress = failing
	_, err := e.send(to, &connector.Message{ID: 46, Kind: connector.KindText, Text: "hi"})
	if err == nil || connector.IsPermanent(err) || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("Send = %v; want a retryable error naming the store's", err)
	}
	if n := len(threadNames(e.fake, root.TS)); n != 0 {
		t.Errorf("posted %d replies without knowing the progress", n)
	}
}

type failingProgress struct{ err error }

func (f *failingProgress) LoadProgress(context.Context, int64) ([]byte, error) { return nil, f.err }
func (f *failingProgress) SaveProgress(context.Context, int64, []byte) error   { return f.err }

// Built without the core, the channel keeps progress in memory: a retry in
// the same process resumes, and the record is dropped once sent.
func TestSendWithoutProgressStoreResumesInMemory(t *testing.T) {
	files := fileServer(t)
	e := newEnv(t, true, func(cfg map[string]any) { cfg["fetch_allow"] = []string{"127.0.0.0/8"} })
	e.sink.progress = nil
	e.ch = build(t, map[string]any{"bot_token": e.fake.BotToken, "app_token": e.fake.AppToken,
		"api_url": e.fake.APIURL(), "channels": []string{chSupport}, "post_interval": "0s",
		"fetch_allow": []string{"127.0.0.0/8"}}, e.sink, "")
	e.start()
	mem := e.ch.ownProgress
	if mem == nil {
		t.Fatalf("progress = %T, want the channel's own MemoryProgress", e.ch.progress)
	}
	to, root := e.thread("help")
	failSecondUpload(e.fake)
	m := twoFiles(files)
	if _, err := e.send(to, m); err == nil {
		t.Fatal("first attempt succeeded despite the failed upload")
	}
	if _, err := e.send(to, m); err != nil {
		t.Fatal(err)
	}
	want := []string{"two files", "file:a.pdf", "file:b.pdf"}
	if got := threadNames(e.fake, root.TS); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("thread = %q, want %q", got, want)
	}
	if n := mem.Len(); n != 0 {
		t.Errorf("%d records kept after the message was sent", n)
	}
}

// Only the steps a retry needs are recorded: the attempt itself, before the
// post (so that whichever process retries, another instance's included,
// looks in the thread first), then, for a line with files, the text's ts and
// each upload.
func TestSendRecordsOnlyStepsBeforeAnother(t *testing.T) {
	files := fileServer(t)
	e := newEnv(t, true, func(cfg map[string]any) { cfg["fetch_allow"] = []string{"127.0.0.0/8"} })
	e.start()
	to, _ := e.thread("help")
	if _, err := e.send(to, &connector.Message{ID: 50, Kind: connector.KindText, Text: "plain"}); err != nil {
		t.Fatal(err)
	}
	if n := e.sink.progress.saveCount(); n != 1 {
		t.Errorf("a text-only line wrote %d records, want 1 (the attempt)", n)
	}
	if _, err := e.send(to, twoFiles(files)); err != nil {
		t.Fatal(err)
	}
	if n := e.sink.progress.saveCount() - 1; n != 4 {
		t.Errorf("a line with two files wrote %d records, want 4 (the attempt, the ts, each file)", n)
	}
}

// A process that dies during the post, or after it before the core
// recorded it sent, leaves the attempt recorded: the next attempt, by a
// process started before the message was stored (an instance that took the
// conversation over), finds the post in the thread and does not post again.
func TestSendAfterAnotherProcessDiedMidPost(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	m := &connector.Message{ID: 51, Kind: connector.KindText, Text: "posted once", CreatedAt: time.Now()}
	if _, err := e.send(to, m); err != nil {
		t.Fatal(err)
	}
	// What the store held while the post was under way, had the process
	// died then.
	e.sink.progress.mu.Lock()
	left := e.sink.progress.first[m.ID]
	e.sink.progress.mu.Unlock()
	if left == nil {
		t.Fatal("nothing was recorded before the post: a process dying in it leaves no trace")
	}
	if err := e.sink.progress.SaveProgress(context.Background(), m.ID, left); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(to, m); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range threadNames(e.fake, root.TS) {
		if name == "posted once" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the line is in the thread %d times, want once", n)
	}
}

// A step is recorded even when the attempt's context ends as it completes:
// the store gets saveGrace more.
func TestSaveProgressOutlivesAttemptContext(t *testing.T) {
	slow := &slowProgress{delay: 200 * time.Millisecond, got: map[int64][]byte{}}
	c := &Channel{progress: slow}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.saveProgress(ctx, 7, progress{TS: "1.2", Files: 1}); err != nil {
		t.Fatalf("saveProgress after the attempt ended: %v", err)
	}
	if string(slow.got[7]) != `{"ts":"1.2","files":1}` {
		t.Errorf("stored %q", slow.got[7])
	}
}

// slowProgress takes delay to store, and gives up when ctx ends first.
type slowProgress struct {
	delay time.Duration
	got   map[int64][]byte
}

func (s *slowProgress) LoadProgress(context.Context, int64) ([]byte, error) { return nil, nil }
func (s *slowProgress) SaveProgress(ctx context.Context, id int64, p []byte) error {
	select {
	case <-time.After(s.delay):
		s.got[id] = p
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
