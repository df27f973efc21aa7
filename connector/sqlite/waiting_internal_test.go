package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// TestWaitingBeforeReadsNoDatabase: the router asks WaitingBefore before
// every line it sends to an agent. While nothing older waits, SQLite
// answers from the writer's set without a query, so every line that was
// sent or failed must leave the set.
func TestWaitingBeforeReadsNoDatabase(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	reads := &countingReads{Queryer: s.rdb}
	s.Store = sqlstore.New(dialect(), s.w, reads, "")
	var last *connector.Message
	for i := range 6 {
		in := connector.Inbound{Channel: "sms.main", Customer: "+15550000001", SourceID: fmt.Sprint("SM", i), Text: "hi"}
		res, err := s.RecordInbound(ctx, in, "whoson.main")
		if err != nil {
			t.Fatal(err)
		}
		last = res.Message
		older, err := s.WaitingBefore(ctx, last.ConversationID, last.ID)
		if err != nil || len(older) != 0 {
			t.Fatalf("line %d: WaitingBefore = %d lines, %v; want none", i, len(older), err)
		}
		settle := func() error { return s.MarkSent(ctx, last.ID, "") }
		if i%3 == 2 {
			settle = func() error { return s.MarkFailed(ctx, last.ID, "refused") }
		}
		if err := settle(); err != nil {
			t.Fatal(err)
		}
	}
	// Lines failed together, as when a vendor is gone, leave it too.
	conv := last.ConversationID
	for _, sid := range []string{"SM-x", "SM-y"} {
		in := connector.Inbound{Channel: "sms.main", Customer: "+15550000001", SourceID: sid, Text: "hi"}
		if _, err := s.RecordInbound(ctx, in, "whoson.main"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, connector.Change{ConversationID: conv, FailPending: "vendor gone"}); err != nil {
		t.Fatal(err)
	}
	before := reads.n.Load()
	if older, err := s.WaitingBefore(ctx, conv, 1<<62); err != nil || len(older) != 0 {
		t.Fatalf("after FailPending: WaitingBefore = %d lines, %v; want none", len(older), err)
	}
	if n := reads.n.Load(); n != before {
		t.Errorf("WaitingBefore after FailPending ran %d queries, want none", n-before)
	}
	if n := before; n != 0 {
		t.Errorf("WaitingBefore ran %d queries on the read pool with nothing waiting, want none", n)
	}
	// One left waiting: the next line finds it.
	in := connector.Inbound{Channel: "sms.main", Customer: "+15550000001", SourceID: "SM-a", Text: "a"}
	a, err := s.RecordInbound(ctx, in, "whoson.main")
	if err != nil {
		t.Fatal(err)
	}
	in.SourceID = "SM-b"
	b, err := s.RecordInbound(ctx, in, "whoson.main")
	if err != nil {
		t.Fatal(err)
	}
	older, err := s.WaitingBefore(ctx, b.Message.ConversationID, b.Message.ID)
	if err != nil || len(older) != 1 || older[0].ID != a.Message.ID {
		t.Errorf("WaitingBefore(b) = %v, %v; want a (%d)", older, err, a.Message.ID)
	}
}

// TestWaitingLoadedAtOpen: lines stored before a restart still wait after
// it; the set that answers WaitingBefore is filled when the store opens.
func TestWaitingLoadedAtOpen(t *testing.T) {
	ctx := context.Background()
	s, path := openInternal(t)
	var lines []*connector.Message
	for i := range 3 {
		in := connector.Inbound{Channel: "sms.main", Customer: "+15550000001", SourceID: fmt.Sprint("SM", i), Text: "hi"}
		res, err := s.RecordInbound(ctx, in, "whoson.main")
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, res.Message)
	}
	if err := s.MarkSent(ctx, lines[1].ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	older, err := s.WaitingBefore(ctx, lines[2].ConversationID, lines[2].ID)
	if err != nil || len(older) != 1 || older[0].ID != lines[0].ID {
		t.Errorf("after reopen, WaitingBefore(the third line) = %v, %v; want the first (%d)", older, err, lines[0].ID)
	}
}
