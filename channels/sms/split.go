package sms

import (
	"strings"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/richtext"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxBody is the longest message body Twilio accepts (error 21617 past it),
// in characters as Twilio counts them: UTF-16 code units, so a character
// outside the Basic Multilingual Plane, such as most emoji, counts twice.
const MaxBody = 1600

// Split cuts text into message bodies of at most MaxBody characters (so
// never more than 1600 runes), in order. Each cut is at the last white space
// that keeps the part within the limit, or a hard cut between runes when one
// word is longer than that. Parts are trimmed and never empty: text that is
// only white space has no parts, and text within the limit is one part.
func (c *Channel) Split(text string) []string { return split(text, MaxBody) }

// Render implements connector.Renderer: an SMS is plain text. The core
// renders an agent's HTML line with it before storing, so the line is split
// once, by the core, into parts it tracks one by one. Markdown reads well
// enough as it is.
func (c *Channel) Render(text string, f connector.Format) (string, connector.Format) {
	if f == connector.FormatHTML {
		return richtext.PlainText(text), connector.FormatPlain
	}
	return text, connector.FormatPlain
}

func split(text string, limit int) []string {
	var parts []string
	rest := strings.TrimSpace(text)
	for rest != "" {
		end := prefixLen(rest, limit)
		if end == len(rest) {
			return append(parts, rest)
		}
		cut := end
		if r, _ := utf8.DecodeRuneInString(rest[end:]); !unicode.IsSpace(r) {
			if i := lastSpace(rest[:end]); i > 0 {
				cut = i
			}
		}
		if cut == 0 { // a limit smaller than the first rune: never loop forever
			_, cut = utf8.DecodeRuneInString(rest)
		}
		parts = append(parts, strings.TrimSpace(rest[:cut]))
		rest = strings.TrimSpace(rest[cut:])
	}
	return parts
}

// prefixLen returns the length in bytes of the longest prefix of s that is
// at most limit UTF-16 code units.
func prefixLen(s string, limit int) int {
	units := 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > limit {
			return i
		}
	}
	return len(s)
}

// lastSpace returns the byte index of the last white space rune in s, or -1.
func lastSpace(s string) int {
	return strings.LastIndexFunc(s, unicode.IsSpace)
}
