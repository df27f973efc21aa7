package richtext

import (
	"strings"
	"testing"
)

func TestMarkdownToMrkdwn(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "Hello there", "Hello there"},
		{"blank lines trimmed", "\n\n  \nHello\n\n", "Hello"},
		{"blank lines collapse", "a\n\n\n\nb", "a\n\nb"},
		{"line breaks kept", "a\nb", "a\nb"},
		{"CRLF", "**a**\r\nb\r\n", "*a*\nb"},
		{"trailing spaces dropped", "a  \nb", "a\nb"},

		// Emphasis.
		{"strong stars", "**bold**", "*bold*"},
		{"strong underscores", "__bold__", "*bold*"},
		{"em stars", "*it*", "_it_"},
		{"em underscores", "_it_", "_it_"},
		{"strike", "~~gone~~", "~gone~"},
		{"single tilde strike", "~gone~", "~gone~"},
		{"three tildes literal", "a ~~~ b", "a ~~~ b"},
		{"mixed", "**b** and *i* and ~~s~~", "*b* and _i_ and ~s~"},
		{"nested strong in em", "*a **b** c*", "_a *b* c_"},
		{"nested em in strong", "**a _b_ c**", "*a _b_ c*"},
		{"strong em", "***both***", "_*both*_"},
		{"same marker nested once", "*a _b_ c*", "_a b c_"},
		{"strong in strong once", "**a __b__ c**", "*a b c*"},
		{"snake case", "call snake_case_name now", "call snake_case_name now"},
		{"snake case in em", "_snake_case_", "_snake_case_"},
		{"lone asterisks", "2 * 3 * 4", "2 * 3 * 4"},
		{"intraword asterisks", "2*3*4", "2*3*4"},
		{"intraword strong", "foo**bar**baz", "foo**bar**baz"},
		{"em glued after", "*foo*bar", "*foo*bar"},
		{"em before punctuation", "*foo*, bar", "_foo_, bar"},
		{"unclosed strong", "**unclosed", "**unclosed"},
		{"unclosed em", "a *b c", "a *b c"},
		{"space inside", "** a **", "** a **"},
		{"across lines marked on each line", "**a\nb**", "*a*\n*b*"},
		{"underscore in words", "file_name.txt and __init__", "file_name.txt and *init*"},

		// Code.
		{"code span", "use `x*y*z` here", "use `x*y*z` here"},
		{"code span escapes", "`a < b && c`", "`a &lt; b &amp;&amp; c`"},
		{"code span with backticks", "``a ` b``", "`a ` b`"},
		{"code span strips one space", "`` `x` ``", "``x``"},
		{"unclosed backtick", "a `b", "a `b"},
		{"code does not convert links", "`[t](https://x.io)`", "`[t](https://x.io)`"},
		{"fence", "```\ncode *x*\n```", "```\ncode *x*\n```"},
		{"fence language dropped", "```go\nx := <-ch && y\n```", "```\nx := &lt;-ch &amp;&amp; y\n```"},
		{"tilde fence", "~~~\n# not a heading\n~~~", "```\n# not a heading\n```"},
		{"fence keeps blank lines and spaces", "```\na  \n\n\n  b\n```", "```\na  \n\n\n  b\n```"},
		{"unclosed fence closed", "```\ncode", "```\ncode\n```"},
		{"empty fence dropped", "a\n```\n```\nb", "a\nb"},
		{"longer closing fence", "````\n```\n````", "```\n```\n```"},
		{"text around fence", "before\n```js\nx\n```\nafter **b**", "before\n```\nx\n```\nafter *b*"},

		// Links.
		{"link", "[site](https://example.com)", "<https://example.com|site>"},
		{"link with & in query", "[q](https://x.io/a?b=1&c=2)", "<https://x.io/a?b=1&amp;c=2|q>"},
		{"link with title", `[q](https://x.io "Title")`, "<https://x.io|q>"},
		{"link in angle brackets", "[q](<https://x.io/a b>)", "<https://x.io/a%20b|q>"},
		{"link with parens", "[w](https://en.wikipedia.org/wiki/Go_(game))", "<https://en.wikipedia.org/wiki/Go_(game)|w>"},
		{"link label formatting dropped", "[**bold** `c`](https://x.io)", "<https://x.io|bold c>"},
		{"link label escaped", "[a<b](https://x.io)", "<https://x.io|a&lt;b>"},
		{"link label is url", "[https://x.io](https://x.io)", "<https://x.io>"},
		{"empty link label", "[](https://x.io)", "<https://x.io>"},
		{"mailto link", "[mail](mailto:a@b.com)", "<mailto:a@b.com|mail>"},
		{"relative link keeps text", "[FAQ](/faq)", "FAQ"},
		{"javascript link keeps text", "[**x**](javascript:alert(1))", "*x*"},
		{"not a link", "[a] (b) [c]", "[a] (b) [c]"},
		{"unclosed link", "[a](https://x.io", "[a](https://x.io"},
		{"image", "![a cat](https://x.io/c.png)", "<https://x.io/c.png|a cat>"},
		{"image without alt", "![](https://x.io/c.png)", "<https://x.io/c.png>"},
		{"relative image", "![logo](/l.png)", "logo"},
		{"autolink", "see <https://x.io/a?b=1&c=2>", "see <https://x.io/a?b=1&amp;c=2>"},
		{"email autolink", "<a@b.com>", "<mailto:a@b.com|a@b.com>"},
		{"other scheme autolink", "<ftp://x.io>", "ftp://x.io"},
		{"not an autolink", "a <b> c", "a &lt;b&gt; c"},
		{"bare url", "https://x.io/?a=1&b=2", "https://x.io/?a=1&amp;b=2"},
		{"link then bold", "[a](https://x.io) **b**", "<https://x.io|a> *b*"},

		// Blocks.
		{"heading", "# Title", "*Title*"},
		{"heading levels", "### Part *one*\n###### Six", "*Part _one_*\n*Six*"},
		{"heading closing hashes", "## Title ##", "*Title*"},
		{"heading with bold", "# A **big** deal", "*A big deal*"},
		{"not a heading", "#hashtag and #1", "#hashtag and #1"},
		{"seven hashes", "####### x", "####### x"},
		{"empty heading", "#\ntext", "text"},
		{"bullets", "- a\n* b\n+ c", "• a\n• b\n• c"},
		{"nested bullets keep indentation", "- a\n  - b\n    * c", "• a\n  • b\n    • c"},
		{"bullet with emphasis", "- **a** b", "• *a* b"},
		{"star bullet with em", "* *a* b", "• _a_ b"},
		{"ordered", "1. one\n2) two\n10. ten", "1. one\n2) two\n10. ten"},
		{"ordered with bold", "1. **one**", "1. *one*"},
		{"quote", "> quoted *text*", "> quoted _text_"},
		{"quote without space", ">quoted", "> quoted"},
		{"nested quote flattened", "> > deep", "> deep"},
		{"empty quote line", "> a\n>\n> b", "> a\n>\n> b"},
		{"quote with list", "> - a", "> • a"},
		{"rules", "---\n***\n_ _ _\n- - -", "———\n———\n———\n———"},
		{"two dashes not a rule", "--", "--"},

		// Escapes and entities.
		{"backslash escapes", `\*not em\* \_x\_ \` + "`" + ` \[ \] \# \\`, "*not em* _x_ ` [ ] # \\"},
		{"escaped heading", `\# not heading`, "# not heading"},
		{"backslash before letter kept", `C:\path\to`, `C:\path\to`},
		{"backslash at end kept", `line\`, `line\`},
		{"escaped lt", `\<b>`, "&lt;b&gt;"},
		{"literal specials", "a & b < c > d", "a &amp; b &lt; c &gt; d"},
		{"entities decoded", "&amp; &copy; &#35; &#x41; &quot;", "&amp; © # A \""},
		{"unknown entity", "&bogus; &", "&amp;bogus; &amp;"},
		{"raw html is text", "<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"},
		{"mention text escaped", "<@U123>", "&lt;@U123&gt;"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"unicode emphasis", "**日本** _ü_", "*日本* _ü_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MarkdownToMrkdwn(tt.in)
			if got != tt.want {
				t.Errorf("MarkdownToMrkdwn(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if err := checkMrkdwn(got); err != nil {
				t.Errorf("MarkdownToMrkdwn(%q) = %q: %v", tt.in, got, err)
			}
		})
	}
}

func FuzzMarkdownToMrkdwn(f *testing.F) {
	for _, s := range []string{
		"", "**b** _i_ ~~s~~", "2*3*4 snake_case", "`code`", "```go\nx\n```", "[t](https://x.io?a&b)", "![a](https://x)",
		"<https://x>", "<a@b.c>", "# h", "- a\n  * b", "> q", "---", `\*`, "&amp; &#0; &#x110000;", "[[a](b)](c)",
		"***a** b*", "*a _b* c_", "[a](<b>", "~~~\n", "``` ```", "\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := MarkdownToMrkdwn(in)
		if len(out) > 6*len(in)+64 {
			t.Fatalf("MarkdownToMrkdwn(%q): %d bytes out, over the bound 6*%d+64", in, len(out), len(in))
		}
		if err := checkMrkdwn(out); err != nil {
			t.Fatalf("MarkdownToMrkdwn(%q) = %q: %v", in, out, err)
		}
		if strings.Contains(out, "\r") && !strings.Contains(in, "\r") {
			t.Errorf("MarkdownToMrkdwn(%q) = %q: CR appeared", in, out)
		}
	})
}
