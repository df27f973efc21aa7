package richtext

import (
	"html"
	"strings"
)

// token is one piece of an HTML fragment: text, or a start or end tag.
type token struct {
	kind  tokenKind
	text  string            // tokText: decoded text
	name  string            // tags: lower-case name
	attrs map[string]string // start tags: decoded attribute values by lower-case name
}

type tokenKind int

const (
	tokText tokenKind = iota
	tokStart
	tokEnd
)

// tokenizer splits restricted HTML into tokens. It is lenient: a '<' that
// does not start a well-formed tag is text, an unterminated tag is text, and
// comments, doctypes and processing instructions are skipped.
type tokenizer struct {
	s   string
	pos int
}

// next returns the next token and false at the end of the input.
func (z *tokenizer) next() (token, bool) {
	for z.pos < len(z.s) {
		if z.s[z.pos] != '<' {
			return z.textUntilTag(), true
		}
		if t, ok := z.markup(); ok {
			return t, true
		}
	}
	return token{}, false
}

// textUntilTag reads text up to the next '<' that may start markup.
func (z *tokenizer) textUntilTag() token {
	start := z.pos
	i := strings.IndexByte(z.s[z.pos+1:], '<')
	if i < 0 {
		z.pos = len(z.s)
	} else {
		z.pos += 1 + i
	}
	return token{kind: tokText, text: html.UnescapeString(z.s[start:z.pos])}
}

// markup reads what starts at '<'. ok is false when it skipped a comment or
// declaration and produced nothing; a '<' that starts no markup becomes text.
func (z *tokenizer) markup() (token, bool) {
	rest := z.s[z.pos:]
	switch {
	case strings.HasPrefix(rest, "<!--"):
		z.skipPast("-->")
		return token{}, false
	case strings.HasPrefix(rest, "<!"), strings.HasPrefix(rest, "<?"):
		z.skipPast(">")
		return token{}, false
	case strings.HasPrefix(rest, "</") && len(rest) > 2 && isLetter(rest[2]):
		return z.endTag()
	case len(rest) > 1 && isLetter(rest[1]):
		return z.startTag()
	}
	z.pos++
	return token{kind: tokText, text: "<"}, true
}

func (z *tokenizer) skipPast(end string) {
	if i := strings.Index(z.s[z.pos:], end); i >= 0 {
		z.pos += i + len(end)
	} else {
		z.pos = len(z.s)
	}
}

func (z *tokenizer) endTag() (token, bool) {
	i := strings.IndexByte(z.s[z.pos:], '>')
	if i < 0 { // unterminated: the rest is text
		t := token{kind: tokText, text: html.UnescapeString(z.s[z.pos:])}
		z.pos = len(z.s)
		return t, true
	}
	name, _ := readName(z.s[z.pos+2 : z.pos+i])
	z.pos += i + 1
	return token{kind: tokEnd, name: name}, true
}

func (z *tokenizer) startTag() (token, bool) {
	start := z.pos
	name, n := readName(z.s[z.pos+1:])
	z.pos += 1 + n
	attrs, ok := z.attributes()
	if !ok { // unterminated: the rest is text
		z.pos = len(z.s)
		return token{kind: tokText, text: html.UnescapeString(z.s[start:])}, true
	}
	return token{kind: tokStart, name: name, attrs: attrs}, true
}

// attributes reads attributes up to and including the closing '>'; ok is
// false if the input ends first.
func (z *tokenizer) attributes() (map[string]string, bool) {
	var attrs map[string]string
	for {
		z.skipSpace()
		if z.pos >= len(z.s) {
			return nil, false
		}
		switch z.s[z.pos] {
		case '>':
			z.pos++
			return attrs, true
		case '/':
			z.pos++
			continue
		}
		key, n := readAttrName(z.s[z.pos:])
		z.pos += n
		z.skipSpace()
		val := ""
		if z.pos < len(z.s) && z.s[z.pos] == '=' {
			z.pos++
			z.skipSpace()
			var ok bool
			if val, ok = z.attrValue(); !ok {
				return nil, false
			}
		}
		if attrs == nil {
			attrs = map[string]string{}
		}
		if _, dup := attrs[key]; !dup { // the first of duplicates wins, as in HTML
			attrs[key] = html.UnescapeString(val)
		}
	}
}

func (z *tokenizer) attrValue() (string, bool) {
	if z.pos >= len(z.s) {
		return "", false
	}
	if q := z.s[z.pos]; q == '"' || q == '\'' {
		i := strings.IndexByte(z.s[z.pos+1:], q)
		if i < 0 {
			return "", false
		}
		v := z.s[z.pos+1 : z.pos+1+i]
		z.pos += i + 2
		return v, true
	}
	start := z.pos
	for z.pos < len(z.s) && !isSpace(z.s[z.pos]) && z.s[z.pos] != '>' {
		z.pos++
	}
	return z.s[start:z.pos], true
}

func (z *tokenizer) skipSpace() {
	for z.pos < len(z.s) && isSpace(z.s[z.pos]) {
		z.pos++
	}
}

// skipRawText skips the contents of a raw-text element (script, style) up
// to and including its end tag.
func (z *tokenizer) skipRawText(name string) {
	i := indexEndTag(z.s[z.pos:], name)
	if i < 0 {
		z.pos = len(z.s)
		return
	}
	z.pos += i
	z.skipPast(">")
}

// indexEndTag returns the offset of the first "</name" in s, ignoring case,
// or -1.
func indexEndTag(s, name string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], "</")
		if i < 0 {
			return -1
		}
		at := off + i
		if rest := s[at+2:]; len(rest) >= len(name) && strings.EqualFold(rest[:len(name)], name) {
			return at
		}
		off = at + 2
	}
}

// readName reads a tag name and returns it lower-cased with its length.
func readName(s string) (string, int) {
	n := 0
	for n < len(s) && (isLetter(s[n]) || isDigit(s[n]) || s[n] == '-' || s[n] == ':') {
		n++
	}
	return strings.ToLower(s[:n]), n
}

func readAttrName(s string) (string, int) {
	n := 0
	for n < len(s) && !isSpace(s[n]) && s[n] != '=' && s[n] != '>' && s[n] != '/' {
		n++
	}
	if n == 0 { // a stray character such as a quote: consume it
		n = 1
	}
	return strings.ToLower(s[:n]), n
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}
