package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// fakeProgress is a SendProgress kept in a map, as the core's store would
// keep it across a restart.
type fakeProgress struct {
	mu      sync.Mutex
	records map[int64][]byte
	loadErr error // returned by LoadProgress when set
	saveErr error // returned by SaveProgress when set
}

var _ connector.SendProgress = (*fakeProgress)(nil)

func newFakeProgress() *fakeProgress { return &fakeProgress{records: map[int64][]byte{}} }

func (f *fakeProgress) LoadProgress(_ context.Context, id int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	return bytes.Clone(f.records[id]), nil
}

func (f *fakeProgress) SaveProgress(_ context.Context, id int64, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.saveErr != nil {
		return f.saveErr
	}
	if p == nil {
		delete(f.records, id)
	} else {
		f.records[id] = bytes.Clone(p)
	}
	return nil
}

// snapshot is the store as a process that crashed now would leave it.
func (f *fakeProgress) snapshot() *fakeProgress {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &fakeProgress{records: maps.Clone(f.records)}
}

// record decodes what the channel's store holds for message id.
func (w *world) record(id int64) progress {
	w.t.Helper()
	b, err := w.ch.progress.LoadProgress(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	var p progress
	if b != nil {
		if err := json.Unmarshal(b, &p); err != nil {
			w.t.Fatalf("record %q: %v", b, err)
		}
	}
	return p
}

// restart builds a new channel, as a restarted process would, on the same
// fake Twilio and with the given progress store.
func (w *world) restart(store connector.SendProgress) *Channel {
	w.t.Helper()
	env := w.env
	env.Progress = store
	ch, err := New(env)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	return ch
}

// longHTML renders to two SMS.
func longHTML(id int64) *connector.Message {
	m := text(id, "<p>"+strings.Repeat("word ", 400)+"</p>")
	m.Format = connector.FormatHTML
	return m
}

// failSecondPart makes Twilio refuse, with a 500, the part after the first.
func failSecondPart(tw *smstest.Server) {
	var once sync.Once
	tw.OnSent(func(smstest.Sent) {
		once.Do(func() { tw.FailNext(1, 500, 0, "Internal Server Error") })
	})
}

// TestSendResumesAfterRestart: the first part went out, the second failed,
// and the process restarted: the new channel sends only the second part.
func TestSendResumesAfterRestart(t *testing.T) {
	store := newFakeProgress()
	w := newWorld(t, setup{progress: store})
	failSecondPart(w.twilio)
	m := longHTML(7)
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err == nil || connector.IsPermanent(err) {
		t.Fatalf("first attempt: %v, want a retryable error for the second part", err)
	}
	if p := w.record(7); p.Sent != 1 || p.Parts != 2 || !p.Pending.IsZero() {
		t.Errorf("record after the first part = %+v", p)
	}
	sid, err := w.restart(store).Send(context.Background(), customerNumber, m)
	if err != nil {
		t.Fatal(err)
	}
	sent := w.twilio.Sent()
	if len(sent) != 2 || sent[1].SID != sid || sent[0].Body == sent[1].Body {
		t.Fatalf("sent %d SMS (%+v), SID %s; want the two parts once each", len(sent), sent, sid)
	}
	// The core clears the record once it marked the message sent, not the
	// channel: a crash before that must not repeat the last part. The last
	// part's confirmation is not written (a synced write per SMS saved): the
	// record still holds its call's start, so the next attempt lists first.
	if p := w.record(7); p.Sent != 1 || p.Pending.IsZero() {
		t.Errorf("record after the last part = %+v, want the first part and the last call's start", p)
	}
	again, err := w.restart(store).Send(context.Background(), customerNumber, m)
	if err != nil || again != sid || len(w.twilio.Sent()) != 2 {
		t.Errorf("after a crash before the core recorded it: %q, %v, %d SMS", again, err, len(w.twilio.Sent()))
	}
}

// TestSendUnknownOutcomeAfterRestart: Twilio took the message but answered
// too late, and the list did not show it in time either; the restarted
// process lists again before sending and finds it.
func TestSendUnknownOutcomeAfterRestart(t *testing.T) {
	store := newFakeProgress()
	w := newWorld(t, setup{progress: store, extra: `request_timeout = "200ms"`})
	w.twilio.SetLatency(time.Second)
	m := text(3, "are you there?")
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err == nil || connector.IsPermanent(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	if p := w.record(3); p.Pending.IsZero() || p.Sent != 0 {
		t.Errorf("record after the unknown outcome = %+v", p)
	}
	waitSent(t, w, 1)
	w.twilio.SetLatency(0)
	sid, err := w.restart(store).Send(context.Background(), customerNumber, m)
	if err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want exactly one SMS", sid, sent)
	}
}

// TestSendCrashDuringCall: the process dies while Twilio is creating the
// message (the store as it was then); the restarted process finds the
// message instead of sending it again.
func TestSendCrashDuringCall(t *testing.T) {
	store := newFakeProgress()
	w := newWorld(t, setup{progress: store})
	crashed := make(chan *fakeProgress, 1)
	w.twilio.OnSent(func(smstest.Sent) {
		select {
		case crashed <- store.snapshot():
		default:
		}
	})
	m := text(5, "one moment please")
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err != nil {
		t.Fatal(err)
	}
	left := <-crashed
	sid, err := w.restart(left).Send(context.Background(), customerNumber, m)
	if err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want the one SMS sent before the crash", sid, sent)
	}
}

