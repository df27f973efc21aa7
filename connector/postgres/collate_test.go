package postgres

import (
	"context"
	"testing"

	"github.com/connectord/connectord/connector"
)

// TestNewestSourceIDSortsBytewise: source ids compare byte by byte, as in
// SQLite, whatever the database's collation: under en-US 'a' sorts before
// 'B', bytewise after it.
func TestNewestSourceIDSortsBytewise(t *testing.T) {
	ctx := context.Background()
	s := open(t, freshDSN(t))
	for i, sid := range []string{"P/a", "P/B"} {
		in := connector.Inbound{Channel: "slack", Customer: string(rune('x' + i)), SourceID: sid, Text: "t"}
		if _, err := s.RecordInbound(ctx, in, "v"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.NewestSourceID(ctx, "slack", "P/")
	if err != nil {
		t.Fatal(err)
	}
	if got != "P/a" {
		t.Errorf("NewestSourceID = %q, want %q (bytewise)", got, "P/a")
	}
}
