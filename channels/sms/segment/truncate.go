package segment

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Truncate bounds an SMS body to maxSegments segments (Count). Text that
// fits is returned as it is, with false. Otherwise Truncate keeps the
// longest start of text that fits together with mark appended, cut at the
// last white space before a word it would split (unless that leaves
// nothing; then between two characters),
// with the white space before the cut dropped, and returns it followed by
// mark, with true. The caller chooses mark, the notice that text was cut
// (say " [...]"); a mark outside GSM-7, such as "…", makes the whole body
// UCS-2 and so keeps much less. A mark that does not fit maxSegments on its
// own is left out. maxSegments below 1 counts as 1.
//
// The result always fits: Count(result).Segments <= max(maxSegments, 1).
// It is bounded for one body; Split may still cut a result longer than its
// limit, at a cost of at most one segment more per cut.
//
// Cost: O(n log n) for n bytes (a binary search, as a longer start never
// costs fewer segments).
func Truncate(text string, maxSegments int, mark string) (string, bool) {
	maxSegments = max(maxSegments, 1)
	if Count(text).Segments <= maxSegments {
		return text, false
	}
	if Count(mark).Segments > maxSegments {
		mark = ""
	}
	fits := func(end int) bool { return Count(text[:end]+mark).Segments <= maxSegments }
	bounds := runeBounds(text)
	// bounds[lo] fits (the empty start always does), bounds[hi] does not.
	lo, hi := 0, len(bounds)-1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if fits(bounds[mid]) {
			lo = mid
		} else {
			hi = mid
		}
	}
	head := text[:bounds[lo]]
	if r, _ := utf8.DecodeRuneInString(text[len(head):]); !unicode.IsSpace(r) {
		// A word cut in two reads worse than a word left out, unless the
		// word is all there is.
		if i := strings.LastIndexFunc(head, unicode.IsSpace); i >= 0 && strings.TrimSpace(head[:i]) != "" {
			head = head[:i]
		}
	}
	return strings.TrimRightFunc(head, unicode.IsSpace) + mark, true
}

// runeBounds returns the byte offsets at which text may be cut: before each
// rune and at its end.
func runeBounds(text string) []int {
	bounds := make([]int, 0, len(text)+1)
	for i := range text {
		bounds = append(bounds, i)
	}
	return append(bounds, len(text))
}
