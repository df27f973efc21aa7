package richtext

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Slack mrkdwn ("Formatting text for app surfaces"): *bold*, _italic_,
// ~strike~, `code`, ```pre```, <url|label>, "> " quotes; &, < and > are the
// only characters that must be escaped, everywhere (also in links and code).

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// EscapeMrkdwn escapes plain text for a Slack message: &, < and > become
// &amp; &lt; &gt; (Slack's only required escapes). Nothing else changes; in
// particular *, _ and ~ are left alone, as Slack has no way to escape them.
// The result is at most 5*len(s) bytes (a '&' becomes five), in linear time.
func EscapeMrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

// slackURL makes an address safe inside <...|label>: it is escaped, and the
// characters that would end it early or split it ('|', white space) are
// percent-encoded.
func slackURL(u string) string {
	u = strings.TrimSpace(u)
	u = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, u)
	u = strings.NewReplacer("|", "%7C", " ", "%20").Replace(u)
	return EscapeMrkdwn(u)
}

// slackLinkable reports whether href is worth turning into a Slack link.
func slackLinkable(href string) bool {
	lower := strings.ToLower(strings.TrimSpace(href))
	for _, p := range []string{"http://", "https://", "mailto:"} {
		if strings.HasPrefix(lower, p) && len(lower) > len(p) {
			return true
		}
	}
	return false
}

// Mrkdwn renders restricted HTML (what agents' lines arrive as) as Slack mrkdwn.
//
// The contract:
//   - <b>/<strong> → *x*, <i>/<em> → _x_, <s>/<strike>/<del> → ~x~,
//     <code> → `x`, <pre> → a ``` block on lines of its own;
//   - emphasis is only written where Slack renders it: empty or blank
//     content gives nothing, spaces at the edges of the content go outside the
//     markers ("<b> hi </b>" → " *hi* "), emphasis that would be glued to a
//     letter or digit outside it ("he<b>ll</b>o") keeps only its text, a span
//     that covers several lines is marked on each line, nested elements of
//     the same kind are marked once, and <b>a</b><b>b</b> becomes *ab*;
//   - <a href=u>t</a> → <u|t>, or <u> when t is empty or is u; only http,
//     https and mailto links are kept, others keep only their text; the label
//     carries no formatting; an <a> inside an open <a> ends the first link,
//     as in a browser;
//   - <img src alt> → <src|alt>, or <src> without alt (alt text alone when
//     src is not an http(s) address);
//   - <br> and block elements (p, div, li, h1–h6, blockquote, tr, ...) break
//     lines; </p> leaves a blank line (not inside lists and quotes); at most
//     one blank line is kept in a row;
//   - <ul><li> → "• item", <ol><li> → "1. item", "2. item" ...; nested lists
//     are indented by four spaces per level up to four levels (deeper items
//     are written at the fourth);
//   - <h1>–<h6> → a line *heading*; <blockquote> lines are prefixed "> ";
//     <hr> is a line "———";
//   - script, style, title and head are dropped with their contents, and so
//     are comments; unknown tags are dropped keeping their text;
//   - entities are decoded and the text escaped with EscapeMrkdwn, so the
//     only raw '<' and '>' in the result are the renderer's own links and
//     quote prefixes;
//   - white space collapses as in HTML except in <pre>; lines carry no
//     trailing spaces and the result is trimmed.
//
// Any input gives a result: a '<' that starts no tag is text, unclosed
// elements end at the end of the input, and invalid UTF-8 becomes U+FFFD.
// Slack has no escape for *, _ or ~, so such characters in the text are
// written as they are. More than 16 nested emphasis elements keep their text
// without markers.
//
// Bound: the result is at most 6*len(html)+64 bytes (a raw '&' alone
// becomes the five bytes "&amp;"); an input that would render longer (only
// a hostile one can) is cut at that length, never inside an escape or a
// link. Time is linear in len(html).
func Mrkdwn(html string) string {
	limit := outputLimit(6, len(html))
	s := strings.ToValidUTF8(html, "\uFFFD")
	r := mdRenderer{z: newTokenizer(s), overflow: map[string]int{}}
	for len(r.out) <= 2*limit { // sentinels are dropped later
		t, ok := r.z.next()
		if !ok {
			break
		}
		r.token(t)
	}
	r.finish()
	return cutMrkdwn(tidy(resolveMarks(r.out)), limit)
}

