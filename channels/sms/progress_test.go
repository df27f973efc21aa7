package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
)

// fakeProgress is a SendProgress kept in a map, as the core's store would
// keep it across a restart.
type fakeProgress struct {
	mu      sync.Mutex
	records map[int64][]byte
	loadErr error // returned by LoadProgress when set
	loads   int   // LoadProgress calls
	saveErr error // returned by SaveProgress when set
}

var _ connector.SendProgress = (*fakeProgress)(nil)

func newFakeProgress() *fakeProgress { return &fakeProgress{records: map[int64][]byte{}} }

func (f *fakeProgress) LoadProgress(_ context.Context, id int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
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

// recovered is m as the core hands it to a later process.
func recovered(m *connector.Message) *connector.Message {
	c := *m
	c.Recovered = true
	return &c
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
	sid, err := w.restart(store).Send(context.Background(), customerNumber, recovered(m))
	if err != nil {
		t.Fatal(err)
	}
	sent := w.twilio.Sent()
	if len(sent) != 2 || sent[1].SID != sid || sent[0].Body == sent[1].Body {
		t.Fatalf("sent %d SMS (%+v), SID %s; want the two parts once each", len(sent), sent, sid)
	}
	// The core clears the record once it marked the message sent, not the
	// channel; the last part is not recorded (the mark follows). A crash
	// before the mark makes the message a recovered one in the next process,
	// which finds the last part at Twilio instead of sending it again.
	if p := w.record(7); p.Sent != 1 || !p.Pending.IsZero() {
		t.Errorf("record after the last part = %+v, want the first part only", p)
	}
	again, err := w.restart(store).Send(context.Background(), customerNumber, recovered(m))
	if err != nil || again != sid || len(w.twilio.Sent()) != 2 {
		t.Errorf("after a crash before the core recorded it: %q, %v, %d SMS", again, err, len(w.twilio.Sent()))
	}
}

// TestSendUnknownOutcomeAfterRestart: Twilio took the message but answered
// too late, and the list did not show it in time either; nothing was
// written before the call, and the restarted process, handed the message as
// recovered, lists before sending and finds it.
func TestSendUnknownOutcomeAfterRestart(t *testing.T) {
	store := newFakeProgress()
	w := newWorld(t, setup{progress: store, extra: `request_timeout = "200ms"`})
	w.twilio.SetLatency(time.Second)
	m := text(3, "are you there?")
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err == nil || connector.IsPermanent(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	if len(store.records) != 0 {
		t.Errorf("records after the unknown outcome: %v, want none (nothing is written before a call)", store.records)
	}
	waitSent(t, w, 1)
	w.twilio.SetLatency(0)
	sid, err := w.restart(store).Send(context.Background(), customerNumber, recovered(m))
	if err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want exactly one SMS", sid, sent)
	}
}

// TestSendUnknownOutcomeRetriedHere: the same, retried by the same process
// (the core's next attempt is not a recovered one): the channel remembers
// that the call had no answer and lists before sending.
func TestSendUnknownOutcomeRetriedHere(t *testing.T) {
	w := newWorld(t, setup{progress: newFakeProgress(), extra: `request_timeout = "200ms"`})
	w.twilio.SetLatency(time.Second)
	m := text(4, "still there?")
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err == nil || connector.IsPermanent(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	waitSent(t, w, 1)
	w.twilio.SetLatency(0)
	sid, err := w.ch.Send(context.Background(), customerNumber, m)
	if err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want exactly one SMS", sid, sent)
	}
	// Once sent, the next message to the customer does not list first.
	if _, err := w.ch.Send(context.Background(), customerNumber, text(5, "still there?")); err != nil {
		t.Fatal(err)
	}
	if n := len(w.twilio.Sent()); n != 2 {
		t.Errorf("%d SMS after a second message with the same text, want 2", n)
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
	sid, err := w.restart(left).Send(context.Background(), customerNumber, recovered(m))
	if err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want the one SMS sent before the crash", sid, sent)
	}
}

// TestSendRecoveredWithoutRecord: a power loss took the records kept
// without waiting for the disk; the recovered message looks for each part in
// turn and sends only what Twilio does not have.
func TestSendRecoveredWithoutRecord(t *testing.T) {
	for _, went := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("%d parts went", went), func(t *testing.T) {
			w := newWorld(t, setup{progress: newFakeProgress()})
			m := longHTML(8)
			first, _ := w.ch.render(m)
			for _, body := range first[:went] { // sent by the process that lost power
				if _, _, err := w.ch.create(context.Background(), w.ch.destination(customerNumber), body, nil); err != nil {
					t.Fatal(err)
				}
			}
			sid, err := w.restart(newFakeProgress()).Send(context.Background(), customerNumber, recovered(m))
			if err != nil {
				t.Fatal(err)
			}
			sent := w.twilio.Sent()
			if len(sent) != 2 || sent[0].Body != first[0] || sent[1].Body != first[1] || sent[1].SID != sid {
				t.Errorf("sent %+v, SID %s; want each of the two parts once", sent, sid)
			}
		})
	}
}

