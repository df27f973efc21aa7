package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// TestCountsKeptForOtherWriters: the counts are kept by triggers, so a write
// from another connection (an operator's sqlite3 shell) keeps them right.
func TestCountsKeptForOtherWriters(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	s := open(t, path)
	if _, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "a", SourceID: "1"}, "v"); err != nil {
		t.Fatal(err)
	}
	db := raw(t, path)
	for _, q := range []string{
		`INSERT INTO conversations (channel, customer, vendor, state, created_at, updated_at, last_activity)
			VALUES ('sms.main', 'b', 'v', 'queued', 1, 1, 1)`,
		`INSERT INTO conversations (channel, customer, vendor, state, created_at, updated_at, last_activity)
			VALUES ('sms.main', 'c', 'v', 'active', 1, 1, 1)`,
		`UPDATE conversations SET state = 'ended' WHERE customer = 'c'`,
		`UPDATE conversations SET updated_at = 2 WHERE customer = 'b'`,
		`DELETE FROM conversations WHERE customer = 'c'`,
		`UPDATE conversations SET channel = 'slack.support' WHERE customer = 'b'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffCounts(map[connector.State]int{connector.StatePending: 1, connector.StateQueued: 1}, st.Conversations); d != "" {
		t.Errorf("Stats.Conversations (-want +got):\n%s", d)
	}
	for ch, want := range map[string]map[connector.State]int{
		"sms.main":      {connector.StatePending: 1},
		"slack.support": {connector.StateQueued: 1},
	} {
		got, err := s.OpenCounts(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffCounts(want, got); d != "" {
			t.Errorf("OpenCounts(%s) (-want +got):\n%s", ch, d)
		}
	}
}

// TestIDsNotReusedAfterReopen: the floor under new message ids is in the
// file, and covers a message deleted by hand as well as by Purge.
func TestIDsNotReusedAfterReopen(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	s := open(t, path)
	inbound := func(s connector.Store, sid string) *connector.Message {
		t.Helper()
		res, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "a", SourceID: sid}, "v")
		if err != nil {
			t.Fatal(err)
		}
		return res.Message
	}
	first := inbound(s, "1")
	if err := s.MarkSent(ctx, first.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, connector.Change{ConversationID: first.ConversationID, State: connector.StateEnded}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if n, err := s.Purge(ctx, time.Now(), 10); n != 1 || err != nil {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	second := inbound(s, "2")
	if second.ID <= first.ID {
		t.Errorf("after Purge and reopen: message id %d, the purged one was %d", second.ID, first.ID)
	}
	if _, err := raw(t, path).Exec(`DELETE FROM messages WHERE id = ?`, second.ID); err != nil {
		t.Fatal(err)
	}
	if third := inbound(s, "3"); third.ID <= second.ID {
		t.Errorf("after deleting message %d by hand: message id %d", second.ID, third.ID)
	}
}

// TestAttemptsSurviveReopen: the count is there to outlive a crash.
func TestAttemptsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := dbPath(t)
	s := open(t, path)
	res, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "a", SourceID: "1"}, "v")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.CountAttempt(ctx, res.Message.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := open(t, path).CountAttempt(ctx, res.Message.ID); n != 3 || err != nil {
		t.Errorf("CountAttempt after reopen = %d, %v; want 3", n, err)
	}
}
