package segment

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	rep := strings.Repeat
	tests := []struct {
		name  string
		in    string
		limit int
		want  []string
	}{
		{"empty", "", 1600, nil},
		{"white space only", " \n\t ", 1600, nil},
		{"short", "hello", 1600, []string{"hello"}},
		{"trimmed", "  hello \n", 1600, []string{"hello"}},
		// One body even though two single SMS would cost 2 segments, not 3.
		{"within the limit stays whole", rep("a", 310), 1600, []string{rep("a", 310)}},
		{"exactly the limit", rep("a", 1600), 1600, []string{rep("a", 1600)}},
		// 1600 + 1 would cost 11 + 1 segments, 1530 + 71 costs 10 + 1.
		{"one over: hard cut at a segment boundary", rep("a", 1601), 1600,
			[]string{rep("a", 1530), rep("a", 71)}},
		// 1600 + 100, 1540 + 160 and 1530 + 170 all cost 12: the first
		// body is kept longest.
		{"ties keep the first body longest", rep("a", 1700), 1600,
			[]string{rep("a", 1600), rep("a", 100)}},
		// 1650 GSM characters: 1600 + 50 costs 11 + 1; a cut at or before
		// 1530 (10 segments) and the rest within 160 costs 10 + 1.
		{"cut at a segment boundary", rep("a", 1650), 1600,
			[]string{rep("a", 1530), rep("a", 120)}},
		{"cut at white space before the boundary", rep("a", 1525) + " " + rep("a", 124), 1600,
			[]string{rep("a", 1525), rep("a", 124)}},
		{"limit below 2 counts as 2", "👋👋", 0, []string{"👋", "👋"}},
		{"never splits a surrogate pair", rep("a", 5) + "👋", 6, []string{"aaaaa", "👋"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.in, tt.limit)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split (-want +got):\n%s", diff)
			}
			checkSplit(t, tt.in, max(tt.limit, 2), got)
		})
	}
}

// An emoji near the end of a long GSM text: the channel's old cut (the last
// space within 1600) leaves it in a 1600-character body that goes as UCS-2,
// 24 segments, then 3 for the rest. Split cuts right before the emoji:
// 1506 GSM characters (10 segments), then 502 units of UCS-2 (8).
func TestSplitIsolatesNonGSM(t *testing.T) {
	text := strings.Repeat("abcd ", 300) + "Thanks 👋 " + strings.Repeat("efgh ", 100)
	got := Split(text, 1600)
	checkSplit(t, text, 1600, got)
	if old := lastSpaceSplit(text, 1600); total(old) != 27 {
		t.Fatalf("the old cut costs %d segments, want 27", total(old))
	}
	if len(got) != 2 || !strings.HasSuffix(got[0], "Thanks") || total(got) != 18 {
		t.Errorf("Split = %d bodies, %d segments, first ending %q; want 2, 18, \"Thanks\"",
			len(got), total(got), got[0][max(len(got[0])-10, 0):])
	}
}

// TestSplitMatchesReference compares Split with an exhaustive dynamic
// programme over every rune boundary on texts small enough for it.
func TestSplitMatchesReference(t *testing.T) {
	alphabet := []string{"a", "b", " ", " ", "€", "é", "ê", "👋", "\n", "ж"}
	seed := uint64(1)
	next := func(n int) int {
		seed = seed*6364136223846793005 + 1442695040888963407
		return int(seed>>33) % n
	}
	for i := 0; i < 300; i++ {
		var b strings.Builder
		for n := next(240); n > 0; n-- {
			b.WriteString(alphabet[next(len(alphabet))])
		}
		text, limit := b.String(), 2+next(180)
		got := Split(text, limit)
		checkSplit(t, text, limit, got)
		if want, have := reference(text, limit), layout(t, text, got); want != have {
			t.Fatalf("Split(%q, %d): cost %+v, reference %+v", text, limit, have, want)
		}
	}
}

func total(bodies []string) int {
	n := 0
	for _, b := range bodies {
		n += Count(b).Segments
	}
	return n
}

