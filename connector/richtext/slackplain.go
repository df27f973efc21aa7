package richtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// slackUnescaper decodes Slack's three escapes in one pass.
var slackUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// MrkdwnRefs lists the ids a Slack message's text refers to without a readable label: users (<@U123>, <@W123>) and channels (<#C123>), each once, in order of first appearance; ids that carry a label (<#C123|general>, <@U123|ann>) are not listed.
//
// Only ids of the usual shape (upper-case letters and digits) are listed;
// they are what PlainFromMrkdwn looks up in its names. The ids together are
// never longer than text, and time is linear in len(text).
func MrkdwnRefs(text string) (users, channels []string) {
	seen := map[string]bool{}
	for i := 0; i < len(text); i++ {
		if text[i] != '<' {
			continue
		}
		inner, _, ok := angleToken(text, i)
		if !ok || len(inner) < 2 || (inner[0] != '@' && inner[0] != '#') {
			continue
		}
		target, label, hasLabel := strings.Cut(inner, "|")
		id := target[1:]
		if (hasLabel && label != "") || !isSlackID(id) {
			continue
		}
		key := target[:1] + id
		if seen[key] {
			continue
		}
		seen[key] = true
		if inner[0] == '@' {
			users = append(users, id)
		} else {
			channels = append(channels, id)
		}
	}
	return users, channels
}

func isSlackID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'A' && s[i] <= 'Z' || isDigit(s[i])) {
			return false
		}
	}
	return true
}

// angleToken returns what is between the '<' at s[i] and the next '>', and
// the offset after it; ok is false if there is no '>' on the line, another
// '<' comes first, or nothing is between them.
func angleToken(s string, i int) (string, int, bool) {
	end := strings.IndexAny(s[i+1:], "<>\n")
	if end <= 0 || s[i+1+end] != '>' {
		return "", 0, false
	}
	return s[i+1 : i+1+end], i + end + 2, true
}

// PlainFromMrkdwn turns a Slack message's text into plain text for an agent. names maps user and channel ids to readable names (as found by users.info / conversations.info); an id missing from names is shown as is.
//
// The contract:
//   - <@U123> → "@" + names["U123"] ("@U123" when unknown), <@U123|ann> →
//     "@ann"; <#C123> → "#" + names["C123"] ("#C123"), <#C123|general> →
//     "#general";
//   - <!here>, <!channel>, <!everyone> → "@here", "@channel", "@everyone";
//     <!subteam^S123|@team> → "@team" ("@S123" without a label);
//     <!date^...|fallback> → the fallback; any other <!...> → its label, or
//     the text inside without "!";
//   - <https://x.com|label> → "label (https://x.com)"; <https://x.com> →
//     "https://x.com"; just the label when it is the address or the address
//     without its scheme (<http://example.com|example.com>,
//     <mailto:a@b.com|a@b.com>);
//   - a '<' that starts none of these is kept as it is;
//   - *bold*, _italic_ and ~strike~ markers are removed where Slack renders
//     them: the opening marker at the start of a line or after white space or
//     punctuation, the closing one at the end of a line or before white space
//     or punctuation, on the same line, around content that neither starts
//     nor ends with a space; other marker characters stay (snake_case, 2*3*4);
//   - `code` loses its backticks and a ```block``` becomes its content on
//     lines of its own; nothing inside code is changed but escapes and links;
//   - last, &amp; &lt; &gt; are decoded (so "&lt;@U1&gt;" is the text
//     "<@U1>" and "&gt; quote" at the start of a line is "> quote"); names
//     are used as they are;
//   - CRLF becomes LF, invalid UTF-8 becomes U+FFFD, and the result is
//     trimmed.
//
// Any input gives a result, and no text but markup is dropped.
//
// Bound: a name from names is used up to its first 80 bytes (Slack's own
// limit for display and channel names), and the result is at most
// 8*len(text)+64 bytes, cut there otherwise; text whose ids have Slack's
// usual length (nine characters or more) never reaches it. Time is linear in
// len(text).
func PlainFromMrkdwn(text string, names map[string]string) string {
	return cutText(plainFromMrkdwn(text, names), outputLimit(8, len(text)))
}

func plainFromMrkdwn(text string, names map[string]string) string {
	s := strings.ToValidUTF8(text, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var items []pitem
	plain := func(str string) {
		for _, r := range str {
			items = append(items, pitem{r: r})
		}
	}
	opaque := func(str string) {
		if str != "" {
			items = append(items, pitem{op: str, isOp: true})
		}
	}
	start := 0
	noFence := false // no ``` closes a block from here on
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			if out, end, ok := slackAngle(s, i, names); ok {
				plain(s[start:i])
				opaque(out)
				i, start = end, end
				continue
			}
		case '`':
			if !noFence && strings.HasPrefix(s[i:], "```") {
				j := strings.Index(s[i+3:], "```")
				noFence = j < 0
				if j >= 0 && strings.Trim(s[i+3:i+3+j], "\n") != "" {
					plain(s[start:i])
					body := s[i+3 : i+3+j]
					body = strings.TrimPrefix(body, "\n")
					body = strings.TrimSuffix(body, "\n")
					for len(items) > 0 && !items[len(items)-1].isOp && (items[len(items)-1].r == ' ' || items[len(items)-1].r == '\t') {
						items = items[:len(items)-1] // white space before the block
					}
					if len(items) > 0 && !(!items[len(items)-1].isOp && items[len(items)-1].r == '\n') {
						plain("\n")
					}
					opaque(slackAngles(body, names))
					end := i + 3 + j + 3
					for end < len(s) && (s[end] == ' ' || s[end] == '\t') {
						end++ // white space after the block
					}
					if end < len(s) && s[end] != '\n' {
						plain("\n")
					}
					i, start = end, end
					continue
				}
			}
			if j := strings.IndexAny(s[i+1:], "`\n"); j > 0 && s[i+1+j] == '`' {
				plain(s[start:i])
				opaque(slackAngles(s[i+1:i+1+j], names))
				end := i + 1 + j + 1
				i, start = end, end
				continue
			}
		}
		i++
	}
	plain(s[start:])
	stripMarkers(items)
	var b strings.Builder
	var run strings.Builder
	for _, it := range items {
		switch {
		case it.drop:
		case it.isOp:
			b.WriteString(slackUnescaper.Replace(run.String()))
			run.Reset()
			b.WriteString(it.op)
		default:
			run.WriteRune(it.r)
		}
	}
	b.WriteString(slackUnescaper.Replace(run.String()))
	return strings.TrimSpace(b.String())
}

