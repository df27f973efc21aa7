package richtext

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestMrkdwnRefs(t *testing.T) {
	tests := []struct {
		name, in        string
		users, channels []string
	}{
		{"empty", "", nil, nil},
		{"none", "hello *there* &lt;@U1&gt;", nil, nil},
		{"users and channels", "hi <@U123> and <@W456> in <#C789>", []string{"U123", "W456"}, []string{"C789"}},
		{"each once in order", "<@U2> <@U1> <@U2> <#C2> <#C1> <#C2>", []string{"U2", "U1"}, []string{"C2", "C1"}},
		{"labelled are not listed", "<@U1|ann> <#C1|general> <@U2>", []string{"U2"}, nil},
		{"empty label is listed", "<@U1|>", []string{"U1"}, nil},
		{"labelled then unlabelled", "<#C1|general> <#C1>", nil, []string{"C1"}},
		{"specials are not ids", "<!here> <!subteam^S1> <https://x.io|x>", nil, nil},
		{"malformed", "<@> <#> <@U1 <@u1> <@U1\n> <<@U3>", []string{"U3"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, channels := MrkdwnRefs(tt.in)
			if diff := cmp.Diff(tt.users, users); diff != "" {
				t.Errorf("MrkdwnRefs(%q) users (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.channels, channels); diff != "" {
				t.Errorf("MrkdwnRefs(%q) channels (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPlainFromMrkdwn(t *testing.T) {
	names := map[string]string{"U1": "Ann Lee", "C1": "general", "U_AMP": "a&amp;b"}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "Hello there", "Hello there"},
		{"trimmed", "  hi \n", "hi"},
		{"CRLF", "a\r\nb", "a\nb"},

		// Mentions.
		{"user", "hi <@U1>!", "hi @Ann Lee!"},
		{"unknown user", "hi <@U2>", "hi @U2"},
		{"user with label", "hi <@U1|ann>", "hi @ann"},
		{"channel", "in <#C1>", "in #general"},
		{"unknown channel", "in <#C2>", "in #C2"},
		{"channel with label", "in <#C2|random>", "in #random"},
		{"names are used as they are", "<@U_AMP>", "@a&amp;b"},
		{"here channel everyone", "<!here> <!channel> <!everyone>", "@here @channel @everyone"},
		{"old style here", "<!here|here>", "@here"},
		{"subteam", "<!subteam^S123|@team> <!subteam^S456>", "@team @S456"},
		{"date", "due <!date^1392734382^{date} at {time}|Feb 18, 2014 at 6:39 AM PST>", "due Feb 18, 2014 at 6:39 AM PST"},
		{"date without fallback", "<!date^1392734382^{date}>", "date^1392734382^{date}"},
		{"other special", "<!foo|bar> <!foo>", "bar foo"},

		// Links.
		{"link with label", "see <https://x.com|our site>", "see our site (https://x.com)"},
		{"bare link", "see <https://x.com>", "see https://x.com"},
		{"label is url", "<https://x.com|https://x.com>", "https://x.com"},
		{"label is url without scheme", "<http://example.com|example.com>", "example.com"},
		{"mailto", "<mailto:a@b.com|a@b.com>", "a@b.com"},
		{"mailto other label", "<mailto:a@b.com|mail me>", "mail me (mailto:a@b.com)"},
		{"link with & in query", "<https://x.com/?a=1&amp;b=2|Tom &amp; Jerry>", "Tom & Jerry (https://x.com/?a=1&b=2)"},
		{"link with underscores", "<https://x.com/a_b_c|x_y_z>", "x_y_z (https://x.com/a_b_c)"},
		{"bold link", "*<https://x.com|x>*", "x (https://x.com)"},

		// Escapes.
		{"entities last", "a &amp; b &lt;c&gt;", "a & b <c>"},
		{"escaped mention stays text", "&lt;@U1&gt;", "<@U1>"},
		{"double escape", "&amp;lt;", "&lt;"},
		{"other entities kept", "&quot;x&quot; &nbsp;", "&quot;x&quot; &nbsp;"},
		{"quote", "&gt; quoted\nnot", "> quoted\nnot"},
		{"quote with bold", "&gt; *yes*", "> yes"},
		{"block quote", "&gt;&gt;&gt; all\nof this", ">>> all\nof this"},

		// Formatting.
		{"bold italic strike", "*bold* _it_ ~st~", "bold it st"},
		{"nested", "*_both_*", "both"},
		{"crossing", "*a _b* c_", "a b c"},
		{"punctuation around", "(*x*), _y_. \"~z~\"", "(x), y. \"z\""},
		{"snake case", "snake_case_name", "snake_case_name"},
		{"snake case in italic", "_snake_case_", "snake_case"},
		{"intraword stars", "2*3*4", "2*3*4"},
		{"lone star", "2 * 3 = 6 *", "2 * 3 = 6 *"},
		{"space inside", "* a * _ b _", "* a * _ b _"},
		{"empty", "** __ ~~", "** __ ~~"},
		{"unclosed", "*bold and more", "*bold and more"},
		{"across lines", "*a\nb*", "*a\nb*"},
		{"glued after", "*a*b", "*a*b"},
		{"glued before", "a*b*", "a*b*"},
		{"emoji shortcode kept", ":smile: :+1:", ":smile: :+1:"},
		{"bold mention", "*<@U1>*", "@Ann Lee"},

		// Code.
		{"inline code", "run `ls *.go` now", "run ls *.go now"},
		{"code keeps markers", "`*x*` _`y`_", "*x* y"},
		{"code decodes escapes", "`a &lt; b &amp;&amp; c`", "a < b && c"},
		{"code block", "```\nfunc *x*() {}\n```", "func *x*() {}"},
		{"code block inline", "look: ```a_b_c``` ok", "look:\na_b_c\nok"},
		{"code block lines", "before\n```\nl1\n  l2\n```\nafter", "before\nl1\n  l2\nafter"},
		{"code block with link", "```<https://x.com>```", "https://x.com"},
		{"unclosed code", "a `b", "a `b"},
		{"unclosed block", "```a *b*", "```a b"},
		{"empty code", "`` x", "`` x"},
		{"code across lines is not code", "`a\nb`", "`a\nb`"},

		// Malformed.
		{"lone lt", "a < b", "a < b"},
		{"unterminated token", "<@U1 hi", "<@U1 hi"},
		{"empty token", "<> <@> <#> <!> <|x>", "<> <@> <#> <!> <|x>"},
		{"not a token", "<foo> <foo|bar>", "<foo> <foo|bar>"},
		{"nested lt", "<<@U1>>", "<@Ann Lee>"},
		{"invalid utf8", "a\xffb *c*", "a\uFFFDb c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlainFromMrkdwn(tt.in, names); got != tt.want {
				t.Errorf("PlainFromMrkdwn(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPlainFromMrkdwnNilNames(t *testing.T) {
	if got, want := PlainFromMrkdwn("<@U1> <#C1>", nil), "@U1 #C1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestRoundTrip checks that what Mrkdwn writes reads back as the text.
func TestRoundTrip(t *testing.T) {
	tests := []struct{ html, plain string }{
		{"<b>Hi</b> a &lt; b &amp; c", "Hi a < b & c"},
		{`see <a href="https://x.io/?a=1&amp;b=2">here</a>`, "see here (https://x.io/?a=1&b=2)"},
		{"<ul><li><i>one</i></li></ul>", "• one"},
		{"<pre>x_y_z *a*</pre>", "x_y_z *a*"},
	}
	for _, tt := range tests {
		if got := PlainFromMrkdwn(Mrkdwn(tt.html), nil); got != tt.plain {
			t.Errorf("PlainFromMrkdwn(Mrkdwn(%q)) = %q, want %q", tt.html, got, tt.plain)
		}
	}
}

var (
	markupRE = regexp.MustCompile(`<[^<>\n]*>`)
	escapeRE = regexp.MustCompile(`&(amp|lt|gt);`)
)

// wordChars returns the letters and digits of s.
func wordChars(s string) []rune {
	var out []rune
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			out = append(out, r)
		}
	}
	return out
}

// isSubsequence reports whether a appears in b in order.
func isSubsequence(a, b []rune) bool {
	j := 0
	for _, r := range b {
		if j < len(a) && a[j] == r {
			j++
		}
	}
	return j == len(a)
}

func FuzzPlainFromMrkdwn(f *testing.F) {
	for _, s := range []string{
		"", "<@U1> <#C1|x> <!here> <!subteam^S1|@t> <!date^1^{date}|d>", "*b* _i_ ~s~ 2*3*4 snake_case",
		"<https://x.com?a&amp;b|l>", "```x```", "`a` ``", "&lt;@U1&gt;", "&gt; q", "<<>>", "<|>", "```\n```", "*`x`*",
	} {
		f.Add(s)
	}
	names := map[string]string{"U1": "ann"}
	f.Fuzz(func(t *testing.T, in string) {
		out := PlainFromMrkdwn(in, names)
		if len(out) > 8*len(in)+64 {
			t.Fatalf("PlainFromMrkdwn(%q): %d bytes out, over the bound 8*%d+64", in, len(out), len(in))
		}
		if !utf8.ValidString(out) {
			t.Fatalf("PlainFromMrkdwn(%q) = %q: invalid UTF-8", in, out)
		}
		// Every letter and digit outside markup survives, in order.
		text := markupRE.ReplaceAllString(escapeRE.ReplaceAllString(strings.ToValidUTF8(in, "\uFFFD"), ""), "")
		if want, got := wordChars(text), wordChars(out); !isSubsequence(want, got) {
			t.Fatalf("PlainFromMrkdwn(%q) = %q: lost text %q", in, out, string(want))
		}
	})
}

func FuzzMrkdwnRefs(f *testing.F) {
	for _, s := range []string{"", "<@U1> <#C1> <@U1>", "<@U1|ann> <#C1|x> <!here>", "<<@U3>>", "<@U1\n>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		users, channels := MrkdwnRefs(in)
		total := 0
		for _, id := range append(users, channels...) {
			if !isSlackID(id) || !strings.Contains(in, id) {
				t.Fatalf("MrkdwnRefs(%q): %q is not an id in the text", in, id)
			}
			total += len(id)
		}
		if total > len(in) {
			t.Fatalf("MrkdwnRefs(%q): %d bytes of ids from %d of text", in, total, len(in))
		}
	})
}
