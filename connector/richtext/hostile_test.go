package richtext

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostileSize is the size of the agent line that took the daemon down: a
// 320 KB nested list ran out of memory in PlainText.
const hostileSize = 320 << 10

// converter is one of the package's text converters with its output bound.
type converter struct {
	name  string
	conv  func(string) string
	bound func(n int) int // largest output allowed for n bytes of input
}

func converters() []converter {
	names := map[string]string{"U1": strings.Repeat("n", 200), "C1": "general"}
	return []converter{
		{"PlainText", PlainText, func(n int) int { return 4*n + 64 }},
		{"Mrkdwn", Mrkdwn, func(n int) int { return 6*n + 64 }},
		{"MarkdownToMrkdwn", MarkdownToMrkdwn, func(n int) int { return 6*n + 64 }},
		{"PlainFromMrkdwn", func(s string) string { return PlainFromMrkdwn(s, names) }, func(n int) int { return 8*n + 64 }},
		{"EscapeMrkdwn", EscapeMrkdwn, func(n int) int { return 5 * n }},
	}
}

// repeatTo repeats unit until the result is about size bytes.
func repeatTo(unit string, size int) string { return strings.Repeat(unit, size/len(unit)) }

// hostileInputs are inputs that made a converter quadratic in time or output
// (or that make goldmark so), each about hostileSize bytes.
func hostileInputs() map[string]string {
	n := hostileSize
	if raceEnabled {
		// The race detector slows goldmark a hundredfold; a smaller input
		// keeps the budget about this package's growth, not the detector's.
		n /= 8
	}
	return map[string]string{
		"nested ul li":          repeatTo("<ul><li>x", n),
		"nested ol big start":   repeatTo("<ol start=999999><li>", n),
		"li in deep list":       strings.Repeat("<ul>", 64) + repeatTo("<li>", n),
		"nested b i":            repeatTo("<b><i>x", n),
		"empty b before div":    "x" + repeatTo("<b></b><div>", n),
		"misnested b i":         repeatTo("<b><i>x</b>", n),
		"stray end tags":        "<b>" + repeatTo("<i>", n/2) + repeatTo("</b>", n/2),
		"nested links":          repeatTo(`<a href="https://e.com/">x`, n),
		"nested quotes":         repeatTo("<blockquote><p>x", n),
		"pre and bold":          repeatTo("<pre><b>x", n),
		"unclosed heads":        repeatTo("<head>x", n),
		"closed heads":          repeatTo("<head>x</head>y", n),
		"ampersands":            repeatTo("&", n),
		"md list markers":       repeatTo("- ", n) + "x",
		"md quote lazy lines":   repeatTo(">", n/2) + "a\n" + repeatTo("a\n", n/2),
		"md nested list lines":  nestedListLines(n),
		"md emphasis pairs":     repeatTo("*a ", n/2) + repeatTo("a* ", n/2),
		"md mixed delimiters":   repeatTo("*a_b*c_d**e_f*g**h*i_j**", n),
		"md rule of three":      "a**b" + repeatTo("c* ", n),
		"md star run":           repeatTo("*", n/2) + "a" + repeatTo("*", n/2),
		"md emphasis lines":     "**" + repeatTo("a\n", n) + "**",
		"md brackets":           repeatTo("[", n/2) + "a" + repeatTo("]", n/2),
		"md unclosed link dest": repeatTo("[a](<b", n),
		"md nested images":      repeatTo("![", n/2) + "a" + repeatTo("](b)", n/4),
		"md underscores":        repeatTo("*_* _ ", n),
		"md link openers":       repeatTo("[ a_", n),
		"slack markers":         repeatTo("*a ", n),
		"slack mentions":        repeatTo("<@U1>", n),
		"slack fences":          repeatTo("```\n", n),
		"slack unclosed code":   repeatTo("`a\n", n),
	}
}

func nestedListLines(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(strings.Repeat("  ", i%200) + "* a\n")
	}
	return b.String()
}

