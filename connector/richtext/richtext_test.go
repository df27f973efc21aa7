package richtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPlainText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "Hello there", "Hello there"},
		{"plain collapses space", "  Hello \n  there  ", "Hello there"},
		{"inline tags leave no trace", "he<b>ll</b>o <i>wo</i><strong>r</strong><em>ld</em>", "hello world"},
		{"unknown tags keep text", "<font color=red>red</font> <blink>now</blink>", "red now"},
		{"br", "one<br>two<br/>three<BR />four", "one\ntwo\nthree\nfour"},
		{"double br is a blank line", "one<br><br>two", "one\n\ntwo"},
		{"many br collapse", "one<br><br><br><br><br>two", "one\n\ntwo"},
		{"paragraphs", "<p>Hi</p><p>How can I help?</p>", "Hi\n\nHow can I help?"},
		{"text then paragraph", "Hello<p>World", "Hello\n\nWorld"},
		{"divs", "<div>one</div><div>two</div>three", "one\ntwo\nthree"},
		{"nested divs add no blank lines", "<div><div><div>a</div></div></div><div>b</div>", "a\nb"},
		{"entities", "a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; 1&ndash;2 &euro;5 &#x263A;", `a & b <c> "d" 'e' 1–2 €5 ☺`},
		{"nbsp is a plain space", "a&nbsp;b", "a b"},
		{"unknown entity kept", "&bogus; x", "&bogus; x"},
		{"link", `see <a href="https://example.com/x">our site</a>.`, "see our site (https://example.com/x)."},
		{"link text is url", `<a href="https://example.com">https://example.com</a>`, "https://example.com"},
		{"link text is url with spaces", `<a href="https://example.com"> https://example.com </a>!`, "https://example.com !"},
		{"link without text", `go <a href="https://example.com"></a> now`, "go https://example.com now"},
		{"link with markup inside", `<a href='http://x.io/a?b=1&amp;c=2'><b>click</b> here</a>`, "click here (http://x.io/a?b=1&c=2)"},
		{"mailto", `<a href="mailto:help@example.com">help@example.com</a>`, "help@example.com"},
		{"mailto other text", `<a href="mailto:help@example.com">mail us</a>`, "mail us (mailto:help@example.com)"},
		{"javascript link keeps text", `<a href="javascript:alert(1)">x</a>`, "x"},
		{"relative link keeps text", `<a href="/faq">FAQ</a>`, "FAQ"},
		{"unclosed link", `<a href="https://e.com">e`, "e (https://e.com)"},
		{"unordered list", "Options:<ul><li>one</li><li>two</li></ul>Done", "Options:\n- one\n- two\nDone"},
		{"list without closing li", "<ul><li>one<li>two</ul>", "- one\n- two"},
		{"ordered list", "<ol><li>first</li><li>second</li></ol>", "1. first\n2. second"},
		{"nested list", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "- a\n  - b\n- c"},
		{"li outside list", "<li>x</li>", "- x"},
		{"formatted source", "<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>\n", "- a\n- b"},
		{"script and style dropped", "a<script>var x = '<b>';</script>b<style>p{}</style>c<SCRIPT type=x>y</SCRIPT>", "abc"},
		{"unterminated script drops the rest", "a<script>x", "a"},
		{"comment dropped", "a<!-- <b>hidden</b> -->b", "ab"},
		{"doctype dropped", "<!DOCTYPE html><html><head><title>T</title></head><body>hi</body></html>", "hi"},
		{"lone less-than", "1 < 2 and 3<4", "1 < 2 and 3<4"},
		{"less-than at end", "a <", "a <"},
		{"unterminated tag is text", "a <b c", "a <b c"},
		{"unterminated end tag is text", "a </b", "a </b"},
		{"gt in attribute", `<a href="https://e.com/?q=a>b">q</a>`, "q (https://e.com/?q=a>b)"},
		{"unquoted attribute", `<a href=https://e.com>e</a>`, "e (https://e.com)"},
		{"image alt", `look <img src="https://e.com/i.png" alt="a cat"> here`, "look a cat here"},
		{"image src", `<img src="https://e.com/i.png">`, "https://e.com/i.png"},
		{"pre keeps white space", "<pre>a  b\n  c</pre>d", "a  b\n  c\nd"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
		{"heading", "<h1>Title</h1>text", "Title\ntext"},
		{"trailing spaces on lines", "a   <br>   b", "a\nb"},
		{"leading and trailing breaks trimmed", "<br><p></p>hi<br><br>", "hi"},
		{"whosOn style", "Hello, my name is <b>Alice</b>.<br />How can I help you today?", "Hello, my name is Alice.\nHow can I help you today?"},
		{"unicode", "<p>Grüße 👋 日本</p>", "Grüße 👋 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlainText(tt.in); got != tt.want {
				t.Errorf("PlainText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestPlainTextNeverGrowsMarkup checks a property the SMS channel relies on:
// rendering only shortens text that has markup to remove (the router splits
// the raw text before rendering).
func TestPlainTextShortens(t *testing.T) {
	for _, in := range []string{
		"<p>" + strings.Repeat("word ", 400) + "</p>",
		strings.Repeat("<b>x</b>", 300),
		strings.Repeat("a&amp;b ", 300),
	} {
		if got := PlainText(in); len([]rune(got)) > len([]rune(in)) {
			t.Errorf("PlainText grew %d runes to %d", len([]rune(in)), len([]rune(got)))
		}
	}
}

func FuzzPlainText(f *testing.F) {
	for _, s := range []string{"", "<b>x</b>", `<a href="https://e.com">e</a>`, "<ul><li>a", "<!--", "<script>", "a < b", "&amp;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := PlainText(in)
		if len(out) > 4*len(in)+64 {
			t.Fatalf("PlainText(%q): %d bytes out, over the bound 4*%d+64", in, len(out), len(in))
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("PlainText(%q) = %q: invalid UTF-8", in, out)
		}
		if out != strings.TrimSpace(out) {
			t.Errorf("PlainText(%q) = %q: not trimmed", in, out)
		}
		if strings.Contains(out, "\n\n\n") {
			t.Errorf("PlainText(%q) = %q: more than one blank line", in, out)
		}
	})
}