// pitem is a character of a message's text, or an opaque piece already in
// its final form (a mention, a link, code), which counts as a non-space
// character that is neither a letter nor a digit.
type pitem struct {
	r    rune
	op   string
	isOp bool
	drop bool
}

// slackAngles renders the <...> tokens in s and decodes the rest.
func slackAngles(s string, names map[string]string) string {
	var b strings.Builder
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '<' {
			continue
		}
		if out, end, ok := slackAngle(s, i, names); ok {
			b.WriteString(slackUnescaper.Replace(s[start:i]))
			b.WriteString(out)
			start = end
			i = end - 1
		}
	}
	b.WriteString(slackUnescaper.Replace(s[start:]))
	return b.String()
}

// slackAngle renders the Slack token <...> at s[i:], decoded.
func slackAngle(s string, i int, names map[string]string) (string, int, bool) {
	inner, end, ok := angleToken(s, i)
	if !ok {
		return "", 0, false
	}
	target, label, _ := strings.Cut(inner, "|")
	if target == "" {
		return "", 0, false
	}
	label = slackUnescaper.Replace(label)
	name := func(id string) string {
		if n, ok := names[id]; ok && n != "" {
			return cutText(n, maxName)
		}
		return slackUnescaper.Replace(id)
	}
	switch target[0] {
	case '@':
		id := target[1:]
		if id == "" {
			return "", 0, false
		}
		if label != "" {
			return "@" + strings.TrimPrefix(label, "@"), end, true
		}
		return "@" + name(id), end, true
	case '#':
		id := target[1:]
		if id == "" {
			return "", 0, false
		}
		if label != "" {
			return "#" + strings.TrimPrefix(label, "#"), end, true
		}
		return "#" + name(id), end, true
	case '!':
		cmd := target[1:]
		if cmd == "" {
			return "", 0, false
		}
		switch {
		case cmd == "here" || cmd == "channel" || cmd == "everyone":
			return "@" + cmd, end, true
		case strings.HasPrefix(cmd, "subteam^"):
			if label != "" {
				return "@" + strings.TrimPrefix(label, "@"), end, true
			}
			if id := cmd[len("subteam^"):]; id != "" {
				return "@" + slackUnescaper.Replace(id), end, true
			}
		}
		if label != "" {
			return label, end, true
		}
		return slackUnescaper.Replace(cmd), end, true
	}
	if !hasScheme(target) {
		return "", 0, false
	}
	u := slackUnescaper.Replace(target)
	if label == "" || label == u || label == withoutScheme(u) {
		if label == "" {
			return u, end, true
		}
		return label, end, true
	}
	return label + " (" + u + ")", end, true
}

// withoutScheme strips "scheme:" and a following "//".
func withoutScheme(u string) string {
	i := strings.IndexByte(u, ':')
	if i < 0 {
		return u
	}
	return strings.TrimPrefix(u[i+1:], "//")
}

// stripMarkers drops the *, _ and ~ pairs Slack renders as formatting.
func stripMarkers(items []pitem) {
	for start := 0; start < len(items); {
		end := start
		for end < len(items) && (items[end].isOp || items[end].r != '\n') {
			end++
		}
		for _, m := range []rune{'*', '_', '~'} {
			stripLine(items[start:end], m)
		}
		start = end + 1
	}
}

func stripLine(line []pitem, m rune) {
	isMark := func(k int) bool { return !line[k].isOp && line[k].r == m }
	space := func(k int) bool { return !line[k].isOp && unicode.IsSpace(line[k].r) }
	boundary := func(k int) bool { // k is outside the line, or white space or punctuation
		if k < 0 || k >= len(line) || line[k].isOp {
			return true
		}
		r := line[k].r
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != utf8.RuneError
	}
	// The first opener pairs with the first closer after it; if it finds
	// none, no later opener can.
	open := -1
	for k := range line {
		if !isMark(k) {
			continue
		}
		if open >= 0 && k >= open+2 && !space(k-1) && boundary(k+1) {
			line[open].drop = true
			line[k].drop = true
			open = -1
			continue
		}
		if open < 0 && boundary(k-1) && k+1 < len(line) && !space(k+1) {
			open = k
		}
	}
}