// TestHostileInputsBounded runs every converter on every hostile input: each
// must finish within the time budget with output within its bound. Before
// the limits, PlainText on "nested ul li" wrote 1.3 GB in 60 s, Mrkdwn on
// "nested b i" took 14 s, and MarkdownToMrkdwn on "md emphasis pairs" took
// minutes.
func TestHostileInputsBounded(t *testing.T) {
	budget := 3 * time.Second
	if raceEnabled {
		budget = 10 * time.Second
	}
	inputs := hostileInputs()
	for _, c := range converters() {
		for name, in := range inputs {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				done := make(chan string, 1)
				start := time.Now()
				go func() { done <- c.conv(in) }()
				select {
				case out := <-done:
					if len(out) > c.bound(len(in)) {
						t.Errorf("%d bytes in, %d out: over the bound %d", len(in), len(out), c.bound(len(in)))
					}
					if !utf8.ValidString(out) {
						t.Errorf("invalid UTF-8 out")
					}
					t.Logf("%d bytes in, %d out, %v", len(in), len(out), time.Since(start))
				case <-time.After(budget):
					t.Fatalf("%d bytes in: not done after %v", len(in), budget)
				}
			})
		}
	}
}

// TestDeepNestingFlattened checks that nesting beyond the caps is flattened,
// not dropped: every item's text is there, at bounded indentation.
func TestDeepNestingFlattened(t *testing.T) {
	var html, md strings.Builder
	for i := range 100 {
		fmt.Fprintf(&html, "<ul><li>item%d", i)
		fmt.Fprintf(&md, "%s- item%d\n", strings.Repeat("  ", i), i)
	}
	for name, out := range map[string]string{
		"PlainText":        PlainText(html.String()),
		"Mrkdwn":           Mrkdwn(html.String()),
		"MarkdownToMrkdwn": MarkdownToMrkdwn(md.String()),
	} {
		for i := range 100 {
			if !strings.Contains(out, fmt.Sprintf("item%d", i)) {
				t.Errorf("%s lost item%d", name, i)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if indent := len(line) - len(strings.TrimLeft(line, " ")); indent > 4*(maxIndent-1) {
				t.Errorf("%s: line %q indented by %d", name, line, indent)
				break
			}
		}
	}
	bold := strings.Repeat("<b><i>", 40) + "deep" + strings.Repeat("</i></b>", 40) + " after"
	if got, want := Mrkdwn(bold), "*_deep_* after"; got != want {
		t.Errorf("Mrkdwn(40 nested b/i) = %q, want %q", got, want)
	}
	quotes := strings.Repeat("> ", 40) + "deep"
	if got := MarkdownToMrkdwn(quotes); !strings.HasPrefix(got, "> ") || !strings.HasSuffix(got, "deep") {
		t.Errorf("MarkdownToMrkdwn(40 nested quotes) = %q", got)
	}
}

// TestCutMrkdwn cuts at every length: the result is a prefix within the
// limit that never splits an escape, a link or a rune.
func TestCutMrkdwn(t *testing.T) {
	s := "a &amp; <https://x.io/?a=1&amp;b=2|label here> *b* 日本 &lt;x&gt;\n> q"
	for limit := 0; limit <= len(s)+1; limit++ {
		got := cutMrkdwn(s, limit)
		if len(got) > limit || !strings.HasPrefix(s, got) {
			t.Fatalf("cutMrkdwn(%d) = %q", limit, got)
		}
		if err := checkMrkdwn(got); err != nil {
			t.Fatalf("cutMrkdwn(%d) = %q: %v", limit, got, err)
		}
	}
}

// TestMarkdownOutputCut feeds MarkdownToMrkdwn a line whose rendering grows
// past its bound (lazy lines in a deep quoted list, each marked three
// times): the result is cut at the bound and still valid mrkdwn.
func TestMarkdownOutputCut(t *testing.T) {
	in := "> - - - - ***~~a\n" + strings.Repeat("a\n", 5000) + "~~***"
	out := MarkdownToMrkdwn(in)
	if len(out) > 6*len(in)+64 {
		t.Errorf("%d bytes out of %d: over the bound", len(out), len(in))
	}
	if len(out) < 5*len(in) {
		t.Errorf("%d bytes out of %d: the input was meant to reach the bound", len(out), len(in))
	}
	if err := checkMrkdwn(out); err != nil {
		t.Error(err)
	}
}
