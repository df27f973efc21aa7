package richtext

import (
	"bytes"
	"html"
	"strconv"
	"strings"

	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
)

// MarkdownToMrkdwn renders CommonMark Markdown (read by goldmark, with GFM
// strikethrough) as Slack mrkdwn.
//
// The contract:
//   - **b** and __b__ → *b*; *i* and _i_ → _i_; ~~s~~ and ~s~ → ~s~; what
//     CommonMark does not read as emphasis (snake_case_name, 2 * 3) stays
//     literal, and so does emphasis Slack would not render because a letter
//     or digit touches it from outside ("2*3*4", "foo**bar**baz" keep their
//     delimiters); emphasis of a kind already open is not marked again, and
//     emphasis that spans lines is marked on each line, as Slack has no
//     multi-line emphasis;
//   - `code` is kept; fenced and indented code blocks become ``` blocks
//     without their language tag; nothing inside is converted, but &, < and
//     > are still escaped, as Slack needs everywhere; an empty block is
//     dropped;
//   - [t](u) → <u|t> (<u> when t is empty or is u), ![alt](u) → <u|alt>,
//     <https://x> → <https://x>, <a@b.com> → <mailto:a@b.com|a@b.com>;
//     reference links too; only http, https and mailto addresses become
//     links, others keep their text; link labels carry no formatting;
//   - headings (# and underlined) → *Heading*;
//   - bullet items → "• item", ordered items keep their number and
//     delimiter ("1. ", "2) "); nested lists are indented by two spaces per
//     level up to four levels; "> quote" is kept, nested quotes are written
//     as one level (Slack has one);
//   - a thematic break (---, ***, ___) becomes a line "———";
//   - backslash escapes (\* \_ \` \[ ...) give the literal character, and
//     entities (&amp;, &#39;) are decoded; any &, < and > left are escaped;
//     raw HTML is text;
//   - line breaks inside a paragraph are kept (a newline is a line break in
//     Slack), blank lines between blocks are kept (at most one in a row),
//     lines lose trailing spaces outside code, and the result has no blank
//     lines at its start or end.
//
// Slack has no escape for *, _ and ~, so a literal one written as \* may
// still pair up with another in Slack. Invalid UTF-8 becomes U+FFFD.
//
// Bounds: lists and quotes nest at most 16 deep, and a paragraph reads at
// most 128 emphasis runs and link brackets (later ones are text); the
// result is at most 6*len(md)+64 bytes, cut there (never inside an escape
// or a link) if a hostile input would render longer. Time is linear in
// len(md).
func MarkdownToMrkdwn(md string) string {
	limit := outputLimit(6, len(md))
	s := strings.ToValidUTF8(md, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	src := []byte(s)
	doc, info := parseMarkdown(src)
	w := &mdWriter{src: src, info: info, limit: limit}
	w.walk(doc)
	w.endLine()
	return cutMrkdwn(string(w.b), limit)
}

// mdWriter renders a goldmark tree as mrkdwn, line by line: a line's quote
// prefix, indentation and list markers are written before its first
// content, and Slack markers are opened lazily, before the first text
// inside them, so empty emphasis writes nothing.
type mdWriter struct {
	src   []byte
	info  map[ast.Node]emphasisInfo
	limit int
	b     []byte

	plain    bool // a link label: text only, on one line
	quote    int  // depth of block quotes
	items    int  // depth of list items
	numbers  []int
	marker   []byte // list markers waiting for the next line
	itemMark []int  // len(marker) when each open item began
	pending  int    // items whose marker waits for the next line
	lineOpen bool   // the current line's prefix is written
	sep      int    // before the next line: 1 line break, 2 a blank line
	code     bool   // writing a code block: keep trailing spaces
	marks    []mark // open emphasis, innermost last
	open     [128]int
}

// mark is an open emphasis: a Slack marker (written once content came), a
// literal Markdown delimiter, or nothing (the same marker is already open).
type mark struct {
	c       byte
	written bool
	literal string
}

// walk renders the tree under root without recursion, so that no depth of
// nesting can exhaust the stack.
func (w *mdWriter) walk(root ast.Node) {
	n := root
	for {
		if len(w.b) > w.limit {
			return
		}
		if w.enter(n) && n.FirstChild() != nil {
			n = n.FirstChild()
			continue
		}
		for {
			w.leave(n)
			if n == root {
				return
			}
			if next := n.NextSibling(); next != nil {
				n = next
				break
			}
			n = n.Parent()
		}
	}
}

// enter starts n and reports whether its children are to be rendered.
func (w *mdWriter) enter(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.Document:
	case *ast.Paragraph, *ast.TextBlock:
		w.block(n)
	case *ast.Heading:
		w.block(n)
		w.pushMark('*', "")
	case *ast.Blockquote:
		w.block(n)
		w.quote++
	case *ast.List:
		w.block(n)
		w.numbers = append(w.numbers, n.Start)
	case *ast.ListItem:
		w.block(n)
		w.item(n)
	case *ast.ThematicBreak:
		w.block(n)
		w.write("———")
		w.endLine()
	case *ast.FencedCodeBlock, *ast.CodeBlock:
		w.block(n)
		w.codeBlock(n)
	case *ast.HTMLBlock:
		w.block(n)
		w.htmlBlock(n)
	case *ast.Text:
		w.text(n)
	case *ast.String:
		w.write(EscapeMrkdwn(string(n.Value)))
	case *ast.CodeSpan:
		w.codeSpan(n)
		return false
	case *ast.Emphasis, *east.Strikethrough:
		w.emphasis(n)
	case *ast.Link:
		return w.link(n)
	case *ast.Image:
		w.image(n)
		return false
	case *ast.AutoLink:
		w.autoLink(n)
	case *ast.RawHTML:
		for i := 0; i < n.Segments.Len(); i++ {
			seg := n.Segments.At(i)
			w.write(EscapeMrkdwn(strings.ReplaceAll(string(seg.Value(w.src)), "\n", " ")))
		}
	}
	return true
}