// The renderer writes emphasis as sentinel bytes that never occur in valid
// UTF-8; resolveMarks decides afterwards, knowing the whole line, which of
// them become Slack markers.
const (
	sentContent = 0xF5 // where a line's content starts, after quote and list prefixes
	sentOpen    = 0xF8 // + kind: an opening marker
	sentClose   = 0xFC // + kind: a closing marker (0xFC..0xFF)
)

// markKinds are the Slack markers by kind.
var markKinds = [4]byte{'*', '_', '~', '`'}

const (
	kindBold = iota
	kindItalic
	kindStrike
	kindCode
)

func emphasisKind(tag string) (int, bool) {
	switch tag {
	case "b", "strong":
		return kindBold, true
	case "i", "em":
		return kindItalic, true
	case "s", "strike", "del":
		return kindStrike, true
	case "code", "tt", "kbd", "samp":
		return kindCode, true
	case "h1", "h2", "h3", "h4", "h5", "h6":
		return kindBold, true
	}
	return 0, false
}

// mdRenderer builds mrkdwn (with sentinels) from tokens.
type mdRenderer struct {
	z         *tokenizer
	out       []byte
	space     bool // white space is pending before the next word
	pre       int  // depth of <pre>
	fence     int  // offset in out where the open ``` block starts
	body      int  // offset in out where its content starts
	first     bool // nothing written in the <pre> yet
	quote     int  // depth of <blockquote>
	frames    []frame
	active    [4]int         // active frames by kind
	overflow  map[string]int // emphasis elements open beyond maxEmphasis, by tag
	link      *mlink         // the open <a>, if any
	lists     []list
	marker    string // list marker waiting for the item's first content
	begun     bool   // the current line's prefixes are written
	noHeadEnd bool   // the rest of the input has no </head>
}

// frame is an open emphasis element; inactive frames (same kind already
// open, or inside code) write nothing.
type frame struct {
	tag    string
	kind   int
	active bool
}

type mlink struct {
	href   string
	start  int
	active bool // a Slack link is written at the end; else only the text stays
	space  bool // white space was pending before the link
}

func (r *mdRenderer) token(t token) {
	switch t.kind {
	case tokText:
		r.text(t.text)
	case tokStart:
		r.start(t)
	case tokEnd:
		r.end(t.name)
	}
}

func (r *mdRenderer) inLink() bool { return r.link != nil }

func (r *mdRenderer) start(t token) {
	name := t.name
	if k, ok := emphasisKind(name); ok {
		if name[0] == 'h' && len(name) == 2 {
			r.lineStart()
		}
		r.openFrame(name, k)
		return
	}
	switch {
	case name == "br":
		r.lineBreak()
	case name == "p":
		r.paragraph()
	case name == "li":
		r.item()
	case name == "ul" || name == "ol":
		r.lineStart()
		n := 0
		if v, err := strconv.Atoi(strings.TrimSpace(t.attrs["start"])); err == nil && name == "ol" && v > -1000000 && v < 1000000 {
			n = v - 1
		}
		r.lists = append(r.lists, list{ordered: name == "ol", n: n})
	case name == "a":
		if r.inLink() {
			r.endLink()
		}
		href := strings.TrimSpace(t.attrs["href"])
		active := r.pre == 0 && slackLinkable(href)
		if active {
			r.beginLine()
		}
		r.link = &mlink{href: href, start: len(r.out), active: active, space: r.space}
	case name == "img":
		r.image(t.attrs)
	case name == "pre":
		r.startPre()
	case name == "blockquote":
		r.lineStart()
		r.quote++
	case name == "hr":
		r.lineStart()
		r.beginLine()
		r.out = append(r.out, "———"...)
		r.lineStart()
	case name == "td" || name == "th":
		r.space = true
	case name == "head":
		if r.noHeadEnd || !r.z.skipTo("head") {
			r.noHeadEnd = true
		}
	case isBlock(name):
		r.lineStart()
	}
}

