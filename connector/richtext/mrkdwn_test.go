package richtext

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeMrkdwn(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain *bold* _x_ ~y~ `z`", "plain *bold* _x_ ~y~ `z`"},
		{"a & b < c > d", "a &amp; b &lt; c &gt; d"},
		{"&amp;", "&amp;amp;"},
		{"<@U123>", "&lt;@U123&gt;"},
		{"\"quotes\" 'x'", "\"quotes\" 'x'"},
	}
	for _, tt := range tests {
		if got := EscapeMrkdwn(tt.in); got != tt.want {
			t.Errorf("EscapeMrkdwn(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMrkdwn(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"only spaces", "  \n ", ""},
		{"plain", "Hello there", "Hello there"},
		{"plain collapses space", "  Hello \n  there  ", "Hello there"},
		{"CRLF collapses", "a\r\nb", "a b"},

		// Emphasis.
		{"bold", "<b>bold</b> and <strong>strong</strong>", "*bold* and *strong*"},
		{"italic", "<i>it</i> and <em>em</em>", "_it_ and _em_"},
		{"strike", "<s>a</s> <strike>b</strike> <del>c</del>", "~a~ ~b~ ~c~"},
		{"code", "run <code>ls -l</code> now", "run `ls -l` now"},
		{"upper-case tags", "<B>x</B> <EM>y</EM>", "*x* _y_"},
		{"nested emphasis", "<b><i>both</i></b>", "*_both_*"},
		{"nested in text", "<b>bold <i>and it</i> bold</b>", "*bold _and it_ bold*"},
		{"same kind nested once", "<b>a <strong>b</strong> c</b>", "*a b c*"},
		{"spaces go outside", "x<b> hi </b>y", "x *hi* y"},
		{"spaces go outside at edges", "<b> hi </b>", "*hi*"},
		{"empty bold", "a<b></b>b", "ab"},
		{"blank bold", "a<b> </b>b", "a b"},
		{"nbsp bold", "a<b>&nbsp;</b>b", "a b"},
		{"intraword bold keeps text", "he<b>ll</b>o", "hello"},
		{"bold before word", "<b>un</b>usual", "unusual"},
		{"bold after digit", "2<b>x</b>", "2x"},
		{"bold before punctuation", "<b>Bob</b>'s, <b>x</b>.", "*Bob*'s, *x*."},
		{"bold in parens", "(<b>x</b>)", "(*x*)"},
		{"adjacent bolds merge", "<b>a</b><b>b</b>", "*ab*"},
		{"adjacent bolds with space", "<b>a </b><b>b</b>", "*a* *b*"},
		{"bold across lines", "<b>one<br>two</b>", "*one*\n*two*"},
		{"bold across paragraphs", "<b><p>one</p><p>two</p></b>", "*one*\n\n*two*"},
		{"misnested", "<b>a <i>b</b> c</i>", "*a _b_* _c_"},
		{"unclosed bold", "<b>bold", "*bold*"},
		{"stray end tag", "a</b> b</i>", "a b"},
		{"italic snake case text", "<i>snake_case</i>", "_snake_case_"},
		{"emphasis in code is dropped", "<code><b>x</b> y</code>", "`x y`"},
		{"code in bold", "<b>run <code>x</code></b>", "*run `x`*"},
		{"empty code", "a <code></code> b", "a b"},

		// Pre.
		{"pre", "<pre>a  b\n  c</pre>d", "```\na  b\n  c\n```\nd"},
		{"pre drops first newline", "<pre>\nx\n</pre>", "```\nx\n```"},
		{"pre escapes", "<pre>if a &lt; b &amp;&amp; <b>c</b> {}</pre>", "```\nif a &lt; b &amp;&amp; c {}\n```"},
		{"pre with code", "<pre><code>x := 1\ny := 2</code></pre>", "```\nx := 1\ny := 2\n```"},
		{"pre CRLF", "<pre>a\r\nb</pre>", "```\na\nb\n```"},
		{"pre br", "<pre>a<br>b</pre>", "```\na\nb\n```"},
		{"empty pre", "a<pre> \n</pre>b", "a\nb"},
		{"unclosed pre", "<pre>x", "```\nx\n```"},
		{"bold around pre", "<b>x<pre>code</pre>y</b>", "*x*\n```\ncode\n```\n*y*"},
		{"bold closed inside pre", "<b>x<pre>co</b>de</pre>y", "*x*\n```\ncode\n```\ny"},

		// Links and images.
		{"link", `see <a href="https://example.com/x">our site</a>.`, "see <https://example.com/x|our site>."},
		{"link text is url", `<a href="https://example.com">https://example.com</a>`, "<https://example.com>"},
		{"link without text", `go <a href="https://example.com"></a> now`, "go <https://example.com> now"},
		{"link with & in query", `<a href="https://x.io/a?b=1&amp;c=2">q</a>`, "<https://x.io/a?b=1&amp;c=2|q>"},
		{"link with raw & in query", `<a href="https://x.io/a?b=1&c=2">q</a>`, "<https://x.io/a?b=1&amp;c=2|q>"},
		{"link with pipe and space", `<a href="https://x.io/a|b c">q</a>`, "<https://x.io/a%7Cb%20c|q>"},
		{"link label escaped", `<a href="https://x.io">a &lt;b&gt; &amp; c</a>`, "<https://x.io|a &lt;b&gt; &amp; c>"},
		{"link label drops formatting", `<a href="https://x.io"><b>click</b> here</a>`, "<https://x.io|click here>"},
		{"link label across lines", `<a href="https://x.io">a<br>b</a>`, "<https://x.io|a b>"},
		{"bold link", `<b><a href="https://x.io">x</a></b>`, "*<https://x.io|x>*"},
		{"mailto", `<a href="mailto:help@example.com">mail us</a>`, "<mailto:help@example.com|mail us>"},
		{"http upper case", `<a href="HTTP://E.COM">e</a>`, "<HTTP://E.COM|e>"},
		{"javascript link keeps text", `<a href="javascript:alert(1)">x</a>`, "x"},
		{"tel link keeps text", `<a href="tel:+123">call</a>`, "call"},
		{"relative link keeps text", `<a href="/faq">FAQ</a>`, "FAQ"},
		{"link without href", `<a name="x">anchor</a>`, "anchor"},
		{"nested links end the outer one, as in a browser", `<a href="https://a.io">a <a href="https://b.io">b</a></a>`, "<https://a.io|a> <https://b.io|b>"},
		{"unclosed link", `<a href="https://e.com">e`, "<https://e.com|e>"},
		{"space before link kept", `x <a href="https://e.com">e</a>`, "x <https://e.com|e>"},
		{"image alt", `look <img src="https://e.com/i.png" alt="a cat"> here`, "look <https://e.com/i.png|a cat> here"},
		{"image src", `<img src="https://e.com/i.png">`, "<https://e.com/i.png>"},
		{"image data url", `<img src="data:image/png;base64,xx" alt="pic">`, "pic"},
		{"image in link", `<a href="https://e.com"><img src="https://e.com/i.png" alt="logo"></a>`, "<https://e.com|logo>"},

		// Blocks.
		{"br", "one<br>two<br/>three", "one\ntwo\nthree"},
		{"many br collapse", "one<br><br><br><br>two", "one\n\ntwo"},
		{"paragraphs", "<p>Hi</p><p>How can I help?</p>", "Hi\n\nHow can I help?"},
		{"divs", "<div>one</div><div>two</div>three", "one\ntwo\nthree"},
		{"unordered list", "Options:<ul><li>one</li><li>two</li></ul>Done", "Options:\n• one\n• two\nDone"},
		{"ordered list", "<ol><li>first</li><li>second</li></ol>", "1. first\n2. second"},
		{"ordered list start", "<ol start=\"3\"><li>c<li>d</ol>", "3. c\n4. d"},
		{"nested list", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "• a\n    • b\n• c"},
		{"list item with bold", "<ul><li><b>x</b> y</li></ul>", "• *x* y"},
		{"bold around list", "<b><ul><li>x</li><li>y</li></ul></b>", "• *x*\n• *y*"},
		{"list item paragraphs", "<ul><li><p>a</p></li><li><p>b</p></li></ul>", "• a\n• b"},
		{"empty item dropped", "<ul><li></li><li>b</li></ul>", "• b"},
		{"formatted source", "<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>\n", "• a\n• b"},
		{"heading", "<h1>Title</h1>text", "*Title*\ntext"},
		{"heading with bold", "<h2>A <b>big</b> deal</h2>", "*A big deal*"},
		{"heading after text", "intro<h3>Part</h3>", "intro\n*Part*"},
		{"blockquote", "<blockquote>quoted<br>two</blockquote>after", "> quoted\n> two\nafter"},
		{"blockquote paragraphs", "<blockquote><p>a</p><p>b <i>c</i></p></blockquote>", "> a\n> b _c_"},
		{"blockquote escapes text", "<blockquote>a &gt; b</blockquote>", "> a &gt; b"},
		{"table", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
		{"hr", "a<hr>b", "a\n———\nb"},

		// Dropped and unknown.
		{"script and style dropped", "a<script>var x = '<b>';</script>b<style>p{}</style>c", "abc"},
		{"head dropped", "<html><head><title>T</title><meta x></head><body>hi</body></html>", "hi"},
		{"unclosed head is not dropped", "<head>hi", "hi"},
		{"comment dropped", "a<!-- <b>x</b> -->b", "ab"},
		{"unknown tags keep text", "<font color=red>red</font> <blink>now</blink> <u>u</u>", "red now u"},

		// Entities and escaping.
		{"entities", "a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; 1&ndash;2 &#x263A;", `a &amp; b &lt;c&gt; "d" 'e' 1–2 ☺`},
		{"escaped less-than stays escaped", "a &lt; b", "a &lt; b"},
		{"unknown entity", "&bogus; x", "&amp;bogus; x"},
		{"lone less-than", "1 < 2 and 3<4", "1 &lt; 2 and 3&lt;4"},
		{"less-than at end", "a <", "a &lt;"},
		{"unterminated tag is text", "a <b c", "a &lt;b c"},
		{"unterminated end tag is text", "a </b", "a &lt;/b"},
		{"raw greater-than", "a > b", "a &gt; b"},
		{"markers in text", "2*3*4 and snake_case", "2*3*4 and snake_case"},
		{"mention-like text escaped", "&lt;@U123&gt; <!here>", "&lt;@U123&gt;"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"unicode", "<p>Grüße 👋 <b>日本</b></p>", "Grüße 👋 *日本*"},
		{"whosOn style", "Hello, my name is <b>Alice</b>.<br />How can I help you today?", "Hello, my name is *Alice*.\nHow can I help you today?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Mrkdwn(tt.in)
			if got != tt.want {
				t.Errorf("Mrkdwn(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if err := checkMrkdwn(got); err != nil {
				t.Errorf("Mrkdwn(%q) = %q: %v", tt.in, got, err)
			}
		})
	}
}

// checkMrkdwn checks that out has no raw '&', '<' or '>' that is not Slack
// markup: '&' starts &amp; &lt; or &gt;, '<' starts an http, https or mailto
// link closed by '>' on the same line, and any other '>' is a quote prefix at
// the start of a line.
func checkMrkdwn(out string) error {
	if !utf8.ValidString(out) {
		return fmt.Errorf("invalid UTF-8")
	}
	lineStart := true
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch c {
		case '&':
			rest := out[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				return fmt.Errorf("raw & at %d", i)
			}
		case '<':
			end := strings.IndexAny(out[i+1:], "<>\n")
			if end < 0 || out[i+1+end] != '>' {
				return fmt.Errorf("raw < at %d", i)
			}
			target, _, _ := strings.Cut(out[i+1:i+1+end], "|")
			if !slackLinkable(target) || strings.ContainsAny(target, " \t") {
				return fmt.Errorf("< at %d starts no link", i)
			}
			i += end + 1
		case '>':
			if !lineStart {
				return fmt.Errorf("raw > at %d", i)
			}
		}
		switch {
		case c == '\n':
			lineStart = true
		case c != ' ' && c != '\t':
			lineStart = false
		}
	}
	return nil
}

func FuzzMrkdwn(f *testing.F) {
	for _, s := range []string{
		"", "<b>x</b>", "he<b>ll</b>o", `<a href="https://e.com?a=1&amp;b">e</a>`, "<ul><li>a", "<ol><li>x<ul><li>y",
		"<!--", "<script>", "a < b", "&amp;", "<pre>\n<b>x", "<b>a<pre>b</b>c</pre>", "<blockquote><p>a<b>b<br>c",
		"<h1><i>x</i></h1>", `<img src="https://x" alt="<>">`, "<b> </b>", "<a href=https://x><b>y</a>z</b>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Mrkdwn(in)
		if len(out) > 6*len(in)+64 {
			t.Fatalf("Mrkdwn(%q): %d bytes out, over the bound 6*%d+64", in, len(out), len(in))
		}
		if err := checkMrkdwn(out); err != nil {
			t.Fatalf("Mrkdwn(%q) = %q: %v", in, out, err)
		}
		if out != strings.TrimSpace(out) {
			t.Errorf("Mrkdwn(%q) = %q: not trimmed", in, out)
		}
		if strings.Contains(out, "\n\n\n") {
			t.Errorf("Mrkdwn(%q) = %q: more than one blank line", in, out)
		}
		for _, c := range []byte(out) {
			if c >= sentContent {
				t.Fatalf("Mrkdwn(%q) = %q: sentinel left", in, out)
			}
		}
	})
}

func FuzzEscapeMrkdwn(f *testing.F) {
	for _, s := range []string{"", "a & b < c > d", "&amp;", "<@U1>", "*x* _y_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := EscapeMrkdwn(in)
		if len(out) > 5*len(in) {
			t.Fatalf("EscapeMrkdwn(%q): %d bytes out, over the bound 5*%d", in, len(out), len(in))
		}
		if utf8.ValidString(in) {
			if err := checkMrkdwn(out); err != nil {
				t.Fatalf("EscapeMrkdwn(%q) = %q: %v", in, out, err)
			}
		}
		if got := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(out); got != in {
			t.Fatalf("EscapeMrkdwn(%q) = %q: does not read back", in, out)
		}
	})
}