func (w *mdWriter) leave(n ast.Node) {
	switch n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		w.endLine()
	case *ast.Heading:
		w.popMark()
		w.endLine()
	case *ast.Blockquote:
		w.endLine()
		w.quote--
	case *ast.List:
		w.numbers = w.numbers[:len(w.numbers)-1]
	case *ast.ListItem:
		w.endLine()
		w.items--
		if w.pending > 0 { // an empty item leaves no marker
			w.pending--
		}
		w.marker = w.marker[:w.itemMark[len(w.itemMark)-1]]
		w.itemMark = w.itemMark[:len(w.itemMark)-1]
	case *ast.Emphasis, *east.Strikethrough:
		w.popMark()
	}
}

// block ends the current line and asks for a line break, or a blank line
// where the source had one, before the block. The first block inside a
// quote or list item continues the line its container starts.
func (w *mdWriter) block(n ast.Node) {
	w.endLine()
	if p := n.Parent(); p != nil && p.Kind() != ast.KindDocument && n.PreviousSibling() == nil {
		return
	}
	blank := n.HasBlankPreviousLines()
	if _, ok := n.PreviousSibling().(*ast.FencedCodeBlock); ok && blank {
		// goldmark marks every block after a fenced code block so.
		blank = blankLineBefore(w.src, n.Pos())
	}
	s := 1
	if blank {
		s = 2
	}
	w.sep = max(w.sep, s)
}

// blankLineBefore reports whether the source line before the one holding
// pos is blank (or holds quote markers only).
func blankLineBefore(src []byte, pos int) bool {
	if pos <= 0 || pos > len(src) {
		return false
	}
	start := bytes.LastIndexByte(src[:pos], '\n') + 1
	if start == 0 {
		return false
	}
	prev := src[bytes.LastIndexByte(src[:start-1], '\n')+1 : start-1]
	return len(bytes.Trim(prev, " \t>")) == 0
}

func (w *mdWriter) item(n *ast.ListItem) {
	w.items++
	w.pending++
	w.itemMark = append(w.itemMark, len(w.marker))
	list, _ := n.Parent().(*ast.List)
	if list == nil || !list.IsOrdered() {
		w.marker = append(w.marker, "• "...)
		return
	}
	i := len(w.numbers) - 1
	w.marker = strconv.AppendInt(w.marker, int64(w.numbers[i]), 10)
	w.marker = append(w.marker, list.Marker, ' ')
	w.numbers[i]++
}

