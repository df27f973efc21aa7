package richtext

import (
	"io"
	"strings"

	"golang.org/x/net/html"
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

// tokenizer adapts golang.org/x/net/html's tokenizer to the renderers: it
// drops comments and doctypes, drops the contents of elements whose text is
// never shown (script, style, title and the fallback content of iframe,
// noembed, noframes and noscript), and, unlike HTML, keeps a tag left
// unterminated at the end of the input as text, so that a stray "<b c" in an
// agent's line is not lost.
type tokenizer struct {
	s    string
	z    *html.Tokenizer
	pos  int    // bytes of s consumed by the tokens returned so far
	skip string // the raw-text element whose contents are being dropped
	done bool
}

func newTokenizer(s string) *tokenizer {
	return &tokenizer{s: s, z: html.NewTokenizer(strings.NewReader(s))}
}

// next returns the next token and false at the end of the input.
func (t *tokenizer) next() (token, bool) {
	for !t.done {
		tt := t.z.Next()
		raw := t.z.Raw()
		t.pos += len(raw)
		switch tt {
		case html.ErrorToken:
			t.done = true
			if t.z.Err() == io.EOF && len(raw) > 0 && t.skip == "" {
				return token{kind: tokText, text: html.UnescapeString(string(raw))}, true
			}
		case html.TextToken:
			if t.skip == "" {
				return token{kind: tokText, text: string(t.z.Text())}, true
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			if t.skip != "" {
				continue
			}
			tok := t.startTag()
			if hiddenRawText(tok.name) && tt == html.StartTagToken {
				t.skip = tok.name
			}
			return tok, true
		case html.EndTagToken:
			name, _ := t.z.TagName()
			if t.skip != "" {
				if string(name) == t.skip {
					t.skip = ""
				}
				continue
			}
			return token{kind: tokEnd, name: string(name)}, true
		}
	}
	return token{}, false
}

func (t *tokenizer) startTag() token {
	name, more := t.z.TagName()
	tok := token{kind: tokStart, name: string(name)}
	for more {
		var k, v []byte
		k, v, more = t.z.TagAttr()
		if tok.attrs == nil {
			tok.attrs = map[string]string{}
		}
		if _, dup := tok.attrs[string(k)]; !dup { // the first of duplicates wins, as in HTML
			tok.attrs[string(k)] = string(v)
		}
	}
	return tok
}

// hiddenRawText reports whether name is an element the HTML tokenizer reads
// as raw text and whose text a reader of the page never sees.
func hiddenRawText(name string) bool {
	switch name {
	case "script", "style", "title", "iframe", "noembed", "noframes", "noscript":
		return true
	}
	return false
}

// skipTo drops tokens up to and including the end tag name, if the rest of
// the input has one, and reports whether it did. The search tokenizes the
// rest once; a caller that remembers a false answer keeps the whole render
// linear, since a true one consumes what was searched.
func (t *tokenizer) skipTo(name string) bool {
	if t.skip != "" {
		return false
	}
	ahead := html.NewTokenizer(strings.NewReader(t.s[t.pos:]))
	n := 0
	for {
		tt := ahead.Next()
		if tt == html.ErrorToken {
			return false
		}
		n++
		if tt == html.EndTagToken {
			if got, _ := ahead.TagName(); string(got) == name {
				break
			}
		}
	}
	for ; n > 0; n-- {
		t.z.Next()
		t.pos += len(t.z.Raw())
	}
	return true
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}
