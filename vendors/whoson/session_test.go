package whoson

import (
	"testing"

	"go.uber.org/zap"
)

// Lines are forgotten once echoed or once a pong proves the server read
// them; echoes owed for the latter are not taken for later lines.
func TestOutLineSettling(t *testing.T) {
	s := &session{log: zap.NewNop()}
	c := &conn{}
	add := func(text string, seq uint64) {
		s.out = append(s.out, &outLine{text: text, conn: c, seq: seq})
	}
	texts := func() []string {
		var out []string
		for _, l := range s.out {
			out = append(out, l.text)
		}
		return out
	}
	add("a", 1)
	add("b", 2)
	add("c", 3)
	s.echoed() // a
	if got := texts(); len(got) != 2 || got[0] != "b" {
		t.Fatalf("after an echo: %q", got)
	}
	c.acked.Store(2) // a pong after b
	s.mu.Lock()
	s.settleLocked()
	s.mu.Unlock()
	if got := texts(); len(got) != 1 || got[0] != "c" || s.owed != 1 {
		t.Fatalf("after a pong: %q, owed %d", got, s.owed)
	}
	s.echoed() // b's late echo
	if got := texts(); len(got) != 1 || s.owed != 0 {
		t.Fatalf("b's echo settled another line: %q, owed %d", got, s.owed)
	}
	add("d", 0) // being written: blocks nothing it should not
	c.acked.Store(10)
	s.mu.Lock()
	s.settleLocked()
	s.mu.Unlock()
	if got := texts(); len(got) != 1 || got[0] != "d" {
		t.Fatalf("a line being written was settled: %q", got)
	}
}
