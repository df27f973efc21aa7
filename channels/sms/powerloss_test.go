package sms

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// TestPowerLossCostsNoRepeat: the sent mark of an SMS is kept without
// waiting for the disk, so a power loss right after it can forget it. That
// is simulated by undoing the mark in the database between two processes
// (state stored again, no remote id, no record). The next process finds
// the message in its outbox, hands it to the channel as recovered, and the
// channel finds it at Twilio: the customer gets it once, and the message
// is marked sent with the SID Twilio gave it the first time.
func TestPowerLossCostsNoRepeat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "c.db")
	w := newWorld(t, setup{})

	st, core := openCore(t, ctx, path)
	ch := w.restart(core)
	core.AddChannel(ch)
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	err := core.Outbound(ctx, connector.Outbound{Vendor: "whoson.sales", Channel: ch.Name(),
		Customer: customerNumber, Text: "your order has shipped", SourceID: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	sent := waitSent(t, w, 1)
	id := waitState(t, ctx, path, connector.DeliverySent)
	core.Stop(ctx)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	forgetMark(t, path, id) // the power loss

	st, core = openCore(t, ctx, path)
	defer st.Close()
	core.AddChannel(w.restart(core))
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer core.Stop(ctx)
	waitState(t, ctx, path, connector.DeliverySent)
	m, err := st.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.twilio.Sent(); len(got) != 1 || m.RemoteID != sent[0].SID {
		t.Errorf("after the lost mark: %d SMS %+v, message marked with %q; want the one SMS, %s", len(got), got, m.RemoteID, sent[0].SID)
	}
}

func openCore(t *testing.T, ctx context.Context, path string) (*sqlite.Store, *connector.Router) {
	t.Helper()
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

// waitState waits until the agent's message (SourceID agent-1) is in
// state, and returns its id. It reads the database beside the store, as an
// operator's sqlite3 would.
func waitState(t *testing.T, ctx context.Context, path string, state connector.Delivery) int64 {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	for {
		var id int64
		var got string
		err := db.QueryRowContext(ctx, `SELECT id, state FROM messages WHERE source_id = 'agent-1'`).Scan(&id, &got)
		if err == nil && got == string(state) {
			return id
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent's message is not %s: state %q, %v", state, got, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// forgetMark undoes what a power loss can undo of a sent message: the mark
// and the record, both kept without waiting for the disk.
func forgetMark(t *testing.T, path string, id int64) {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	r, err := db.Exec(`UPDATE messages SET state = 'stored', remote_id = '', progress = NULL WHERE id = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		t.Fatalf("%d rows undone, want 1", n)
	}
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