func (r *mdRenderer) end(name string) {
	if _, ok := emphasisKind(name); ok {
		r.closeFrame(name)
		if name[0] == 'h' && len(name) == 2 {
			r.lineStart()
		}
		return
	}
	switch {
	case name == "p":
		r.paragraph()
	case name == "li":
		r.lineStart()
		r.marker = ""
	case name == "ul" || name == "ol":
		if len(r.lists) > 0 {
			r.lists = r.lists[:len(r.lists)-1]
		}
		r.lineStart()
	case name == "a":
		if r.inLink() {
			r.endLink()
		}
	case name == "pre":
		r.endPre()
	case name == "blockquote":
		r.lineStart()
		r.quote = max(r.quote-1, 0)
	case isBlock(name):
		r.lineStart()
	}
}

func (r *mdRenderer) openFrame(tag string, kind int) {
	if r.inLink() {
		return // link labels carry no formatting
	}
	if len(r.frames) >= maxEmphasis {
		r.overflow[tag]++
		return
	}
	active := r.pre == 0 && r.active[kind] == 0 && r.active[kindCode] == 0
	if active {
		r.out = append(r.out, byte(sentOpen+kind))
	}
	r.push(frame{tag: tag, kind: kind, active: active})
}

func (r *mdRenderer) push(f frame) {
	if f.active {
		r.active[f.kind]++
	}
	r.frames = append(r.frames, f)
}

// truncateFrames drops the frames from index i on.
func (r *mdRenderer) truncateFrames(i int) {
	for _, f := range r.frames[i:] {
		if f.active {
			r.active[f.kind]--
		}
	}
	r.frames = r.frames[:i]
}

// writeClose writes the closing marker of kind; a marker that closes what
// was just opened cancels it instead, so that empty elements leave no run of
// sentinels for later scans to cross.
func (r *mdRenderer) writeClose(kind int) {
	if n := len(r.out); n > 0 && r.out[n-1] == byte(sentOpen+kind) {
		r.out = r.out[:n-1]
		return
	}
	r.out = append(r.out, byte(sentClose+kind))
}

// closeFrame closes the innermost open element named tag. Elements opened
// inside it and not yet closed are closed with it and opened again, so that
// markers always nest.
func (r *mdRenderer) closeFrame(tag string) {
	if r.inLink() {
		return
	}
	if r.overflow[tag] > 0 { // the innermost one is beyond the cap
		r.overflow[tag]--
		return
	}
	i := len(r.frames) - 1
	for i >= 0 && r.frames[i].tag != tag {
		i--
	}
	if i < 0 {
		return
	}
	if r.pre > 0 {
		// Markers are suspended in a ``` block; forget the frame, and its
		// closing marker, if any, after the block.
		if r.frames[i].active {
			r.frames[i].tag = ""
			return
		}
		r.frames = append(r.frames[:i], r.frames[i+1:]...)
		return
	}
	above := append([]frame(nil), r.frames[i+1:]...)
	for j := len(r.frames) - 1; j >= i; j-- {
		if r.frames[j].active {
			r.writeClose(r.frames[j].kind)
		}
	}
	r.truncateFrames(i)
	for _, f := range above {
		if f.active {
			r.out = append(r.out, byte(sentOpen+f.kind))
		}
		r.push(f)
	}
}

