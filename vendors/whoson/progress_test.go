package whoson

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// crashingProgress is a send-progress store that, once it has stored a
// record of crashAt parts sent, says so on crashed and blocks until the
// caller's context ends: the process dies right after that part.
type crashingProgress struct {
	*connector.MemoryProgress
	crashAt int
	crashed chan struct{}
	once    sync.Once
}

func (p *crashingProgress) SaveProgress(ctx context.Context, id int64, b []byte) error {
	if err := p.MemoryProgress.SaveProgress(ctx, id, b); err != nil {
		return err
	}
	if r, err := decodeSendRecord(b); err == nil && r.Sent == p.crashAt {
		p.once.Do(func() { close(p.crashed) })
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// newProgressHarness is newHarness with every vendor built on store.
func newProgressHarness(t *testing.T, op whosontest.Operator, store connector.SendProgress) *harness {
	t.Helper()
	srv, err := whosontest.New(whosontest.Config{Operator: op, APIKey: testServerKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h := &harness{t: t, srv: srv, progress: store}
	h.v, h.sink = h.vendor(nil)
	return h
}

// A message cut into 3 parts, the daemon killed after the second was
// written and recorded: the next process, given the same send-progress
// store, writes only the third.
func TestSendProgressSurvivesRestart(t *testing.T) {
	t.Parallel()
	store := &crashingProgress{MemoryProgress: connector.NewMemoryProgress(16), crashAt: 2, crashed: make(chan struct{})}
	h := newProgressHarness(t, whosontest.Operator{Name: "Alice"}, store)
	c := conversation(connector.Profile{})
	h.open(c)
	uid := chatUID(t, c)
	long := strings.Repeat("word ", 1700) // 8500 characters
	parts := splitText(long, maxLine)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	m := &connector.Message{ID: 7, Kind: connector.KindText, Text: long}
	sent := make(chan error, 1)
	go func() { sent <- h.v.Send(ctx(t), c, m) }()
	select {
	case <-store.crashed:
	case <-time.After(5 * time.Second):
		t.Fatal("the second part's progress was never saved")
	}
	if diff := cmp.Diff(parts[:2], h.visitorLines(2)); diff != "" {
		t.Fatalf("before the crash (-want +got):\n%s", diff)
	}
	if err := h.v.Stop(ctx(t)); err != nil { // the crash: sockets dropped, no Quit
		t.Fatal(err)
	}
	if err := <-sent; err == nil {
		t.Error("the interrupted Send reported success")
	}

	v2, _ := h.vendor(nil)
	if err := v2.Send(ctx(t), c, m); err != nil { // resumes the chat first
		t.Fatal(err)
	}
	if err := v2.Send(ctx(t), c, &connector.Message{ID: 8, Kind: connector.KindText, Text: "next"}); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string(nil), parts...), "next")
	if diff := cmp.Diff(want, h.visitorLines(4)); diff != "" {
		t.Errorf("operator saw (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, h.srv.VisitorLines(uid)); diff != "" {
		t.Errorf("chat %s (-want +got):\n%s", uid, diff)
	}
	b, err := store.LoadProgress(ctx(t), 7)
	if err != nil {
		t.Fatal(err)
	}
	// The last part leaves no record: the core's mark follows its write.
	if r, err := decodeSendRecord(b); err != nil || r != (sendRecord{Chat: uid, Parts: 3, Sent: 2}) {
		t.Errorf("record %s (%v), want the first 2 of 3 parts sent to %s", b, err, uid)
	}
}

// A stored record resumes the message only on the chat it was made for and
// when it fits the message; otherwise the message is written from its
// start (twice is better than lost), with a warning for a record that does
// not fit.
func TestSendProgressRecords(t *testing.T) {
	t.Parallel()
	store := connector.NewMemoryProgress(64)
	h := newProgressHarness(t, whosontest.Operator{Name: "Alice"}, store)
	long := strings.Repeat("word ", 1700)
	parts := splitText(long, maxLine)
	record := func(chat string, n, sent int) []byte {
		b, _ := json.Marshal(sendRecord{Chat: chat, Parts: n, Sent: sent})
		return b
	}
	for i, tc := range []struct {
		name   string
		stored func(uid string) []byte
		want   []string
		warned bool
	}{
		{"none", func(string) []byte { return nil }, parts, false},
		{"two of three", func(uid string) []byte { return record(uid, 3, 2) }, parts[2:], false},
		{"all sent", func(uid string) []byte { return record(uid, 3, 3) }, nil, false},
		{"another chat", func(string) []byte { return record("lost-chat", 3, 2) }, parts, false},
		{"other part count", func(uid string) []byte { return record(uid, 5, 2) }, parts, true},
		{"more sent than parts", func(uid string) []byte { return record(uid, 3, 4) }, parts, true},
		{"not JSON", func(string) []byte { return []byte("{") }, parts, true},
		{"too long", func(uid string) []byte { return []byte(strings.Repeat(" ", maxSendRecord) + string(record(uid, 3, 2))) }, parts, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conversation(connector.Profile{})
			h.open(c)
			uid := chatUID(t, c)
			id := int64(100 + i)
			if b := tc.stored(uid); b != nil {
				if err := store.SaveProgress(ctx(t), id, b); err != nil {
					t.Fatal(err)
				}
			}
			warned := h.logs.FilterMessageSnippet("send progress ignored").Len()
			if err := h.v.Send(ctx(t), c, &connector.Message{ID: id, Kind: connector.KindText, Text: long}); err != nil {
				t.Fatal(err)
			}
			if err := h.v.Send(ctx(t), c, &connector.Message{ID: id + 1000, Kind: connector.KindText, Text: "end"}); err != nil {
				t.Fatal(err)
			}
			waitLine(t, h.srv, uid, "end")
			want := append(append([]string(nil), tc.want...), "end")
			if diff := cmp.Diff(want, h.srv.VisitorLines(uid)); diff != "" {
				t.Errorf("operator saw (-want +got):\n%s", diff)
			}
			if got := h.logs.FilterMessageSnippet("send progress ignored").Len() > warned; got != tc.warned {
				t.Errorf("warned %v, want %v", got, tc.warned)
			}
		})
	}
}

// waitLine waits until chat uid's visitor lines end with last.
func waitLine(t *testing.T, srv *whosontest.Server, uid, last string) {
	t.Helper()
	waitFor(t, "line "+last, func() bool {
		lines := srv.VisitorLines(uid)
		return len(lines) > 0 && lines[len(lines)-1] == last
	})
}

// FuzzDecodeSendRecord feeds stored send-progress records through their
// decoder: it never panics, refuses a record past maxSendRecord, and what
// it decodes is at most 3 times its input (JSON turns each invalid UTF-8
// byte into a 3-byte U+FFFD) and round-trips.
func FuzzDecodeSendRecord(f *testing.F) {
	f.Add([]byte(`{"chat":"u1","parts":3,"sent":2}`))
	f.Add([]byte(`{"chat":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"parts":-1,"sent":9999999999999}`))
	f.Add([]byte("{\"chat\":\"\xff\xff\xff\"}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := decodeSendRecord(raw)
		if err != nil {
			return
		}
		if len(raw) > maxSendRecord || len(r.Chat) > 3*len(raw) {
			t.Fatalf("%d-byte record decoded to a %d-byte chat", len(raw), len(r.Chat))
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := decodeSendRecord(b); len(b) <= maxSendRecord && (err != nil || again != r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}

// countingProgress counts the reads and writes of a send-progress store.
type countingProgress struct {
	connector.SendProgress
	loads, saves atomic.Int64
}

func (c *countingProgress) LoadProgress(ctx context.Context, id int64) ([]byte, error) {
	c.loads.Add(1)
	return c.SendProgress.LoadProgress(ctx, id)
}

func (c *countingProgress) SaveProgress(ctx context.Context, id int64, p []byte) error {
	c.saves.Add(1)
	return c.SendProgress.SaveProgress(ctx, id, p)
}

// A line that fits one Message command costs the store neither a read nor a
// write; a split one is looked up once and records each part but the last;
// a retry of a message written whole writes nothing again.
func TestSendProgressOnlyForSplitOrRecovered(t *testing.T) {
	t.Parallel()
	store := &countingProgress{SendProgress: connector.NewMemoryProgress(64)}
	h := newProgressHarness(t, whosontest.Operator{Name: "Alice"}, store)
	c := conversation(connector.Profile{})
	h.open(c)
	for i := range 3 {
		h.send(c, int64(i+1), fmt.Sprint("line ", i+1))
	}
	if l, s := store.loads.Load(), store.saves.Load(); l != 0 || s != 0 {
		t.Errorf("3 single lines: %d loads and %d saves of send progress, want none", l, s)
	}
	long := strings.Repeat("word ", 1700) // 3 parts
	h.send(c, 4, long)
	if l, s := store.loads.Load(), store.saves.Load(); l != 1 || s != 2 {
		t.Errorf("a message of 3 parts: %d loads and %d saves, want 1 and 2", l, s)
	}
	h.send(c, 4, long) // the core's retry of a send whose success it did not see
	h.send(c, 5, "after")
	lines := h.visitorLines(7)
	if got := lines[len(lines)-1]; got != "after" {
		t.Errorf("last line %q, want after (the retried message written once)", got)
	}
	if n := len(h.srv.VisitorLines(chatUID(t, c))); n != 7 {
		t.Errorf("%d lines in the chat, want 7", n)
	}
}
