// Package richtext renders the restricted HTML that agents' lines arrive in
// (WhosOn, and other vendors later) for channels that carry plain text only,
// such as SMS.
//
// HTML is read with golang.org/x/net/html's tokenizer and Markdown is parsed
// with github.com/yuin/goldmark; this package only renders for each channel.
// Every converter is linear in its input and bounds its output (see each
// function's contract and README.md), since agents' lines are rendered when
// they are sent and nothing splits them before.
package richtext

import (
	"strconv"
	"strings"
)

// PlainText renders an HTML fragment as plain text:
//   - tags are removed and the text inside them kept; <b>, <i>, <strong>,
//     <em>, <span> and unknown tags leave no trace, so they never add spaces;
//   - <br> is a line break, </p> ends a paragraph (a blank line), block
//     elements such as <div>, <ul>, <tr> and headings start and end lines;
//   - runs of white space collapse to one space, as in HTML (except in <pre>),
//     at most one blank line is kept in a row, lines carry no trailing spaces,
//     and the result is trimmed;
//   - entities are decoded (&ndash; is "–", &quot; is `"`), and a no-break
//     space becomes a plain one (it is not in the GSM-7 SMS alphabet);
//   - <a href="u">text</a> is "text (u)", or just "u" when the text is the
//     address; links other than http(s), mailto and tel keep only their text;
//   - list items are "- item", or "1. item" in an <ol>, indented by two spaces
//     per level of nesting up to four levels (deeper items are written at the
//     fourth);
//   - <img> is its alt text, or its address when it has none;
//   - an <a> inside an open <a> ends the first link, as in a browser;
//   - the contents of <script>, <style> and <title> are dropped, and so are
//     comments.
//
// Malformed input never fails: a '<' that starts no tag is text.
//
// Bound: the result is at most 4*len(html)+64 bytes; an input that would
// render longer (only a hostile one can) is cut at that length. Time is
// linear in len(html).
func PlainText(html string) string {
	limit := outputLimit(4, len(html))
	if !strings.ContainsAny(html, "<&") {
		return cutText(tidy(collapse(html)), limit)
	}
	r := renderer{z: newTokenizer(html)}
	for len(r.out) <= limit {
		t, ok := r.z.next()
		if !ok {
			break
		}
		r.token(t)
	}
	if r.link != nil { // unclosed <a>
		r.endLink()
	}
	return cutText(tidy(string(r.out)), limit)
}

// renderer builds plain text from tokens.
type renderer struct {
	z     *tokenizer
	out   []byte
	space bool  // white space is pending before the next word
	pre   int   // depth of <pre>
	link  *link // the open <a>, if any
	lists []list
}

type link struct {
	href  string
	start int // offset in out where the link's text begins
}

type list struct {
	ordered bool
	n       int
}

// isBlock reports whether an element starts and ends on a line of its own.
func isBlock(name string) bool {
	switch name {
	case "div", "section", "article", "header", "footer", "nav", "aside", "main",
		"blockquote", "table", "thead", "tbody", "tfoot", "tr", "form", "figure",
		"figcaption", "address", "dl", "dt", "dd", "hr", "center",
		"h1", "h2", "h3", "h4", "h5", "h6":
		return true
	}
	return false
}

func (r *renderer) token(t token) {
	switch t.kind {
	case tokText:
		r.text(t.text)
	case tokStart:
		r.start(t)
	case tokEnd:
		r.end(t.name)
	}
}

func (r *renderer) start(t token) {
	switch name := t.name; {
	case name == "br":
		r.lineBreak()
	case name == "p":
		r.paragraph()
	case name == "li":
		r.item()
	case name == "ul" || name == "ol":
		r.lineStart()
		r.lists = append(r.lists, list{ordered: name == "ol"})
	case name == "a":
		if r.link != nil {
			r.endLink()
		}
		r.link = &link{href: strings.TrimSpace(t.attrs["href"]), start: len(r.out)}
	case name == "img":
		r.image(t.attrs)
	case name == "pre":
		r.lineStart()
		r.pre++
	case name == "td" || name == "th":
		r.space = true
	case isBlock(name):
		r.lineStart()
	}
}

