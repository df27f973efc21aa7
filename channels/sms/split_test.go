package sms

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func TestSplit(t *testing.T) {
	word := func(r string, n int) string { return strings.Repeat(r, n) }
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"white space only", " \n\t ", nil},
		{"short", "hello", []string{"hello"}},
		{"trimmed", "  hello \n", []string{"hello"}},
		{"exactly the limit", word("a", 1600), []string{word("a", 1600)}},
		{"limit plus surrounding space", "  " + word("a", 1600) + "  ", []string{word("a", 1600)}},
		// Cuts fall where they cost the fewest segments: 1530 GSM-7
		// characters are 10 full parts of 153, and the rest one SMS.
		{"one over: cut at a segment boundary", word("a", 1601), []string{word("a", 1530), word("a", 71)}},
		{"cut at the last space", word("a", 1000) + " " + word("b", 700),
			[]string{word("a", 1000), word("b", 700)}},
		{"space right after the limit", word("a", 1600) + " b", []string{word("a", 1530), word("a", 70) + " b"}},
		{"newline is white space", word("a", 900) + "\n\n" + word("b", 900),
			[]string{word("a", 900), word("b", 900)}},
		{"long word after a short one", "hi " + word("x", 2000),
			[]string{"hi " + word("x", 1597), word("x", 403)}},
		{"multi-byte runes count once", word("é", 1600), []string{word("é", 1600)}},
		// 792 emoji are 1584 UTF-16 units, 24 full UCS-2 parts of 67 less one unit.
		{"emoji count twice", word("👋", 801), []string{word("👋", 792), word("👋", 9)}},
		{"cut never splits a rune", word("a", 1599) + "👋", []string{word("a", 1599), "👋"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&Channel{}).Split(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split (-want +got):\n%s", diff)
			}
			for i, p := range got {
				if p == "" || p != strings.TrimSpace(p) || !utf8.ValidString(p) {
					t.Errorf("part %d = %q: empty, untrimmed or broken", i, p)
				}
				if n := len(utf16.Encode([]rune(p))); n > MaxBody {
					t.Errorf("part %d has %d UTF-16 units", i, n)
				}
			}
		})
	}
}

// An agent's HTML line is rendered to plain text before the core stores and
// splits it; Markdown stays as it is.
func TestRender(t *testing.T) {
	var c Channel
	for _, tc := range []struct {
		text string
		f    connector.Format
		want string
	}{
		{"<p>Hi, I'm <b>Alice</b></p>", connector.FormatHTML, "Hi, I'm Alice"},
		{"**bold** stays", connector.FormatMarkdown, "**bold** stays"},
	} {
		got, f := c.Render(tc.text, tc.f)
		if got != tc.want || f != connector.FormatPlain {
			t.Errorf("Render(%q, %s) = %q, %s; want %q, plain", tc.text, tc.f, got, f, tc.want)
		}
	}
}