// checkSplit asserts Split's contract for one result: bodies trimmed,
// non-empty, within the limit, together the text minus white space at the
// cuts; no worse than the naive cuts; at most one segment per cut more than
// the text as one body.
func checkSplit(t *testing.T, text string, limit int, got []string) {
	t.Helper()
	layout(t, text, got)
	for i, b := range got {
		if b == "" || b != strings.TrimSpace(b) {
			t.Errorf("body %d = %q: empty or untrimmed", i, b)
		}
		if n := len(utf16.Encode([]rune(b))); n > limit {
			t.Errorf("body %d has %d UTF-16 units, limit %d", i, n, limit)
		}
	}
	if strings.TrimSpace(text) == "" {
		return
	}
	for _, other := range [][]string{hardSplit(text, limit), lastSpaceSplit(text, limit)} {
		if len(got) > len(other) || len(got) == len(other) && total(got) > total(other) {
			t.Errorf("Split: %d bodies, %d segments; simpler cuts: %d bodies, %d segments",
				len(got), total(got), len(other), total(other))
		}
	}
	if whole := Count(strings.TrimSpace(text)).Segments; total(got) > whole+len(got)-1 {
		t.Errorf("Split: %d segments in %d bodies; whole text %d", total(got), len(got), whole)
	}
}

// layout finds the bodies in text, in order, separated only by white space,
// and returns their cost, counting a cut with no white space as hard.
func layout(t *testing.T, text string, bodies []string) cost {
	t.Helper()
	rest := strings.TrimLeftFunc(text, unicode.IsSpace)
	c := cost{bodies: len(bodies)}
	for i, b := range bodies {
		if !strings.HasPrefix(rest, b) {
			t.Fatalf("body %d = %q is not next in the text (%.40q...)", i, b, rest)
		}
		rest = rest[len(b):]
		trimmed := strings.TrimLeftFunc(rest, unicode.IsSpace)
		if i < len(bodies)-1 && trimmed == rest {
			c.hard++
		}
		rest = trimmed
		c.segments += Count(b).Segments
	}
	if rest != "" {
		t.Fatalf("text left after the bodies: %.40q", rest)
	}
	return c
}

// hardSplit cuts text every limit UTF-16 units, trimming each body.
func hardSplit(text string, limit int) []string {
	return greedySplit(text, limit, false)
}

// lastSpaceSplit cuts at the last white space within the limit, else hard:
// the channel's splitter before this package.
func lastSpaceSplit(text string, limit int) []string {
	return greedySplit(text, limit, true)
}

func greedySplit(text string, limit int, atSpace bool) []string {
	var out []string
	rest := strings.TrimSpace(text)
	for rest != "" {
		end, units := len(rest), 0
		for i, r := range rest {
			if units += utf16.RuneLen(r); units > limit {
				end = i
				break
			}
		}
		if r, _ := utf8.DecodeRuneInString(rest[end:]); atSpace && end < len(rest) && !unicode.IsSpace(r) {
			if i := strings.LastIndexFunc(rest[:end], unicode.IsSpace); i > 0 {
				end = i
			}
		}
		out = append(out, strings.TrimSpace(rest[:end]))
		rest = strings.TrimSpace(rest[end:])
	}
	return out
}

// reference is the best cost over every way to cut text at rune
// boundaries, by brute force: O(n²) bodies, each counted afresh.
func reference(text string, limit int) cost {
	text = strings.TrimSpace(text)
	runes := []rune(text)
	n := len(runes)
	const inf = 1 << 30
	best := make([]cost, n+1)
	for p := n - 1; p >= 0; p-- {
		best[p] = cost{inf, inf, inf}
		if unicode.IsSpace(runes[p]) {
			continue
		}
		for j := p + 1; j <= n; j++ {
			body := string(runes[p:j])
			if len(utf16.Encode(runes[p:j])) > limit {
				break
			}
			if j < n && unicode.IsSpace(runes[j-1]) {
				continue // the same cut as at the start of this white space
			}
			next, hard := j, 0
			for next < n && unicode.IsSpace(runes[next]) {
				next++
			}
			if j < n && next == j {
				hard = 1
			}
			c := cost{1, Count(body).Segments, hard}.plus(best[next])
			if c.less(best[p]) {
				best[p] = c
			}
		}
	}
	if n == 0 {
		return cost{}
	}
	return best[0]
}

func ExampleSplit() {
	reply := strings.Repeat("a", 1650)
	for _, body := range Split(reply, 1600) {
		fmt.Println(len(body), Count(body).Segments)
	}
	// Output:
	// 1530 10
	// 120 1
}
