package postgres

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectord/connectord/connector"
)

// TestPingFailsWhenWritesAreRefused: with the database made read-only for
// new sessions and the store's sessions ended, Ping fails (a read would still
// work) and WriteErrors counts it; once writable again, Ping recovers.
func TestPingFailsWhenWritesAreRefused(t *testing.T) {
	ctx := context.Background()
	s := open(t, freshDSN(t))
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	db := databaseName(t)
	t.Cleanup(func() { testDB.admin.Exec(`ALTER DATABASE ` + db + ` RESET default_transaction_read_only`) }) //nolint:errcheck // best effort
	setReadOnly(t, db, true)
	var err error
	for range 3 { // the first may find its session ended; the next is read-only
		if err = s.Ping(ctx); err != nil && isReadOnly(err) {
			break
		}
	}
	if !isReadOnly(err) {
		t.Fatalf("Ping on a read-only database: %v, want a read-only refusal", err)
	}
	// Once more on a session known to be read-only (the first refusal may
	// have come after a connection error, itself counted).
	_, _, before := s.w.Counts()
	if err := s.Ping(ctx); !isReadOnly(err) {
		t.Errorf("second Ping on a read-only database: %v, want a read-only refusal", err)
	}
	if _, _, after := s.w.Counts(); after != before+1 {
		t.Error("WriteErrors did not count the refused write")
	}
	if _, err := s.Stats(ctx); err != nil {
		t.Errorf("Stats (a read) on a read-only database: %v", err)
	}
	setReadOnly(t, db, false)
	for range 3 {
		if err = s.Ping(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("Ping once writable again: %v", err)
	}
}

func isReadOnly(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "25006"
}

// setReadOnly makes new sessions of db read-only (or not) and ends every
// other session of it, so that the store's next connections are new.
func setReadOnly(t *testing.T, db string, on bool) {
	t.Helper()
	stmt := `ALTER DATABASE ` + db + ` RESET default_transaction_read_only`
	if on {
		stmt = `ALTER DATABASE ` + db + ` SET default_transaction_read_only = on`
	}
	for _, q := range []string{stmt, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`} {
		if _, err := testDB.admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func databaseName(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testDB.dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// TestIDsNotReusedAfterPurgeAndReopen: the newest message purged, the store
// reopened, the next message still gets a higher id.
func TestIDsNotReusedAfterPurgeAndReopen(t *testing.T) {
	ctx := context.Background()
	dsn := freshDSN(t)
	s := open(t, dsn)
	in := connector.Inbound{Channel: "sms", Customer: "+1", SourceID: "m1", Text: "hi"}
	r, err := s.RecordInbound(ctx, in, "v")
	if err != nil {
		t.Fatal(err)
	}
	first := r.Message.ID
	if err := s.MarkSent(ctx, first, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, connector.Change{ConversationID: r.Conversation.ID, State: connector.StateEnded}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, time.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("Purge: %d, %v; want 1", n, err)
	}
	s.Close()
	s = open(t, dsn)
	in.SourceID = "m2"
	r, err = s.RecordInbound(ctx, in, "v")
	if err != nil {
		t.Fatal(err)
	}
	if r.Message.ID <= first {
		t.Errorf("message id %d after purging id %d: reused", r.Message.ID, first)
	}
}

// TestCountsKeptForOtherWriters: conversations written by hand (an operator
// in psql) move the counts Stats reads, because triggers keep them.
func TestCountsKeptForOtherWriters(t *testing.T) {
	ctx := context.Background()
	dsn := freshDSN(t)
	s := open(t, dsn)
	inSchema(t, dsn, `INSERT INTO $schema.conversations (channel, customer, vendor, state, created_at, updated_at, last_activity)
		VALUES ('sms', 'a', 'v', 'active', 1, 1, 1), ('sms', 'b', 'v', 'pending', 1, 1, 1)`).Close()
	inSchema(t, dsn, `UPDATE $schema.conversations SET state = 'ended' WHERE customer = 'b'`).Close()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Conversations[connector.StateActive] != 1 || st.Conversations[connector.StateEnded] != 1 || st.Conversations[connector.StatePending] != 0 {
		t.Errorf("Stats conversations %v, want 1 active and 1 ended", st.Conversations)
	}
	inSchema(t, dsn, `DELETE FROM $schema.conversations`).Close()
	open, err := s.OpenCounts(ctx, "sms")
	if err != nil {
		t.Fatal(err)
	}
	for state, n := range open {
		if n != 0 {
			t.Errorf("OpenCounts[%s] = %d after deleting everything", state, n)
		}
	}
}
