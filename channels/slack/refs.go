package slack

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectord/connectord/connector/richtext"
)

// Customer text is committed in a stored form and named on the way to the
// agent (connector.Resolver), so that a slow users.info never holds up the
// commit Slack's retries wait for.
//
// The stored form is the plain text PlainFromMrkdwn makes of Slack's
// mrkdwn, except that each user or channel reference without a label stays a
// token, <@U123> or <#C123>. A "<" of the customer's own text (Slack sends
// it as &lt;) that is followed by "@" or "#", after any number of word
// joiners (U+2060, invisible), gets one more word joiner after it, so that
// it can never read as a token; Resolve takes that joiner away again. So a
// customer who typed "<@U123>" still shows the agent "<@U123>", not a name.
const joiner = "\u2060"

// Bounds of naming one line.
const (
	// resolveWait bounds how long Resolve waits for users.info and
	// conversations.info in all; a reference not named by then stays an id.
	resolveWait = 2 * time.Second
	// maxResolved is how many references one line has named (distinct ones
	// looked up, and places a name is put); the rest read "@U123". It keeps
	// the agent's line within len(text) plus maxResolved names of at most
	// maxNameBytes.
	maxResolved = 50
	// maxNameBytes is how much of a name is used, as PlainFromMrkdwn does.
	maxNameBytes = 80
)

// storedText turns a Slack message's mrkdwn into the stored form. It asks
// Slack nothing.
func storedText(mrkdwn string) string {
	users, channels := richtext.MrkdwnRefs(mrkdwn)
	if len(users)+len(channels) == 0 {
		return escapeRefs(richtext.PlainFromMrkdwn(mrkdwn, nil))
	}
	mark, ok := freeMark(mrkdwn)
	if !ok { // every candidate is in the text: references stay readable ids
		return escapeRefs(richtext.PlainFromMrkdwn(mrkdwn, nil))
	}
	// PlainFromMrkdwn writes "@"+name or "#"+name for a reference; a name
	// that is the id between two marks no text of the customer can hold
	// shows where each reference landed.
	names := make(map[string]string, len(users)+len(channels))
	for _, id := range append(users, channels...) {
		names[id] = mark + id + mark
	}
	out := richtext.PlainFromMrkdwn(mrkdwn, names)
	var b strings.Builder
	for {
		i := strings.Index(out, mark)
		if i < 0 {
			b.WriteString(escapeRefs(out))
			return b.String()
		}
		j := strings.Index(out[i+len(mark):], mark)
		if i == 0 || (out[i-1] != '@' && out[i-1] != '#') || j < 0 {
			// Not a reference (PlainFromMrkdwn cut its output short): the
			// mark goes, the rest is text.
			out = out[:i] + out[i+len(mark):]
			continue
		}
		id := out[i+len(mark) : i+len(mark)+j]
		b.WriteString(escapeRefs(out[:i-1]))
		b.WriteString("<" + out[i-1:i] + id + ">")
		out = out[i+len(mark)+j+len(mark):]
	}
}

// freeMark is a private-use character that text does not contain.
func freeMark(text string) (string, bool) {
	for r := rune(0xE000); r < 0xE100; r++ {
		if !strings.ContainsRune(text, r) {
			return string(r), true
		}
	}
	return "", false
}

// escapeRefs adds a word joiner after each "<" that is followed by "@" or
// "#" after any word joiners: the customer's own text never holds a token.
func escapeRefs(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '<' && refAfterJoiners(s[i+1:]) {
			b.WriteString(joiner)
		}
	}
	return b.String()
}

// refAfterJoiners reports whether s starts with "@" or "#" after any word
// joiners.
func refAfterJoiners(s string) bool {
	s = strings.TrimLeft(s, joiner)
	return s != "" && (s[0] == '@' || s[0] == '#')
}

// ref is a token of the stored form: a user ('@') or a channel ('#').
type ref struct {
	kind byte
	id   string
}

// storedRefs lists the distinct tokens of a stored text, in order.
func storedRefs(text string) []ref {
	var out []ref
	seen := map[ref]bool{}
	for i := strings.IndexByte(text, '<'); i >= 0; {
		if r, _, ok := tokenAt(text, i); ok && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
		next := strings.IndexByte(text[i+1:], '<')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return out
}

// tokenAt reads the token <@ID> or <#ID> at text[i] (a '<'), and the offset
// after it.
func tokenAt(text string, i int) (ref, int, bool) {
	if i+1 >= len(text) || (text[i+1] != '@' && text[i+1] != '#') {
		return ref{}, 0, false
	}
	rest := text[i+2:]
	rest = rest[:min(len(rest), maxIDLen+1)] // an id is short: linear time
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return ref{}, 0, false
	}
	id := text[i+2 : i+2+end]
	if !slackID(id) {
		return ref{}, 0, false
	}
	return ref{kind: text[i+1], id: id}, i + 2 + end + 1, true
}

// maxIDLen is the longest id richtext.MrkdwnRefs lists.
const maxIDLen = 64

// slackID reports whether s has the shape of a user or channel id, as
// richtext.MrkdwnRefs lists them: upper-case letters and digits.
func slackID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}

// renderRefs turns a stored text into the agent's: each token becomes "@"
// or "#" and its name (names, else the id; the id past maxResolved names),
// and each escaping word joiner goes. Text without tokens or escapes comes
// back as it is.
func renderRefs(text string, names map[ref]string) string {
	if !strings.Contains(text, "<") {
		return text
	}
	var b strings.Builder
	start, named := 0, 0
	for i := 0; i < len(text); i++ {
		if text[i] != '<' {
			continue
		}
		if r, end, ok := tokenAt(text, i); ok {
			b.WriteString(text[start:i])
			b.WriteByte(r.kind)
			if n := names[r]; n != "" && named < maxResolved {
				named++
				b.WriteString(cutName(n))
			} else {
				b.WriteString(r.id)
			}
			start, i = end, end-1
			continue
		}
		if strings.HasPrefix(text[i+1:], joiner) && refAfterJoiners(text[i+1:]) {
			b.WriteString(text[start : i+1])
			start = i + 1 + len(joiner)
			i = start - 1
		}
	}
	b.WriteString(text[start:])
	return b.String()
}

// cutName keeps a name to maxNameBytes at a rune boundary, as
// PlainFromMrkdwn does.
func cutName(n string) string {
	if len(n) <= maxNameBytes {
		return n
	}
	i := maxNameBytes
	for i > 0 && !utf8.RuneStart(n[i]) {
		i--
	}
	return strings.TrimRight(n[:i], " \t\r\n")
}

// Resolve names the references in a stored customer line for the agent
// (connector.Resolver): from the cache, else users.info and
// conversations.info, all at once and together within resolveWait. A
// reference Slack does not name in time reads "@U123" or "#C123"; a lookup
// still running fills the cache for the next line or attempt. Resolve never
// fails and is safe for concurrent use.
func (c *Channel) Resolve(ctx context.Context, text string) string {
	refs := storedRefs(text)
	if len(refs) == 0 {
		return renderRefs(text, nil)
	}
	refs = refs[:min(len(refs), maxResolved)]
	ctx, cancel := context.WithTimeout(ctx, resolveWait)
	defer cancel()
	return renderRefs(text, c.names.names(ctx, refs))
}