// text writes decoded text, collapsing white space outside <pre>.
func (r *mdRenderer) text(s string) {
	if s == "" {
		return
	}
	s = strings.ReplaceAll(s, "\u00a0", " ")
	if r.pre > 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		if r.first && s[0] == '\n' { // a newline right after <pre> is not content
			s = s[1:]
		}
		r.first = false
		r.out = append(r.out, EscapeMrkdwn(s)...)
		r.space = false
		return
	}
	first, _ := utf8.DecodeRuneInString(s)
	for i, w := range strings.Fields(s) {
		if i > 0 || unicode.IsSpace(first) {
			r.space = true
		}
		r.word(EscapeMrkdwn(w))
	}
	if last, _ := utf8.DecodeLastRuneInString(s); unicode.IsSpace(last) {
		r.space = true
	}
}

// word writes w (already mrkdwn), preceded by one space if white space is
// pending and the line has started.
func (r *mdRenderer) word(w string) {
	r.beginLine()
	if r.space {
		if last := r.lastReal(); last != 0 && last != '\n' && last != ' ' {
			r.out = append(r.out, ' ')
		}
	}
	r.space = false
	r.out = append(r.out, w...)
}

// lineIndex returns the offset where the current line starts.
func (r *mdRenderer) lineIndex() int {
	for i := len(r.out) - 1; i >= 0; i-- {
		if r.out[i] == '\n' {
			return i + 1
		}
	}
	return 0
}

// lastReal returns the last byte written that is not a sentinel, 0 if none.
func (r *mdRenderer) lastReal() byte {
	for i := len(r.out) - 1; i >= 0; i-- {
		if r.out[i] < sentContent {
			return r.out[i]
		}
	}
	return 0
}

// atLineStart reports whether the current line holds sentinels only.
func (r *mdRenderer) atLineStart() bool {
	for i := len(r.out) - 1; i >= 0; i-- {
		switch c := r.out[i]; {
		case c == '\n':
			return true
		case c < sentContent:
			return false
		}
	}
	return true
}

// newline ends the current line.
func (r *mdRenderer) newline() {
	r.out = append(r.out, '\n')
	r.begun = false
}

// beginLine writes the current line's quote and list prefixes, once, before
// its first content (and before markers already opened on it).
func (r *mdRenderer) beginLine() {
	if r.pre > 0 || r.begun {
		return
	}
	r.begun = true
	i := r.lineIndex()
	line := r.out[i:]
	var p []byte
	if r.quote > 0 {
		p = append(p, "> "...)
	}
	p = append(p, r.marker...)
	r.marker = ""
	p = append(p, sentContent)
	r.out = append(r.out[:i], append(p, line...)...)
}

func (r *mdRenderer) lineBreak() {
	if r.pre > 0 {
		r.out = append(r.out, '\n')
		r.first = false
		return
	}
	r.out = trimRightSpaces(r.out)
	r.newline()
	r.space = false
}

// lineStart makes sure what follows starts a line.
func (r *mdRenderer) lineStart() {
	r.space = false
	if r.pre > 0 {
		if len(r.out) > r.body && r.out[len(r.out)-1] != '\n' {
			r.out = append(r.out, '\n')
		}
		return
	}
	r.out = trimRightSpaces(r.out)
	if !r.atLineStart() {
		r.newline()
	}
}

// paragraph makes sure what follows is separated by a blank line (a line
// break only, in lists and quotes, where a blank line would end them).
func (r *mdRenderer) paragraph() {
	r.lineStart()
	if r.pre > 0 || r.quote > 0 || len(r.lists) > 0 {
		return
	}
	i := r.lineIndex()
	if i == 0 {
		return
	}
	for j := i - 2; j >= 0 && r.out[j] != '\n'; j-- {
		if r.out[j] < sentContent { // the line before has content
			r.newline()
			return
		}
	}
}

func (r *mdRenderer) item() {
	r.lineStart()
	marker := "• "
	depth := len(r.lists)
	if depth > 0 {
		l := &r.lists[depth-1]
		l.n++
		if l.ordered {
			marker = strconv.Itoa(l.n) + ". "
		}
	}
	r.marker = strings.Repeat("    ", min(max(depth-1, 0), maxIndent-1)) + marker
}

