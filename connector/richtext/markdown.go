package richtext

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MarkdownToMrkdwn renders CommonMark-style Markdown as Slack mrkdwn.
//
// The contract, line by line (Slack has no multi-line emphasis, so
// emphasis, links and code spans are recognised within one line):
//   - **b** and __b__ → *b*; *i* and _i_ → _i_; ~~s~~ (and ~s~) → ~s~;
//     delimiters follow CommonMark's flanking rules, so intraword
//     underscores (snake_case_name) and lone asterisks (2 * 3) stay literal,
//     and so does emphasis that Slack would not render because it is glued to
//     a letter or digit outside it ("2*3*4" stays "2*3*4");
//   - `code` is kept, and ``` or ~~~ fences become ``` fences without their
//     language tag; nothing inside is converted, but &, < and > are still
//     escaped, as Slack needs everywhere; an unclosed fence is closed;
//   - [t](u) → <u|t> (<u> when t is empty or is u), ![alt](u) → <u|alt>,
//     <https://x> → <https://x>, <a@b.com> → <mailto:a@b.com|a@b.com>; only
//     http, https and mailto addresses become links, others keep their text;
//     link labels carry no formatting;
//   - "# Heading" (any level) → *Heading*;
//   - "- item", "* item", "+ item" → "• item", keeping the indentation;
//     "1. item" and "> quote" are kept;
//   - a horizontal rule (---, ***, ___) becomes a line "———" (so "---" under
//     a line of text is a rule, not a setext heading);
//   - backslash escapes (\* \_ \` \[ ...) give the literal character, and
//     entities (&amp;, &#39;) are decoded; any &, < and > left are escaped;
//   - lines keep their breaks (a single newline is a line break in Slack),
//     lose trailing spaces, at most one blank line is kept in a row outside
//     code blocks, and blank lines at the start and end are dropped.
//
// Not supported, and kept as text: setext headings, indented code blocks,
// reference links, tables, raw HTML. A backslash at the end of a line is kept.
// Slack has no escape for *, _ and ~, so a literal one written as \* may
// still pair up with another in Slack.
func MarkdownToMrkdwn(md string) string {
	s := strings.ToValidUTF8(md, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	type outLine struct {
		text string
		code bool
	}
	var out []outLine
	var fenceChar byte
	fenceLen := 0
	fenceAt := 0 // index in out of the open fence line
	for _, line := range strings.Split(s, "\n") {
		if fenceLen > 0 {
			if isFenceClose(line, fenceChar, fenceLen) {
				if len(out)-fenceAt == 1 { // empty block: drop it
					out = out[:fenceAt]
				} else {
					out = append(out, outLine{"```", true})
				}
				fenceLen = 0
				continue
			}
			out = append(out, outLine{EscapeMrkdwn(line), true})
			continue
		}
		if c, n, ok := fenceOpen(line); ok {
			fenceChar, fenceLen, fenceAt = c, n, len(out)
			out = append(out, outLine{"```", true})
			continue
		}
		out = append(out, outLine{strings.TrimRight(mdBlockLine(line), " \t"), false})
	}
	if fenceLen > 0 {
		if len(out)-fenceAt == 1 {
			out = out[:fenceAt]
		} else {
			out = append(out, outLine{"```", true})
		}
	}
	var b strings.Builder
	blank := true // at the start: drop leading blank lines
	pending := false
	for _, l := range out {
		if !l.code && strings.TrimSpace(l.text) == "" {
			if !blank {
				pending = true
			}
			continue
		}
		if pending {
			b.WriteByte('\n')
			pending = false
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.text)
		blank = false
	}
	return b.String()
}

// fenceOpen recognises an opening code fence: up to three spaces, then three
// or more backticks or tildes (an info string after backticks may not hold a
// backtick).
func fenceOpen(line string) (byte, int, bool) {
	ind := leadingSpaces(line)
	if ind > 3 {
		return 0, 0, false
	}
	rest := line[ind:]
	if rest == "" || (rest[0] != '`' && rest[0] != '~') {
		return 0, 0, false
	}
	c := rest[0]
	n := 0
	for n < len(rest) && rest[n] == c {
		n++
	}
	if n < 3 || (c == '`' && strings.IndexByte(rest[n:], '`') >= 0) {
		return 0, 0, false
	}
	return c, n, true
}

func isFenceClose(line string, c byte, n int) bool {
	ind := leadingSpaces(line)
	if ind > 3 {
		return false
	}
	rest := line[ind:]
	k := 0
	for k < len(rest) && rest[k] == c {
		k++
	}
	return k >= n && strings.TrimSpace(rest[k:]) == ""
}

func leadingSpaces(s string) int {
	n := 0
	for n < len(s) && (s[n] == ' ' || s[n] == '\t') {
		n++
	}
	return n
}

// mdBlockLine converts one line outside code fences.
func mdBlockLine(line string) string {
	ind := leadingSpaces(line)
	rest := line[ind:]
	if ind <= 3 {
		switch {
		case isRule(rest):
			return "———"
		case strings.HasPrefix(rest, "#"):
			if h, ok := heading(rest); ok {
				return h
			}
		case strings.HasPrefix(rest, ">"):
			for strings.HasPrefix(rest, ">") { // Slack has one level of quotes
				rest = strings.TrimPrefix(rest[1:], " ")
				rest = strings.TrimLeft(rest, " ")
			}
			inner := mdBlockLine(rest)
			if inner == "" {
				return ">"
			}
			return "> " + inner
		}
	}
	if len(rest) >= 2 && (rest[0] == '-' || rest[0] == '*' || rest[0] == '+') && (rest[1] == ' ' || rest[1] == '\t') {
		return line[:ind] + "• " + inlineMd(strings.TrimLeft(rest[2:], " \t"), modeNormal)
	}
	if n := orderedMarker(rest); n > 0 {
		return line[:ind] + rest[:n] + " " + inlineMd(strings.TrimLeft(rest[n:], " \t"), modeNormal)
	}
	if ind <= 3 {
		return inlineMd(rest, modeNormal)
	}
	return line[:ind] + inlineMd(rest, modeNormal)
}

// orderedMarker returns the length of "12." or "12)" followed by a space at
// the start of s, or 0.
func orderedMarker(s string) int {
	n := 0
	for n < len(s) && n < 9 && isDigit(s[n]) {
		n++
	}
	if n == 0 || n+1 >= len(s) || (s[n] != '.' && s[n] != ')') || (s[n+1] != ' ' && s[n+1] != '\t') {
		return 0
	}
	return n + 1
}

// isRule reports whether s is a thematic break: three or more of the same
// '-', '*' or '_', with spaces allowed between.
func isRule(s string) bool {
	s = strings.TrimRight(s, " \t")
	if s == "" || (s[0] != '-' && s[0] != '*' && s[0] != '_') {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case s[0]:
			n++
		case ' ', '\t':
		default:
			return false
		}
	}
	return n >= 3
}

