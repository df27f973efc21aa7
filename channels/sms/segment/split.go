package segment

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Split cuts text into message bodies of at most maxUnits UTF-16 code units
// each, in order, for an API that limits a body's length (Twilio: 1600
// characters). Counted in UTF-16 units, as the SMS channel counts that
// limit, a character outside the Basic Multilingual Plane weighs 2, so the
// bodies also fit the same limit in runes. maxUnits below 2 counts as 2, so
// that every character fits.
//
// Bodies are trimmed of white space and never empty; text that is only
// white space has no bodies. Joined back in order, with the white space
// that was dropped at each cut put back, they give strings.TrimSpace(text)
// exactly: Split removes white space at its cuts and changes nothing else.
//
// Among all the ways to cut, Split returns one that is best by, in order:
//  1. the fewest bodies: each body is a separate SMS that the handset does
//     not reassemble and the carrier may deliver out of order, so text that
//     fits in one body stays one body;
//  2. the fewest segments in total (Count of each body), which moves the
//     cuts to segment boundaries and keeps a few non-GSM characters from
//     turning a whole long body into UCS-2 where another cut avoids it;
//  3. the fewest cuts inside a word (a cut is at white space when it can be
//     without costing a body or a segment);
//
// and then the longest bodies first. It is never worse, by the first two,
// than cutting every maxUnits units, or than cutting at the last white space
// before the limit. Its total is at most Count(text).Segments plus one per
// cut, so a text Truncate bounded to N segments is sent in at most N plus
// one per extra body.
//
// Cost: O(n·k) time and O(n) memory for n characters, where k is about
// maxUnits/66 + 2 (27 for Twilio's 1600); text within the limit is one
// body at once. See the package documentation for the algorithm.
func Split(text string, maxUnits int) []string {
	maxUnits = max(maxUnits, 2)
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	if utf16Units(text) <= maxUnits {
		return []string{text}
	}
	return newCutter(text, maxUnits).cut()
}

func utf16Units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// cutter holds, for a trimmed text of n runes, the tables Split's dynamic
// programme reads. Positions are rune indexes 0..n; a body is the runes
// [start, end). Every "reach" table gives, for each start p, the largest
// end q such that the runes [p, q) weigh at most a capacity: those are the
// only ends worth trying, because a longer body never costs fewer segments
// and what remains after a later cut never costs more.
type cutter struct {
	text  string
	off   []int  // byte offset of each rune, and len(text) at n
	space []bool // the rune is white space (unicode.IsSpace)

	nonGSM []int // the first rune at or after p outside GSM-7, or n
	soft   []int // the last white-space run that starts at or before p, or -1
	skip   []int // the first rune at or after p that is not white space, or n

	gsm160, gsm153 []int // reach in septets (a non-GSM rune weighs 1: nonGSM bounds it)
	ucs70, ucs67   []int // reach in UTF-16 units
	limit          []int // reach within maxUnits UTF-16 units
}

func newCutter(text string, maxUnits int) *cutter {
	n := utf8.RuneCountInString(text)
	c := &cutter{text: text, off: make([]int, 0, n+1), space: make([]bool, n)}
	sept := make([]int, n+1) // prefix sums
	units := make([]int, n+1)
	gsm := make([]bool, n)
	i := 0
	for b, r := range text {
		c.off = append(c.off, b)
		c.space[i] = unicode.IsSpace(r)
		w := septets(r)
		gsm[i] = w > 0
		sept[i+1] = sept[i] + max(w, 1)
		units[i+1] = units[i] + utf16.RuneLen(r)
		i++
	}
	c.off = append(c.off, len(text))
	c.nonGSM, c.soft, c.skip = c.scanRuns(gsm)
	c.gsm160, c.gsm153 = reach(sept, gsmSingle), reach(sept, gsmMulti)
	c.ucs70, c.ucs67 = reach(units, ucsSingle), reach(units, ucsMulti)
	c.limit = reach(units, maxUnits)
	return c
}