func (r *mdRenderer) image(attrs map[string]string) {
	alt := EscapeMrkdwn(strings.Join(strings.Fields(attrs["alt"]), " "))
	src := strings.TrimSpace(attrs["src"])
	lower := strings.ToLower(src)
	switch {
	case r.pre == 0 && !r.inLink() && slackLinkable(src) && !strings.HasPrefix(lower, "mailto:"):
		if alt == "" {
			r.word("<" + slackURL(src) + ">")
		} else {
			r.word("<" + slackURL(src) + "|" + alt + ">")
		}
	case alt != "":
		r.word(alt)
	}
}

// endLink closes the innermost <a>, replacing its text by <href|text>.
func (r *mdRenderer) endLink() {
	l := r.link
	r.link = nil
	if !l.active || l.start > len(r.out) {
		return
	}
	raw := r.out[l.start:]
	label := strings.Join(strings.Fields(strings.Map(func(c rune) rune {
		if c == utf8.RuneError {
			return -1
		}
		return c
	}, stripSentinels(raw))), " ")
	trailing := r.space
	r.out = r.out[:l.start]
	r.begun = true // l.start is after the prefixes of its line
	r.space = l.space
	u := slackURL(l.href)
	if label == "" || label == u {
		r.word("<" + u + ">")
	} else {
		r.word("<" + u + "|" + label + ">")
	}
	r.space = trailing
}

// stripSentinels returns b without sentinel bytes, as a string; other bytes
// that are not valid UTF-8 cannot occur.
func stripSentinels(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c < sentContent {
			out = append(out, c)
		}
	}
	return string(out)
}

func (r *mdRenderer) startPre() {
	if r.pre > 0 {
		r.pre++
		return
	}
	r.lineStart()
	for j := len(r.frames) - 1; j >= 0; j-- { // markers do not reach into the block
		if r.frames[j].active {
			r.writeClose(r.frames[j].kind)
		}
	}
	r.beginLine()
	r.fence = len(r.out)
	r.out = append(r.out, "```\n"...)
	r.body = len(r.out)
	r.pre = 1
	r.first = true
}

func (r *mdRenderer) endPre() {
	if r.pre == 0 {
		return
	}
	r.pre--
	if r.pre > 0 {
		return
	}
	body := strings.TrimRight(string(r.out[r.body:]), " \t\r\n")
	if strings.TrimSpace(body) == "" {
		r.out = r.out[:r.fence]
		r.begun = true
	} else {
		r.out = append(r.out[:r.body], body...)
		r.out = append(r.out, "\n```"...)
	}
	r.lineStart()
	frames := r.frames
	r.frames, r.active = nil, [4]int{}
	for _, f := range frames {
		if f.active && f.tag == "" { // closed inside the block
			continue
		}
		if f.active {
			r.out = append(r.out, byte(sentOpen+f.kind))
		}
		r.push(f)
	}
}

// finish closes what the input left open.
func (r *mdRenderer) finish() {
	if r.inLink() {
		r.endLink()
	}
	if r.pre > 0 {
		r.pre = 1
		r.endPre()
	}
	for j := len(r.frames) - 1; j >= 0; j-- {
		if r.frames[j].active {
			r.writeClose(r.frames[j].kind)
		}
	}
	r.truncateFrames(0)
}

// mspan is a marked range of one line's text, in byte offsets.
type mspan struct {
	kind, start, end, id int
}

// resolveMarks turns the renderer's output into mrkdwn, line by line: a
// marked range becomes Slack markers around it if, with spaces at its edges
// moved outside, it is not empty and its markers are not glued to a letter,
// digit or the same marker character outside it. Ranges open at the end of a
// line continue on the next one, after its prefix.
func resolveMarks(b []byte) string {
	var sb strings.Builder
	var carry []int
	start := 0
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] != '\n' {
			continue
		}
		if start > 0 {
			sb.WriteByte('\n')
		}
		carry = resolveLine(&sb, b[start:i], carry)
		start = i + 1
	}
	return sb.String()
}