// TestSendFreshDoesNotLook: a message of this process's, neither recovered
// nor after an unknown outcome, is sent without listing, even when the
// customer already got the same text (an agent's second "ok").
func TestSendFreshDoesNotLook(t *testing.T) {
	w := newWorld(t, setup{progress: newFakeProgress()})
	for id := int64(1); id <= 2; id++ {
		if _, err := w.ch.Send(context.Background(), customerNumber, text(id, "ok")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.twilio.Sent()); n != 2 {
		t.Errorf("%d SMS for two messages saying ok, want 2", n)
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

// TestSendProgressStoreFails: a message that may have a record (split, or
// recovered) is not sent while the record cannot be read; the error is
// retryable.
func TestSendProgressStoreFails(t *testing.T) {
	refused := errors.New("database is locked")
	for _, m := range []*connector.Message{longHTML(1), recovered(text(2, "hi"))} {
		t.Run(fmt.Sprintf("message %d", m.ID), func(t *testing.T) {
			store := newFakeProgress()
			store.loadErr = refused
			w := newWorld(t, setup{progress: store})
			_, err := w.ch.Send(context.Background(), customerNumber, m)
			if !errors.Is(err, refused) || connector.IsPermanent(err) {
				t.Errorf("error %v, want a retryable one wrapping the store's", err)
			}
			if n := len(w.twilio.Sent()); n != 0 {
				t.Errorf("%d sent", n)
			}
		})
	}
}

// TestSendSingleReadsNoProgress: a single SMS of this process's cannot
// have a record (only a part before the last leaves one), so sending it
// does not read the store.
func TestSendSingleReadsNoProgress(t *testing.T) {
	store := newFakeProgress()
	w := newWorld(t, setup{progress: store})
	if _, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi")); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.loads != 0 {
		t.Errorf("%d progress reads for a single SMS, want none", store.loads)
	}
}

// TestSendProgressSaveFails: the record of a confirmed part cannot be
// saved; the attempt stops there, and the next one (in the same process)
// finds that part at Twilio and sends only the rest.
func TestSendProgressSaveFails(t *testing.T) {
	refused := errors.New("database is locked")
	store := newFakeProgress()
	store.saveErr = refused
	w := newWorld(t, setup{progress: store})
	m := longHTML(2)
	_, err := w.ch.Send(context.Background(), customerNumber, m)
	if !errors.Is(err, refused) || connector.IsPermanent(err) {
		t.Errorf("error %v, want a retryable one wrapping the store's", err)
	}
	if n := len(w.twilio.Sent()); n != 1 {
		t.Fatalf("%d sent, want the first part", n)
	}
	store.mu.Lock()
	store.saveErr = nil
	store.mu.Unlock()
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err != nil {
		t.Fatal(err)
	}
	if sent := w.twilio.Sent(); len(sent) != 2 || sent[0].Body == sent[1].Body {
		t.Errorf("sent %+v; want each part once", sent)
	}
}

// TestSendProgressThroughCore: the same crash as TestSendResumesAfterRestart,
// with the record kept by the core's Router in SQLite and the database
// reopened in between.
func TestSendProgressThroughCore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	st, core := openCore(t, ctx, path)
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

	st, core = openCore(t, ctx, path)
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

// TestSendAgainAfterLostMark: a message this process sent is handed over
// again (its sent mark was lost by the store while the process lived), as
// Recovered, which the core sets (TestRecoveredWhenMarkLost): the channel
// finds it at Twilio and answers the same SID instead of sending it twice;
// a long one, part by part.
func TestSendAgainAfterLostMark(t *testing.T) {
	for _, m := range []*connector.Message{text(7, "your table is ready"), longHTML(8)} {
		t.Run(fmt.Sprint(m.ID), func(t *testing.T) {
			w := newWorld(t, setup{progress: newFakeProgress()})
			first, err := w.ch.Send(context.Background(), customerNumber, m)
			if err != nil {
				t.Fatal(err)
			}
			n := len(w.twilio.Sent())
			again, err := w.ch.Send(context.Background(), customerNumber, recovered(m))
			if err != nil {
				t.Fatal(err)
			}
			if again != first || len(w.twilio.Sent()) != n {
				t.Errorf("sent again: SID %s then %s, %d SMS then %d", first, again, n, len(w.twilio.Sent()))
			}
		})
	}
}

// TestRetryAfterCarrierFailureSendsAgain: a message that Twilio reported
// undelivered, retried by an operator (the same message id, in this process
// or recovered in the next), goes out again: the reconcile does not take the
// failed first send for it.
func TestRetryAfterCarrierFailureSendsAgain(t *testing.T) {
	for _, rec := range []bool{false, true} {
		t.Run(fmt.Sprint("recovered=", rec), func(t *testing.T) {
			w := newWorld(t, setup{progress: newFakeProgress()})
			w.twilio.SetUndelivered(customerNumber, 30003)
			m := text(9, "call us back")
			if _, err := w.ch.Send(context.Background(), customerNumber, m); err != nil {
				t.Fatal(err)
			}
			eventually(t, "undelivered report", func() bool {
				d := w.sink.delivery()
				return len(d) == 1 && d[0].State == connector.DeliveryFailed
			})
			w.twilio.SetUndelivered(customerNumber, 0)
			retry := m
			if rec {
				retry = recovered(m)
			}
			if _, err := w.ch.Send(context.Background(), customerNumber, retry); err != nil {
				t.Fatal(err)
			}
			if n := len(w.twilio.Sent()); n != 2 {
				t.Errorf("%d SMS, want the failed one and the retry", n)
			}
		})
	}
}
