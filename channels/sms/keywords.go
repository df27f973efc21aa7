package sms

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
)

// keyword is what a one-word customer message means to the carriers.
type keyword int

const (
	keywordNone keyword = iota
	keywordOptOut
	keywordOptIn
	keywordHelp
)

func (k keyword) String() string {
	return [...]string{"none", "opt-out", "opt-in", "help"}[k]
}

// maxKeywordLen bounds a configured keyword; carriers' are at most 11 letters.
const maxKeywordLen = 32

// keywords matches messages against the configured keyword lists and holds
// the compiled replies.
type keywords struct {
	words   map[string]keyword // normalised keyword -> kind
	replies [4]*connector.Template
}

// replyData is what a keyword reply template can use.
type replyData struct {
	Number  string // the number (or Messaging Service) the customer wrote to
	Keyword string // the keyword as matched, upper case
}

// normalizeKeyword returns body as a keyword candidate: upper case, with
// surrounding white space, punctuation and symbols removed, and "" when
// what is left is not exactly one word ("please stop calling" is three),
// or body is far longer than a keyword or not UTF-8.
func normalizeKeyword(body string) string {
	if len(body) > 4*maxKeywordLen || !utf8.ValidString(body) { // never a keyword
		return ""
	}
	w := strings.TrimFunc(body, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
	})
	if w == "" || strings.IndexFunc(w, unicode.IsSpace) >= 0 {
		return ""
	}
	return strings.ToUpper(w)
}

// newKeywords compiles cfg's lists and replies; cfg passed checkKeywords.
func newKeywords(cfg Config) (*keywords, error) {
	k := &keywords{words: map[string]keyword{}}
	for kind, list := range map[keyword][]string{
		keywordOptOut: cfg.OptOutKeywords, keywordOptIn: cfg.OptInKeywords, keywordHelp: cfg.HelpKeywords,
	} {
		for _, w := range list {
			k.words[normalizeKeyword(w)] = kind
		}
	}
	for kind, text := range map[keyword]string{
		keywordOptOut: cfg.OptOutReply, keywordOptIn: cfg.OptInReply, keywordHelp: cfg.HelpReply,
	} {
		t, err := connector.ParseTemplate(kind.String()+" reply", text, replyData{})
		if err != nil {
			return nil, err
		}
		k.replies[kind] = t
	}
	return k, nil
}

// match returns the keyword body is, or keywordNone.
func (k *keywords) match(body string) (keyword, string) {
	w := normalizeKeyword(body)
	if w == "" {
		return keywordNone, ""
	}
	return k.words[w], w
}

// reply renders the answer to a keyword; "" when its template is empty.
func (k *keywords) reply(kind keyword, d replyData) (string, error) {
	if kind == keywordNone {
		return "", nil
	}
	return k.replies[kind].Render(d)
}

// checkKeywords calls bad for a keyword that is not one word, or is in two
// lists, and for a reply template that does not parse.
func (c Config) checkKeywords(bad func(key, format string, args ...any)) {
	seen := map[string]string{}
	for _, l := range []struct {
		key  string
		list []string
	}{{"opt_out_keywords", c.OptOutKeywords}, {"opt_in_keywords", c.OptInKeywords}, {"help_keywords", c.HelpKeywords}} {
		for _, w := range l.list {
			n := normalizeKeyword(w)
			switch {
			case n == "" || n != strings.ToUpper(strings.TrimSpace(w)) || len(w) > maxKeywordLen:
				bad(l.key, "%q is not one word of letters and digits (at most %d bytes)", w, maxKeywordLen)
			case seen[n] != "" && seen[n] != l.key:
				bad(l.key, "%q is also in %s", w, seen[n])
			}
			seen[n] = l.key
		}
	}
	for _, r := range []struct{ key, text string }{
		{"opt_out_reply", c.OptOutReply}, {"opt_in_reply", c.OptInReply}, {"help_reply", c.HelpReply},
	} {
		if _, err := connector.ParseTemplate(r.key, r.text, replyData{}); err != nil {
			bad(r.key, "%s", fmt.Sprint(err))
		}
	}
}
