package connector_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// Retention deletes ended conversations older than the cutoff, in batches,
// and leaves open ones alone.
func TestPurgeEnded(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := connector.ParseConfig([]byte("[http]\nadmin_listen = \"\"\n"), connector.Expander{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := connector.New(cfg, connector.Registry{}, st, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	const ended = 1234 // more than one batch
	for i := range ended + 1 {
		res, err := st.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: "+1555" + strconv.Itoa(i),
			Text: "hi", SourceID: "SM" + strconv.Itoa(i)}, "whoson.sales")
		if err != nil {
			t.Fatal(err)
		}
		if i == ended {
			break // the last one stays open
		}
		if _, err := st.Apply(ctx, connector.Change{ConversationID: res.Conversation.ID, State: connector.StateEnded,
			EndReason: "agent", FailPending: "ended"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.PurgeEnded(ctx, time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("purged %d conversations that ended after the cutoff", n)
	}
	if n := d.PurgeEnded(ctx, time.Now().Add(time.Second)); n != ended {
		t.Errorf("purged %d, want %d", n, ended)
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Conversations[connector.StateEnded] != 0 || stats.Conversations[connector.StatePending] != 1 {
		t.Errorf("after purge: %v", stats.Conversations)
	}
	if _, err := st.Conversation(ctx, 1); !errors.Is(err, connector.ErrNotFound) {
		t.Errorf("purged conversation still readable: %v", err)
	}
}
