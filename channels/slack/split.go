package slack

import (
	"strings"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/richtext"
)

// maxText is where a long line is split: Slack accepts 40,000 characters
// but truncates what it shows past 4,000.
const maxText = 3900

// Split cuts plain text longer than maxText characters at line breaks, else
// at spaces, else anywhere; the core sends each part as its own message.
func (c *Channel) Split(text string) []string {
	var parts []string
	for utf8.RuneCountInString(text) > maxText {
		cut := byteIndex(text, maxText)
		if i := strings.LastIndexByte(text[:cut], '\n'); i > cut/2 {
			cut = i + 1
		} else if i := strings.LastIndexByte(text[:cut], ' '); i > cut/2 {
			cut = i + 1
		}
		parts = append(parts, strings.TrimRight(text[:cut], " \n"))
		text = text[cut:]
	}
	return append(parts, text)
}

// Render implements connector.Renderer: an agent's HTML or Markdown line
// becomes Slack mrkdwn before the core stores and splits it, and Send posts
// it as it is.
func (c *Channel) Render(text string, f connector.Format) (string, connector.Format) {
	if f == connector.FormatHTML {
		return richtext.Mrkdwn(text), connector.FormatNative
	}
	return richtext.MarkdownToMrkdwn(text), connector.FormatNative
}

// byteIndex is the byte offset of the n-th rune of s.
func byteIndex(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}
