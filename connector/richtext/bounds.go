package richtext

import (
	"strings"
	"unicode/utf8"
)

// Limits that keep every converter linear in its input and its output
// within a stated multiple of it. Agent lines are rendered when they are
// sent, after the core has stored and split nothing, so one hostile line must
// not be able to exhaust memory or time; the limits are far above anything a
// person writes.
const (
	// maxIndent is how many levels of list nesting are shown by
	// indentation; deeper items are written at this level.
	maxIndent = 4
	// maxEmphasis is how many emphasis elements may be open at once in
	// HTML; deeper ones keep their text without markers.
	maxEmphasis = 16
	// maxContainers is how many Markdown block quotes and lists may nest;
	// a deeper marker is text.
	maxContainers = 16
	// maxInlineMarks is how many emphasis delimiter runs and link brackets
	// one Markdown paragraph may use; later ones are text. It bounds the
	// parser's delimiter and bracket matching, which is quadratic in them.
	maxInlineMarks = 128
	// maxDelimRun is the longest run of *, _ or ~ read as emphasis.
	maxDelimRun = 16
	// maxName bounds a user or channel name substituted by PlainFromMrkdwn.
	maxName = 80
)

// outputLimit is the largest output allowed for an input of n bytes with a
// converter whose factor is k: k*n + 64.
func outputLimit(k, n int) int { return k*n + 64 }

// cutText shortens s to at most limit bytes at a rune boundary and trims the
// white space the cut leaves at the end.
func cutText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.TrimRight(s[:i], " \t\r\n")
}

// cutMrkdwn shortens mrkdwn to at most limit bytes without splitting an
// escape (&amp;), a link (<...>) or a rune, and trims the white space the
// cut leaves at the end.
func cutMrkdwn(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	safe := 0
	for i := 0; i < len(s) && i <= limit; {
		safe = i
		switch s[i] {
		case '&':
			if j := strings.IndexByte(s[i:], ';'); j > 0 {
				i += j + 1
				continue
			}
		case '<':
			if j := strings.IndexByte(s[i:], '>'); j > 0 {
				i += j + 1
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strings.TrimRight(s[:safe], " \t\r\n")
}
