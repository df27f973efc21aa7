package segment

import (
	"strings"
	"testing"
)

func TestTruncate(t *testing.T) {
	rep := strings.Repeat
	const mark = " [...]" // 8 septets
	tests := []struct {
		name    string
		in      string
		max     int
		mark    string
		want    string
		wantCut bool
	}{
		{"fits", "hello", 1, mark, "hello", false},
		{"fits exactly", rep("a", 306), 2, mark, rep("a", 306), false},
		{"empty fits", "", 1, mark, "", false},
		{"hard cut in one word", rep("a", 200), 1, mark, rep("a", 152) + mark, true},
		{"cut at white space", rep("abcd ", 40), 1, mark, strings.TrimSpace(rep("abcd ", 30)) + mark, true},
		// 2 segments hold 306 septets: 298 for the text, 8 for the mark
		// (its brackets are extension characters, 2 septets each).
		{"two segments", rep("a", 400), 2, mark, rep("a", 298) + mark, true},
		{"below 1 counts as 1", rep("a", 200), 0, mark, rep("a", 152) + mark, true},
		// A non-GSM mark makes the body UCS-2: 70 units, 69 of text.
		{"UCS-2 mark", rep("a", 200), 1, "…", rep("a", 69) + "…", true},
		{"UCS-2 text", rep("ж", 100), 1, mark, rep("ж", 64) + mark, true},
		{"mark too long is left out", rep("a", 200), 1, rep("!", 161), rep("a", 160), true},
		{"emoji never halved", rep("👋", 40), 1, "", rep("👋", 35), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := Truncate(tt.in, tt.max, tt.mark)
			if got != tt.want || cut != tt.wantCut {
				t.Errorf("Truncate = %q, %v; want %q, %v", got, cut, tt.want, tt.wantCut)
			}
			if n := Count(got).Segments; n > max(tt.max, 1) {
				t.Errorf("result takes %d segments, max %d", n, tt.max)
			}
		})
	}
}