// heading converts an ATX heading ("## Title ##") to a bold line.
func heading(s string) (string, bool) {
	n := 0
	for n < len(s) && s[n] == '#' {
		n++
	}
	if n > 6 || (n < len(s) && s[n] != ' ' && s[n] != '\t') {
		return "", false
	}
	content := strings.TrimSpace(s[n:])
	// An optional closing run of '#', preceded by a space or alone.
	t := strings.TrimRight(content, "#")
	if t == "" || strings.HasSuffix(t, " ") || strings.HasSuffix(t, "\t") {
		content = strings.TrimSpace(t)
	}
	if content == "" {
		return "", true
	}
	inner := strings.TrimSpace(inlineMd(content, modeHeading))
	if inner == "" {
		return "", true
	}
	return "*" + inner + "*", true
}

type mdMode int

const (
	modeNormal  mdMode = iota
	modeHeading        // no bold inside (the line is bold)
	modePlain          // link labels: no formatting at all
)

// mdNode is a piece of an inline line: output text (out) or a run of
// emphasis delimiters.
type mdNode struct {
	out           string
	delim         byte // '*', '_' or '~' for a delimiter run
	n, orig       int  // delimiters left unmatched, and in the run
	open, close   bool // can open, can close
	before, after rune // the characters around the run
	dead          bool // removed from the delimiter stack
	opens, closes []*mdMatch
}

// mdMatch is an emphasis: delimiters of one opener and one closer.
type mdMatch struct {
	delim      byte
	n          int
	literal    bool // keep the Markdown delimiters (Slack would not render it)
	suppressed bool // same Slack marker already open: write nothing
}

