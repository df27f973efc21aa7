package richtext

import (
	"unicode/utf8"

	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// parseMarkdown parses src as CommonMark with goldmark, plus GFM
// strikethrough (~x~ and ~~x~~). Three corners where goldmark's time grows
// with the square of the input are capped (measured: nested "- " list
// markers, '>' quotes followed by lazy lines, and unmatched '[', '*' and
// '_' each took seconds for 60-80 KB):
//   - block quotes and lists nest at most maxContainers deep; a deeper
//     marker is text;
//   - one paragraph reads at most maxInlineMarks emphasis runs and link
//     brackets; later ones are text;
//   - a run of more than maxDelimRun *, _ or ~ is text.
//
// The returned map tells, for every emphasis and strikethrough node, the
// delimiter it was written with and whether Slack would render it (see
// emphasisInfo).
func parseMarkdown(src []byte) (ast.Node, map[ast.Node]emphasisInfo) {
	marks := &markBudget{}
	info := map[ast.Node]emphasisInfo{}
	p := parser.NewParser(
		parser.WithBlockParsers(
			util.Prioritized(parser.NewSetextHeadingParser(), 100),
			util.Prioritized(parser.NewThematicBreakParser(), 200),
			util.Prioritized(cappedContainer{parser.NewListParser()}, 300),
			util.Prioritized(parser.NewListItemParser(), 400),
			util.Prioritized(parser.NewCodeBlockParser(), 500),
			util.Prioritized(parser.NewATXHeadingParser(), 600),
			util.Prioritized(parser.NewFencedCodeBlockParser(), 700),
			util.Prioritized(cappedContainer{parser.NewBlockquoteParser()}, 800),
			util.Prioritized(parser.NewHTMLBlockParser(), 900),
			util.Prioritized(parser.NewParagraphParser(), 1000),
		),
		parser.WithInlineParsers(
			util.Prioritized(parser.NewCodeSpanParser(), 100),
			util.Prioritized(&cappedLinks{inner: parser.NewLinkParser(), marks: marks}, 200),
			util.Prioritized(parser.NewAutoLinkParser(), 300),
			util.Prioritized(parser.NewRawHTMLParser(), 400),
			util.Prioritized(&delimParser{marks: marks, info: info}, 500),
		),
		parser.WithParagraphTransformers(parser.DefaultParagraphTransformers()...),
	)
	return p.Parse(text.NewReader(src)), info
}

// emphasisInfo describes an emphasis or strikethrough node.
type emphasisInfo struct {
	delim byte // '*', '_' or '~'
	// glued: a letter or digit touches the delimiters from outside
	// ("2*3*4", "foo**bar**baz"). Slack renders no such emphasis, so the
	// Markdown delimiters are kept as text.
	glued bool
}

// markBudget counts the emphasis runs and link brackets read in the current
// paragraph.
type markBudget struct {
	block ast.Node
	n     int
}

// take reports whether one more mark may be read in block.
func (b *markBudget) take(block ast.Node) bool {
	if block != b.block {
		b.block, b.n = block, 0
	}
	if b.n >= maxInlineMarks {
		return false
	}
	b.n++
	return true
}

// cappedContainer refuses to open a block quote or list deeper than
// maxContainers, which keeps goldmark's per-line work on open blocks bounded.
type cappedContainer struct{ parser.BlockParser }

func (c cappedContainer) Open(parent ast.Node, reader text.Reader, pc parser.Context) (ast.Node, parser.State) {
	depth := 0
	for n := parent; n != nil; n = n.Parent() {
		if k := n.Kind(); k == ast.KindBlockquote || k == ast.KindList {
			if depth++; depth >= maxContainers {
				return nil, parser.NoChildren
			}
		}
	}
	return c.BlockParser.Open(parent, reader, pc)
}

// cappedLinks is goldmark's link parser with at most maxInlineMarks opening
// brackets per paragraph.
type cappedLinks struct {
	inner parser.InlineParser
	marks *markBudget
}

func (l *cappedLinks) Trigger() []byte { return l.inner.Trigger() }

func (l *cappedLinks) Parse(parent ast.Node, block text.Reader, pc parser.Context) ast.Node {
	if line, seg := block.PeekLine(); len(line) > 0 && line[0] != ']' && !l.marks.take(parent) {
		n := 1
		if line[0] == '!' && len(line) > 1 && line[1] == '[' {
			n = 2
		}
		block.Advance(n)
		return ast.NewTextSegment(seg.WithStop(seg.Start + n))
	}
	return l.inner.Parse(parent, block, pc)
}

// CloseBlock passes the end of a paragraph on to goldmark's link parser,
// which clears its bracket state there.
func (l *cappedLinks) CloseBlock(parent ast.Node, block text.Reader, pc parser.Context) {
	if cb, ok := l.inner.(parser.CloseBlocker); ok {
		cb.CloseBlock(parent, block, pc)
	}
}

// delimParser reads runs of *, _ (emphasis) and ~ (strikethrough) as
// CommonMark delimiters, recording for each match the information Slack
// rendering needs (emphasisInfo).
type delimParser struct {
	marks *markBudget
	info  map[ast.Node]emphasisInfo
}

func (d *delimParser) Trigger() []byte { return []byte{'*', '_', '~'} }

func (d *delimParser) Parse(parent ast.Node, block text.Reader, pc parser.Context) ast.Node {
	before := block.PrecendingCharacter()
	line, seg := block.PeekLine()
	c := line[0]
	n := 0
	for n < len(line) && line[n] == c {
		n++
	}
	after := ' '
	if n < len(line) {
		after, _ = utf8.DecodeRune(line[n:])
	}
	proc := &delimProc{parser: d, char: c, before: before, after: after}
	var dl *parser.Delimiter
	if n <= maxDelimRun && (c != '~' || n <= 2) && d.marks.take(parent) {
		dl = parser.ScanDelimiter(line, before, 1, proc)
	}
	block.Advance(n)
	if dl == nil { // the whole run is text
		return ast.NewTextSegment(seg.WithStop(seg.Start + n))
	}
	dl.Segment = seg.WithStop(seg.Start + n)
	pc.PushDelimiter(dl)
	return dl
}

// delimProc is the delimiter processor of one run; it knows the characters
// around the run.
type delimProc struct {
	parser        *delimParser
	char          byte
	before, after rune
	closer        *delimProc // the closer CanOpenCloser last accepted
}

func (p *delimProc) IsDelimiter(b byte) bool { return b == p.char }

// CanOpenCloser pairs runs of the same character; tildes pair only with a
// run of the same length, as in GFM.
func (p *delimProc) CanOpenCloser(opener, closer *parser.Delimiter) bool {
	cp, ok := closer.Processor.(*delimProc)
	if !ok || opener.Char != closer.Char || (p.char == '~' && opener.OriginalLength != closer.OriginalLength) {
		return false
	}
	p.closer = cp // goldmark calls OnMatch on the opener right after accepting
	return true
}

func (p *delimProc) OnMatch(consumes int) ast.Node {
	var n ast.Node
	if p.char == '~' {
		n = east.NewStrikethrough()
	} else {
		n = ast.NewEmphasis(consumes)
	}
	after := ' '
	if p.closer != nil {
		after = p.closer.after
	}
	p.parser.info[n] = emphasisInfo{delim: p.char, glued: isWordRune(p.before) || isWordRune(after)}
	return n
}