// startLine writes what precedes the first content of a line: the pending
// line break or blank line, the quote prefix, and the indentation and
// markers of list items.
func (w *mdWriter) startLine() {
	if w.plain || w.lineOpen {
		return
	}
	w.lineOpen = true
	if len(w.b) > 0 {
		w.b = append(w.b, '\n')
		if w.sep == 2 {
			if w.quote > 0 {
				w.b = append(w.b, '>')
			}
			w.b = append(w.b, '\n')
		}
	}
	w.sep = 0
	if w.quote > 0 {
		w.b = append(w.b, "> "...)
	}
	levels := min(w.items, maxIndent)
	if len(w.marker) > 0 { // the outermost waiting item's level
		levels = min(w.items-w.pending, maxIndent-1)
	}
	w.pending = 0
	for range levels {
		w.b = append(w.b, "  "...)
	}
	w.b = append(w.b, w.marker...)
	w.marker = w.marker[:0]
	for i := range w.itemMark {
		w.itemMark[i] = 0
	}
	for i := range w.marks { // emphasis open on the line before goes on
		w.marks[i].written = false
	}
}

// endLine closes the Slack markers written on the current line (they are
// opened again on the next) and ends it.
func (w *mdWriter) endLine() {
	if w.plain || !w.lineOpen {
		return
	}
	w.closeMarks()
	if !w.code {
		w.b = trimRightSpaces(w.b)
	}
	w.lineOpen = false
	w.sep = max(w.sep, 1)
}

func (w *mdWriter) closeMarks() {
	for i := len(w.marks) - 1; i >= 0; i-- {
		if m := &w.marks[i]; m.written {
			w.b = append(w.b, m.c)
		}
	}
}

// write writes mrkdwn content, after the line's prefix and the markers
// still waiting for content.
func (w *mdWriter) write(s string) {
	if s == "" {
		return
	}
	w.startLine()
	for i := range w.marks {
		if m := &w.marks[i]; m.c != 0 && !m.written && !w.plain {
			w.b = append(w.b, m.c)
			m.written = true
		}
	}
	w.b = append(w.b, s...)
}

// pushMark opens emphasis with Slack marker c, or with the literal
// delimiter lit when it is not empty.
func (w *mdWriter) pushMark(c byte, lit string) {
	switch {
	case lit != "":
		w.write(lit)
		w.marks = append(w.marks, mark{literal: lit})
	case w.plain || w.open[c] > 0:
		w.marks = append(w.marks, mark{})
	default:
		w.open[c]++
		w.marks = append(w.marks, mark{c: c})
	}
}

func (w *mdWriter) popMark() {
	m := w.marks[len(w.marks)-1]
	w.marks = w.marks[:len(w.marks)-1]
	switch {
	case m.literal != "":
		w.write(m.literal)
	case m.c != 0:
		w.open[m.c]--
		if m.written {
			w.b = append(w.b, m.c)
		}
	}
}

func (w *mdWriter) emphasis(n ast.Node) {
	in := w.info[n]
	level, c := 1, byte('~')
	if e, ok := n.(*ast.Emphasis); ok {
		level, c = e.Level, '_'
		if level == 2 {
			c = '*'
		}
	}
	lit := ""
	if in.glued && !w.plain {
		lit = strings.Repeat(string(in.delim), level)
	}
	w.pushMark(c, lit)
}

func (w *mdWriter) text(n *ast.Text) {
	v := n.Segment.Value(w.src)
	if n.IsRaw() {
		w.write(EscapeMrkdwn(string(v)))
	} else {
		w.write(EscapeMrkdwn(unescapeMarkdown(v)))
	}
	if n.SoftLineBreak() || n.HardLineBreak() {
		if w.plain {
			w.b = append(w.b, ' ')
		} else {
			w.endLine()
		}
	}
}

// codeSpan writes `code`, or just the code in a link label; a line break
// inside is a space, as in CommonMark.
func (w *mdWriter) codeSpan(n *ast.CodeSpan) {
	var code []byte
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			code = append(code, c.Segment.Value(w.src)...)
		case *ast.String:
			code = append(code, c.Value...)
		}
	}
	s := EscapeMrkdwn(strings.ReplaceAll(string(code), "\n", " "))
	if w.plain {
		w.write(s)
		return
	}
	w.write("`" + s + "`")
}

func (w *mdWriter) codeBlock(n ast.Node) {
	lines := n.Lines()
	if lines.Len() == 0 {
		return
	}
	w.write("```")
	w.code = true
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		w.endLine()
		w.startLine()
		w.b = append(w.b, strings.Repeat(" ", seg.Padding)...)
		w.b = append(w.b, EscapeMrkdwn(strings.TrimSuffix(string(seg.Value(w.src)), "\n"))...)
	}
	w.endLine()
	w.code = false
	w.write("```")
	w.endLine()
}