// inlineMd converts the inline content of one line.
func inlineMd(s string, mode mdMode) string {
	var nodes []*mdNode
	var text strings.Builder
	noCode := map[int]bool{} // backtick run lengths with no closing run ahead
	flush := func() {
		if text.Len() > 0 {
			nodes = append(nodes, &mdNode{out: EscapeMrkdwn(text.String())})
			text.Reset()
		}
	}
	raw := func(out string) {
		flush()
		nodes = append(nodes, &mdNode{out: out})
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && isASCIIPunct(s[i+1]) {
				text.WriteByte(s[i+1])
				i += 2
				continue
			}
		case '`':
			n := runLen(s, i, '`')
			if !noCode[n] {
				if out, end, ok := codeSpan(s, i, mode); ok {
					raw(out)
					i = end
					continue
				}
				noCode[n] = true
			}
			text.WriteString(s[i : i+n])
			i += n
			continue
		case '!':
			if i+1 < len(s) && s[i+1] == '[' {
				if out, end, ok := mdLink(s, i+1, true, mode); ok {
					raw(out)
					i = end
					continue
				}
			}
		case '[':
			if out, end, ok := mdLink(s, i, false, mode); ok {
				raw(out)
				i = end
				continue
			}
		case '<':
			if out, end, ok := autolink(s, i, mode); ok {
				raw(out)
				i = end
				continue
			}
		case '&':
			if dec, end, ok := entity(s, i); ok {
				text.WriteString(dec)
				i = end
				continue
			}
		case '*', '_', '~':
			n := runLen(s, i, c)
			if c == '~' && n > 2 {
				text.WriteString(s[i : i+n])
				i += n
				continue
			}
			flush()
			nodes = append(nodes, delimRun(s, i, n))
			i += n
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		text.WriteString(s[i : i+size])
		i += size
	}
	flush()
	matchEmphasis(nodes)
	return renderMd(nodes, mode)
}

func runLen(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}

// delimRun describes the run of n delimiters at s[i:] with CommonMark's
// flanking rules; the start and end of the line count as white space.
func delimRun(s string, i, n int) *mdNode {
	c := s[i]
	before, after := ' ', ' '
	if i > 0 {
		before, _ = utf8.DecodeLastRuneInString(s[:i])
	}
	if i+n < len(s) {
		after, _ = utf8.DecodeRuneInString(s[i+n:])
	}
	left := !unicode.IsSpace(after) && (!isPunct(after) || unicode.IsSpace(before) || isPunct(before))
	right := !unicode.IsSpace(before) && (!isPunct(before) || unicode.IsSpace(after) || isPunct(after))
	d := &mdNode{delim: c, n: n, orig: n, before: before, after: after}
	if c == '_' {
		d.open = left && (!right || isPunct(before))
		d.close = right && (!left || isPunct(after))
	} else {
		d.open, d.close = left, right
	}
	return d
}

