package cobrowser

import (
	"fmt"
	"testing"
	"time"
)

func TestBlockList(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := newBlockList(3)
	b.add("a", now.Add(time.Hour), now)
	if !b.blocked("a", now.Add(59*time.Minute)) || b.blocked("a", now.Add(time.Hour)) || b.blocked("x", now) {
		t.Error("block not kept for its duration, or kept after it")
	}
	if b.len() != 0 {
		t.Errorf("an ended block is still held: %d", b.len())
	}
	// Bounded: past max, the block that ends first goes.
	for i := range 5 {
		b.add(fmt.Sprint(i), now.Add(time.Duration(i+1)*time.Hour), now)
	}
	if b.len() != 3 || b.blocked("0", now) || b.blocked("1", now) || !b.blocked("4", now) {
		t.Errorf("after 5 adds to a list of 3: %d held", b.len())
	}
}