// scanRuns builds the nonGSM, soft and skip tables.
func (c *cutter) scanRuns(gsm []bool) (nonGSM, soft, skip []int) {
	n := len(c.space)
	nonGSM, soft, skip = make([]int, n+1), make([]int, n+1), make([]int, n+1)
	nonGSM[n], skip[n], soft[0] = n, n, -1
	for p := n - 1; p >= 0; p-- {
		nonGSM[p], skip[p] = nonGSM[p+1], skip[p+1]
		if !gsm[p] {
			nonGSM[p] = p
		}
		if !c.space[p] {
			skip[p] = p
		}
	}
	for p := 0; p < n; p++ {
		if c.space[p] && (p == 0 || !c.space[p-1]) {
			soft[p] = p
		} else if p > 0 {
			soft[p] = soft[p-1]
		}
	}
	return nonGSM, soft, skip
}

// reach returns, for each p, the largest q with pre[q]-pre[p] <= capacity,
// where pre holds prefix sums of weights of 1 or 2 (two pointers, O(n)).
func reach(pre []int, capacity int) []int {
	n := len(pre) - 1
	out := make([]int, n+1)
	q := 0
	for p := 0; p <= n; p++ {
		q = max(q, p)
		for q < n && pre[q+1]-pre[p] <= capacity {
			q++
		}
		out[p] = q
	}
	return out
}

// cost orders solutions: fewer bodies, then fewer segments, then fewer cuts
// inside a word.
type cost struct{ bodies, segments, hard int }

func (a cost) plus(b cost) cost {
	return cost{a.bodies + b.bodies, a.segments + b.segments, a.hard + b.hard}
}

func (a cost) less(b cost) bool {
	if a.bodies != b.bodies {
		return a.bodies < b.bodies
	}
	if a.segments != b.segments {
		return a.segments < b.segments
	}
	return a.hard < b.hard
}

// step is the best way to send the text from one start: the first body ends
// at end, the next begins at next, and the whole rest costs total.
type step struct {
	total     cost
	end, next int
}

// cut runs the dynamic programme from the end of the text back to its start
// (only starts that are not white space are ever used) and reads the bodies
// off from the front.
func (c *cutter) cut() []string {
	n := len(c.space)
	best := make([]step, n+1) // best[n]: nothing left, nothing to pay
	for p := n - 1; p >= 0; p-- {
		if !c.space[p] {
			best[p] = c.bestFrom(p, best)
		}
	}
	var bodies []string
	for p := 0; p < n; p = best[p].next {
		bodies = append(bodies, c.text[c.off[p]:c.off[best[p].end]])
	}
	return bodies
}

// bestFrom finds best[p]. For s = 1, 2, ... segments it takes the farthest
// end j at which the body [p, j) still costs at most s segments and fits the
// limit, and tries three cuts there: the end of the text, the last
// white-space run starting at or before j, and j itself when it falls
// inside a word. The loop stops once j reaches the limit or the end.
func (c *cutter) bestFrom(p int, best []step) step {
	n, lim := len(c.space), c.limit[p]
	var b step
	found := false
	try := func(s step) {
		// Ties go to the later candidate: its first body is at least as long.
		if !found || !b.total.less(s.total) {
			b, found = s, true
		}
	}
	g, u := c.gsm153[p], c.ucs67[p]
	for s := 1; ; s++ {
		j := max(min(c.gsm160[p], c.nonGSM[p]), c.ucs70[p])
		if s > 1 {
			g, u = c.gsm153[g], c.ucs67[u]
			j = max(min(g, c.nonGSM[p]), u)
		}
		j = min(j, lim)
		body := cost{bodies: 1, segments: s}
		if j == n {
			try(step{total: body, end: n, next: n})
			return b
		}
		if q := c.soft[j]; q > p {
			next := c.skip[q]
			try(step{total: body.plus(best[next].total), end: q, next: next})
		}
		if !c.space[j-1] && !c.space[j] {
			body.hard = 1
			try(step{total: body.plus(best[j].total), end: j, next: j})
		}
		if j == lim {
			if !found { // cannot happen (j is in a word or after white space); never loop
				b = step{total: body.plus(best[j].total), end: j, next: c.skip[j]}
			}
			return b
		}
	}
}
