package sqlite

import (
	"context"
	"regexp"
	"testing"

	"github.com/connectord/connectord/connector/internal/sqlstore"
)

// bigTableScan matches a plan step that reads a whole history table: a scan
// of conversations or messages that is not over one of the partial indexes
// holding only open conversations or the outbox.
var bigTableScan = regexp.MustCompile(`^SCAN (conversations|messages|c|m)\b`)
var boundedIndex = regexp.MustCompile(`USING (COVERING )?INDEX (conversations_open|messages_outbox)\b`)

// TestQueryPlans checks that what runs on every metrics scrape, every
// inactivity sweep and every retention pass reads no more than the open
// conversations or the outbox, however many ended conversations are kept.
// SQLite has no statistics here (nothing runs ANALYZE), as in production.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s, _ := openInternal(t)
	hot, err := sqlstore.HotQueries(dialect())
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range hot {
		rows, err := s.rdb.DB.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.Query, q.Args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for rows.Next() {
			var (
				id, parent, unused int
				detail             string
			)
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			if bigTableScan.MatchString(detail) && !boundedIndex.MatchString(detail) {
				t.Errorf("%s scans a whole table: %s", name, detail)
			}
			if testing.Verbose() {
				t.Logf("%s: %s", name, detail)
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