func isPunct(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

// matchEmphasis pairs delimiter runs as CommonMark does (without the
// openers-bottom optimisation; lines are short).
func matchEmphasis(nodes []*mdNode) {
	// bottom[key] is the index below which no opener for closers like the
	// key's can be found (CommonMark's openers_bottom).
	type key struct {
		delim   byte
		n       int
		canOpen bool
	}
	bottom := map[key]int{}
	for ci, c := range nodes {
		if c.delim == 0 || !c.close || c.dead {
			continue
		}
		for c.n > 0 {
			k := key{c.delim, c.orig % 3, c.open}
			if c.delim == '~' {
				k = key{c.delim, c.n, false}
			}
			oi := -1
			for j := ci - 1; j >= bottom[k]; j-- {
				o := nodes[j]
				if o.delim != c.delim || !o.open || o.n == 0 || o.dead {
					continue
				}
				if c.delim == '~' {
					if o.n != c.n {
						continue
					}
				} else if (o.close || c.open) && (o.orig+c.orig)%3 == 0 && !(o.orig%3 == 0 && c.orig%3 == 0) {
					continue
				}
				oi = j
				break
			}
			if oi < 0 {
				bottom[k] = ci
				break
			}
			o := nodes[oi]
			use := 1
			switch {
			case c.delim == '~':
				use = c.n
			case o.n >= 2 && c.n >= 2:
				use = 2
			}
			m := &mdMatch{delim: c.delim, n: use}
			// Slack renders no emphasis glued to a letter or digit outside it.
			m.literal = isWordRune(o.before) || isWordRune(c.after)
			o.opens = append(o.opens, m)
			c.closes = append(c.closes, m)
			o.n -= use
			c.n -= use
			for k := oi + 1; k < ci; k++ {
				nodes[k].dead = true
			}
		}
	}
}

// slackMarker is the Slack marker for a Markdown emphasis.
func (m *mdMatch) slackMarker() byte {
	switch {
	case m.delim == '~':
		return '~'
	case m.n == 2:
		return '*'
	}
	return '_'
}

func renderMd(nodes []*mdNode, mode mdMode) string {
	depth := map[byte]int{}
	switch mode {
	case modeHeading:
		depth['*'] = 1
	case modePlain:
		depth['*'], depth['_'], depth['~'] = 1, 1, 1
	}
	var b strings.Builder
	for _, n := range nodes {
		if n.delim == 0 {
			b.WriteString(n.out)
			continue
		}
		for _, m := range n.closes {
			if m.literal {
				b.WriteString(strings.Repeat(string(m.delim), m.n))
				continue
			}
			k := m.slackMarker()
			depth[k]--
			if !m.suppressed {
				b.WriteByte(k)
			}
		}
		b.WriteString(strings.Repeat(string(n.delim), n.n))
		for j := len(n.opens) - 1; j >= 0; j-- {
			m := n.opens[j]
			if m.literal {
				b.WriteString(strings.Repeat(string(m.delim), m.n))
				continue
			}
			k := m.slackMarker()
			m.suppressed = depth[k] > 0
			depth[k]++
			if !m.suppressed {
				b.WriteByte(k)
			}
		}
	}
	return b.String()
}

// codeSpan reads a code span starting with the backtick run at s[i:].
func codeSpan(s string, i int, mode mdMode) (string, int, bool) {
	n := runLen(s, i, '`')
	for j := i + n; j < len(s); {
		if s[j] != '`' {
			j++
			continue
		}
		k := runLen(s, j, '`')
		if k != n {
			j += k
			continue
		}
		content := s[i+n : j]
		if len(content) >= 2 && content[0] == ' ' && content[len(content)-1] == ' ' && strings.Trim(content, " ") != "" {
			content = content[1 : len(content)-1]
		}
		if mode == modePlain {
			return EscapeMrkdwn(content), j + k, true
		}
		return "`" + EscapeMrkdwn(content) + "`", j + k, true
	}
	return "", 0, false
}

// maxLabel bounds the length of a link label, as in CommonMark, and so the
// work spent on unmatched brackets.
const maxLabel = 1000

// mdLink reads [label](destination "title") at s[i:] (s[i] is '['); image
// reports a preceding '!' (i is then the '[' after it).
func mdLink(s string, i int, image bool, mode mdMode) (string, int, bool) {
	depth := 0
	j := i
	limit := min(len(s), i+maxLabel)
	for ; j < limit; j++ {
		switch s[j] {
		case '\\':
			j++
			continue
		case '[':
			depth++
		case ']':
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if j >= limit || j+1 >= len(s) || s[j+1] != '(' {
		return "", 0, false
	}
	labelSrc := s[i+1 : j]
	k := j + 2
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	var dest strings.Builder
	if k < len(s) && s[k] == '<' {
		end := strings.IndexAny(s[k+1:], "<>")
		if end < 0 || s[k+1+end] != '>' {
			return "", 0, false
		}
		dest.WriteString(s[k+1 : k+1+end])
		k += end + 2
	} else {
		parens := 0
	loop:
		for ; k < len(s); k++ {
			switch c := s[k]; {
			case c == '\\' && k+1 < len(s) && isASCIIPunct(s[k+1]):
				k++
				dest.WriteByte(s[k])
				continue
			case c == ' ' || c == '\t' || c < 0x20:
				break loop
			case c == '(':
				parens++
			case c == ')':
				if parens == 0 {
					break loop
				}
				parens--
			}
			dest.WriteByte(s[k])
		}
	}
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	if k < len(s) && (s[k] == '"' || s[k] == '\'' || s[k] == '(') {
		closer := s[k]
		if closer == '(' {
			closer = ')'
		}
		end := strings.IndexByte(s[k+1:], closer)
		if end < 0 {
			return "", 0, false
		}
		k += end + 2
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
	}
	if k >= len(s) || s[k] != ')' {
		return "", 0, false
	}
	href := html.UnescapeString(dest.String())
	end := k + 1
	if !slackLinkable(href) || mode == modePlain {
		if image {
			return inlineMd(labelSrc, modePlain), end, true
		}
		return inlineMd(labelSrc, mode), end, true
	}
	label := strings.TrimSpace(inlineMd(labelSrc, modePlain))
	u := slackURL(href)
	if label == "" || label == u {
		return "<" + u + ">", end, true
	}
	return "<" + u + "|" + label + ">", end, true
}

// autolink reads <scheme:...> or <user@host> at s[i:].
func autolink(s string, i int, mode mdMode) (string, int, bool) {
	end := strings.IndexAny(s[i+1:], "<> \t")
	if end <= 0 || s[i+1+end] != '>' {
		return "", 0, false
	}
	inner := s[i+1 : i+1+end]
	next := i + end + 2
	switch {
	case hasScheme(inner):
	case isEmail(inner):
		if mode == modePlain {
			return EscapeMrkdwn(inner), next, true
		}
		return "<mailto:" + slackURL(inner) + "|" + EscapeMrkdwn(inner) + ">", next, true
	default:
		return "", 0, false
	}
	if mode == modePlain || !slackLinkable(inner) {
		return EscapeMrkdwn(inner), next, true
	}
	return "<" + slackURL(inner) + ">", next, true
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

func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.IndexByte(s[at+1:], '@') < 0 && !strings.ContainsAny(s, "\\\"")
}

// entity decodes an HTML entity reference at s[i:] (s[i] is '&').
func entity(s string, i int) (string, int, bool) {
	semi := strings.IndexByte(s[i:], ';')
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