// TestSendRefusedClearsPending: a refusal (a rate limit) means nothing was
// sent, so the retry does not list messages first.
func TestSendRefusedClearsPending(t *testing.T) {
	store := newFakeProgress()
	w := newWorld(t, setup{progress: store})
	w.twilio.FailNext(1, 429, 20429, "Too Many Requests")
	if _, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi")); err == nil {
		t.Fatal("no error")
	}
	if p := w.record(1); !p.Pending.IsZero() {
		t.Errorf("record after a refusal = %+v", p)
	}
}

// TestSendBadProgressRecord: a record the channel cannot resume from fails
// that message, naming the problem, and sends nothing.
func TestSendBadProgressRecord(t *testing.T) {
	tests := []struct{ name, record, want string }{
		{"not json", `{"parts":`, "unexpected end of JSON input"},
		{"other part count", `{"parts":3,"sent":1,"sid":"SM1"}`, "made for 3 parts, the message has 2"},
		{"sent past the end", `{"parts":2,"sent":3,"sid":"SM1"}`, "3 of 2 parts sent"},
		{"no sid", `{"parts":2,"sent":1}`, "SID missing"},
		{"too long", `{"parts":2,"sent":1,"sid":"` + strings.Repeat("S", 600) + `"}`, "at most 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeProgress()
			store.records[9] = []byte(tt.record)
			w := newWorld(t, setup{progress: store})
			_, err := w.ch.Send(context.Background(), customerNumber, longHTML(9))
			if !connector.IsPermanent(err) || !errors.Is(err, errBadProgress) ||
				!strings.Contains(err.Error(), "message 9") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a permanent one about message 9 saying %q", err, tt.want)
			}
			if n := len(w.twilio.Sent()); n != 0 {
				t.Errorf("%d sent", n)
			}
			if got := string(store.records[9]); got != tt.record {
				t.Errorf("record changed to %q", got)
			}
		})
	}
}

// TestSendProgressStoreFails: without a record of what went out, nothing is
// sent; the error is retryable.
func TestSendProgressStoreFails(t *testing.T) {
	refused := errors.New("database is locked")
	for _, tt := range []struct {
		name string
		set  func(*fakeProgress)
	}{
		{"load", func(f *fakeProgress) { f.loadErr = refused }},
		{"save", func(f *fakeProgress) { f.saveErr = refused }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeProgress()
			tt.set(store)
			w := newWorld(t, setup{progress: store})
			_, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
			if !errors.Is(err, refused) || connector.IsPermanent(err) {
				t.Errorf("error %v, want a retryable one wrapping the store's", err)
			}
			if n := len(w.twilio.Sent()); n != 0 {
				t.Errorf("%d sent", n)
			}
		})
	}
}

// TestSendProgressThroughCore: the same crash as TestSendResumesAfterRestart,
// with the record kept by the core's Router in SQLite and the database
// reopened in between.
func TestSendProgressThroughCore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	open := func() (*sqlite.Store, *connector.Router) {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := connector.NewRouter(connector.RouterConfig{Store: st, Logger: zap.NewNop(),
			Notices: connector.DefaultNotices(), Conversation: connector.ConversationConfig{
				RetryInitial: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		return st, r
	}
	st, core := open()
	m := longHTML(0)
	res, err := st.RecordOutbound(ctx, connector.Outbound{Vendor: "whoson.sales", Channel: "sms.main",
		Customer: customerNumber, Text: m.Text, Format: m.Format, SourceID: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, setup{progress: core})
	failSecondPart(w.twilio)
	if _, err := w.ch.Send(ctx, customerNumber, res.Message); err == nil {
		t.Fatal("first attempt: no error")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, core = open()
	defer st.Close()
	outbox, err := st.Outbox(ctx)
	if err != nil || len(outbox) != 1 || outbox[0].ID != res.Message.ID {
		t.Fatalf("outbox %+v, %v", outbox, err)
	}
	sid, err := w.restart(core).Send(ctx, customerNumber, outbox[0])
	if err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 2 || sent[1].SID != sid {
		t.Fatalf("sent %+v, SID %s; want the two parts once each", sent, sid)
	}
	if err := st.MarkSent(ctx, outbox[0].ID, sid); err != nil {
		t.Fatal(err)
	}
	if b, err := st.SendProgress(ctx, outbox[0].ID); b != nil || err != nil {
		t.Errorf("record after MarkSent: %q, %v", b, err)
	}
}