func resolveLine(sb *strings.Builder, line []byte, carry []int) []int {
	type open struct{ kind, start, id int }
	var text []byte
	var spans []mspan
	stack := make([]open, 0, len(carry)+4)
	for id, k := range carry {
		stack = append(stack, open{kind: k, start: -1, id: id})
	}
	nextID := len(carry)
	content := -1
	for _, c := range line {
		switch {
		case c >= sentClose:
			k := int(c - sentClose)
			if n := len(stack); n > 0 && stack[n-1].kind == k {
				o := stack[n-1]
				stack = stack[:n-1]
				spans = append(spans, mspan{kind: k, start: o.start, end: len(text), id: o.id})
			}
		case c >= sentOpen:
			stack = append(stack, open{kind: int(c - sentOpen), start: len(text), id: nextID})
			nextID++
		case c == sentContent:
			if content < 0 {
				content = len(text)
			}
		case c > sentContent:
		default:
			text = append(text, c)
		}
	}
	var next []int
	for _, o := range stack {
		spans = append(spans, mspan{kind: o.kind, start: o.start, end: len(text), id: o.id})
		next = append(next, o.kind)
	}
	content = max(content, 0)
	for i := range spans {
		if spans[i].start < 0 {
			spans[i].start = min(content, spans[i].end)
		}
	}
	trimmed := spans[:0]
	for _, s := range spans {
		for s.start < s.end && (text[s.start] == ' ' || text[s.start] == '\t') {
			s.start++
		}
		for s.end > s.start && (text[s.end-1] == ' ' || text[s.end-1] == '\t') {
			s.end--
		}
		if s.start < s.end {
			trimmed = append(trimmed, s)
		}
	}
	spans = mergeSpans(trimmed)
	kept := spans[:0]
	for _, s := range spans {
		m := rune(markKinds[s.kind])
		before, _ := utf8.DecodeLastRune(text[:s.start])
		after, _ := utf8.DecodeRune(text[s.end:])
		if s.start == 0 {
			before = ' '
		}
		if s.end == len(text) {
			after = ' '
		}
		if isWordRune(before) || isWordRune(after) || before == m || after == m {
			continue
		}
		kept = append(kept, s)
	}
	writeMarked(sb, text, kept)
	return next
}

// mergeSpans joins ranges of the same kind that touch (with no space
// between), so <b>a</b><b>b</b> is *ab* rather than *a**b*.
func mergeSpans(spans []mspan) []mspan {
	sort.SliceStable(spans, func(i, j int) bool {
		a, b := spans[i], spans[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.start < b.start
	})
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].kind == s.kind && out[n-1].end == s.start {
			out[n-1].end = s.end
			continue
		}
		out = append(out, s)
	}
	return out
}

// writeMarked writes text with the markers of spans, nesting them: at one
// offset closing markers come first (innermost first), then opening ones
// (outermost first).
func writeMarked(sb *strings.Builder, text []byte, spans []mspan) {
	opens := append([]mspan(nil), spans...)
	sort.SliceStable(opens, func(i, j int) bool {
		a, b := opens[i], opens[j]
		if a.start != b.start {
			return a.start < b.start
		}
		if a.end != b.end {
			return a.end > b.end
		}
		return a.id < b.id
	})
	closes := append([]mspan(nil), spans...)
	sort.SliceStable(closes, func(i, j int) bool {
		a, b := closes[i], closes[j]
		if a.end != b.end {
			return a.end < b.end
		}
		if a.start != b.start {
			return a.start > b.start
		}
		return a.id > b.id
	})
	oi, ci := 0, 0
	for p := 0; p <= len(text); p++ {
		for ci < len(closes) && closes[ci].end == p {
			sb.WriteByte(markKinds[closes[ci].kind])
			ci++
		}
		for oi < len(opens) && opens[oi].start == p {
			sb.WriteByte(markKinds[opens[oi].kind])
			oi++
		}
		if p < len(text) {
			sb.WriteByte(text[p])
		}
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
