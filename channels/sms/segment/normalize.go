package segment

import (
	"strings"
	"unicode/utf8"
)

// Normalize replaces typographic characters that word processors and chat
// tools put in text with their plain GSM-7 equivalents, so that one curly
// quote does not make a whole reply UCS-2 (70 characters a segment instead
// of 160):
//
//   - ‘ ’ ‚ ‛ ′ ‵ ʼ ´ and the grave accent ` become the apostrophe ';
//   - “ ” „ ‟ ″ « » become the double quote ";
//   - the hyphens, dashes and minus sign (U+2010 to U+2015, U+2212) become -;
//   - the bullets • ‣ ◦ ⁃ ∙ become -;
//   - the ellipsis … becomes ...;
//   - tab, no-break space and the other Unicode spaces become a space;
//   - vertical tab, next line (U+0085) and the line and paragraph
//     separators become a line feed;
//   - the invisible soft hyphen, zero-width space, word joiner and byte
//     order mark are removed;
//   - the modifier letters ˆ and ˜ become ^ and ~, the fraction slash ⁄ /.
//
// Everything else, letters with accents included, is kept: a change is made
// only where the result is GSM-7 and reads the same. Invalid UTF-8 becomes
// U+FFFD, one per bad byte, as Count counts it. The result is at most three
// times as long as the input, in bytes and in runes (an ellipsis becomes
// three dots, a bad byte the three bytes of U+FFFD), and
// Normalize(Normalize(s)) == Normalize(s).
func Normalize(text string) string {
	i := strings.IndexFunc(text, func(r rune) bool {
		_, ok := replacement(r)
		return ok
	})
	if i < 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	b.WriteString(text[:i])
	for _, r := range text[i:] {
		if s, ok := replacement(r); ok {
			b.WriteString(s)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// replacement returns what Normalize writes for r, and whether r is one it
// replaces. Every replacement is GSM-7 text that is itself left alone.
func replacement(r rune) (string, bool) {
	switch r {
	case '‘', '’', '‚', '‛', '′', '‵', 'ʼ', '´', '`':
		return "'", true
	case '“', '”', '„', '‟', '″', '«', '»':
		return `"`, true
	case '‐', '‑', '‒', '–', '—', '―', '−', '•', '‣', '◦', '⁃', '∙':
		return "-", true
	case '…':
		return "...", true
	case '\t', '\u00A0', '\u1680', '\u202F', '\u205F', '\u3000':
		return " ", true
	case '\v', '\u0085', '\u2028', '\u2029':
		return "\n", true
	case '\u00AD', '\u200B', '\u2060', '\uFEFF':
		return "", true
	case 'ˆ':
		return "^", true
	case '˜':
		return "~", true
	case '⁄':
		return "/", true
	case utf8.RuneError:
		// A bad byte decodes to U+FFFD too; writing U+FFFD makes it valid, so
		// that removing a character between two bad bytes cannot join them
		// into a character the next call would replace.
		return "\uFFFD", true
	}
	if r >= '\u2000' && r <= '\u200A' { // en quad to hair space
		return " ", true
	}
	return "", false
}