func (w *mdWriter) htmlBlock(n *ast.HTMLBlock) {
	lines := n.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		w.write(EscapeMrkdwn(strings.TrimRight(string(seg.Value(w.src)), " \t\n")))
		w.endLine()
	}
	if n.HasClosure() {
		w.write(EscapeMrkdwn(strings.TrimRight(string(n.ClosureLine.Value(w.src)), " \t\n")))
		w.endLine()
	}
}

// label renders the children of n as a link label: text only, on one line.
func (w *mdWriter) label(n ast.Node) string {
	sub := &mdWriter{src: w.src, info: w.info, limit: w.limit, plain: true}
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		sub.walk(c)
	}
	return strings.Join(strings.Fields(string(sub.b)), " ")
}

// link writes a Slack link, or lets the label's children be rendered as
// text when the address is not one Slack links.
func (w *mdWriter) link(n *ast.Link) bool {
	dest := html.UnescapeString(string(n.Destination))
	if w.plain || !slackLinkable(dest) {
		return true
	}
	w.slackLink(dest, w.label(n))
	return false
}

func (w *mdWriter) image(n *ast.Image) {
	dest := html.UnescapeString(string(n.Destination))
	alt := w.label(n)
	if w.plain || !slackLinkable(dest) {
		w.write(alt)
		return
	}
	w.slackLink(dest, alt)
}

func (w *mdWriter) slackLink(dest, label string) {
	u := slackURL(dest)
	if label == "" || label == u {
		w.write("<" + u + ">")
		return
	}
	w.write("<" + u + "|" + label + ">")
}

func (w *mdWriter) autoLink(n *ast.AutoLink) {
	label := string(n.Label(w.src))
	switch {
	case w.plain:
		w.write(EscapeMrkdwn(label))
	case n.AutoLinkType == ast.AutoLinkEmail:
		w.write("<mailto:" + slackURL(label) + "|" + EscapeMrkdwn(label) + ">")
	case slackLinkable(string(n.URL(w.src))):
		w.write("<" + slackURL(string(n.URL(w.src))) + ">")
	default:
		w.write(EscapeMrkdwn(label))
	}
}

// unescapeMarkdown resolves backslash escapes and entity references in the
// text of a Markdown inline, which goldmark leaves in the source form.
func unescapeMarkdown(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 && bytes.IndexByte(v, '&') < 0 {
		return string(v)
	}
	s := string(v)
	var b strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && isASCIIPunct(s[i+1]) {
				b.WriteByte(s[i+1])
				i += 2
				continue
			}
		case '&':
			if dec, end, ok := entity(s, i); ok {
				b.WriteString(dec)
				i = end
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}

// hasScheme reports whether s starts with a URI scheme and a colon.
func hasScheme(s string) bool {
	for i := 0; i < len(s) && i <= 32; i++ {
		c := s[i]
		switch {
		case isLetter(c):
		case i > 0 && (isDigit(c) || c == '+' || c == '.' || c == '-'):
		case i >= 2 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

// entity decodes an HTML entity reference at s[i:] (s[i] is '&').
func entity(s string, i int) (string, int, bool) {
	semi := strings.IndexByte(s[i:min(len(s), i+34)], ';') // no entity is longer
	if semi < 2 || semi > 33 {
		return "", 0, false
	}
	ref := s[i : i+semi+1]
	body := ref[1 : len(ref)-1]
	if body[0] == '#' {
		digits := body[1:]
		hex := strings.HasPrefix(digits, "x") || strings.HasPrefix(digits, "X")
		if hex {
			digits = digits[1:]
		}
		if digits == "" || len(digits) > 7 {
			return "", 0, false
		}
		for j := 0; j < len(digits); j++ {
			if !(isDigit(digits[j]) || hex && isLetter(digits[j]) && digits[j]|0x20 <= 'f') {
				return "", 0, false
			}
		}
	} else {
		for j := 0; j < len(body); j++ {
			if !(isLetter(body[j]) || j > 0 && isDigit(body[j])) {
				return "", 0, false
			}
		}
	}
	dec := html.UnescapeString(ref)
	if dec == ref {
		return "", 0, false
	}
	return dec, i + len(ref), true
}