func (r *renderer) end(name string) {
	switch {
	case name == "p":
		r.paragraph()
	case name == "li":
		r.lineStart()
	case name == "ul" || name == "ol":
		if len(r.lists) > 0 {
			r.lists = r.lists[:len(r.lists)-1]
		}
		r.lineStart()
	case name == "a":
		if r.link != nil {
			r.endLink()
		}
	case name == "pre":
		r.pre = max(r.pre-1, 0)
		r.lineStart()
	case isBlock(name):
		r.lineStart()
	}
}

// text writes decoded text, collapsing white space outside <pre>.
func (r *renderer) text(s string) {
	s = strings.ReplaceAll(s, "\u00a0", " ")
	if r.pre > 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		r.out = append(r.out, s...)
		r.space = false
		return
	}
	for i, w := range strings.Fields(s) {
		if i > 0 || isSpace(s[0]) {
			r.space = true
		}
		r.word(w)
	}
	if s != "" && isSpace(s[len(s)-1]) {
		r.space = true
	}
}

// word writes w, preceded by one space if white space is pending and the
// line has started.
func (r *renderer) word(w string) {
	if r.space && len(r.out) > 0 {
		if last := r.out[len(r.out)-1]; last != '\n' && last != ' ' {
			r.out = append(r.out, ' ')
		}
	}
	r.space = false
	r.out = append(r.out, w...)
}

func (r *renderer) lineBreak() {
	r.out = append(trimRightSpaces(r.out), '\n')
	r.space = false
}

// lineStart makes sure what follows starts a line.
func (r *renderer) lineStart() {
	r.out = trimRightSpaces(r.out)
	if len(r.out) > 0 && r.out[len(r.out)-1] != '\n' {
		r.out = append(r.out, '\n')
	}
	r.space = false
}

// paragraph makes sure what follows is separated by a blank line.
func (r *renderer) paragraph() {
	r.lineStart()
	if len(r.out) > 0 && (len(r.out) < 2 || r.out[len(r.out)-2] != '\n') {
		r.out = append(r.out, '\n')
	}
}

func (r *renderer) item() {
	r.lineStart()
	marker := "- "
	depth := len(r.lists)
	if depth > 0 {
		l := &r.lists[depth-1]
		l.n++
		if l.ordered {
			marker = strconv.Itoa(l.n) + ". "
		}
	}
	r.out = append(r.out, strings.Repeat("  ", min(max(depth-1, 0), maxIndent-1))+marker...)
}

func (r *renderer) image(attrs map[string]string) {
	alt := strings.Join(strings.Fields(attrs["alt"]), " ")
	src := strings.TrimSpace(attrs["src"])
	switch {
	case alt != "":
		r.word(alt)
	case linkable(src):
		r.word(src)
	}
}

// endLink closes the innermost <a>: "text (href)", or "href" when the text
// is the address or empty.
func (r *renderer) endLink() {
	l := r.link
	r.link = nil
	if !linkable(l.href) {
		return
	}
	text := strings.TrimSpace(string(r.out[min(l.start, len(r.out)):]))
	switch {
	case text == "":
		r.word(l.href)
	case sameAddress(text, l.href):
	default:
		r.space = true
		r.word("(" + l.href + ")")
	}
}

// linkable reports whether href is worth showing to someone reading an SMS.
func linkable(href string) bool {
	lower := strings.ToLower(href)
	for _, p := range []string{"http://", "https://", "mailto:", "tel:"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// sameAddress reports whether a link's text already is its address
// ("x@example.com" for "mailto:x@example.com" counts).
func sameAddress(text, href string) bool {
	if text == href {
		return true
	}
	lower := strings.ToLower(href)
	for _, p := range []string{"mailto:", "tel:"} {
		if strings.HasPrefix(lower, p) && text == href[len(p):] {
			return true
		}
	}
	return false
}

func trimRightSpaces(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// collapse is white-space collapsing for input without markup.
func collapse(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\u00a0", " ")), " ")
}

// tidy drops trailing spaces on every line, keeps at most one blank line in a
// row, and trims the whole.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
