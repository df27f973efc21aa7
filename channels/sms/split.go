package sms

import (
	"github.com/connectord/connectord/channels/sms/segment"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/richtext"
)

// MaxBody is the longest message body Twilio accepts (error 21617 past it),
// in characters as Twilio counts them: UTF-16 code units, so a character
// outside the Basic Multilingual Plane, such as most emoji, counts twice.
const MaxBody = 1600

// Split implements connector.Splitter: it prepares an agent line as
// configured (gsm_normalize, then max_segments with truncation_mark) and
// cuts it into message bodies of at most MaxBody UTF-16 units where that
// costs the fewest bodies, then the fewest segments (segment.Split). Parts
// are trimmed and never empty: text that is only white space has none.
// Preparing is idempotent, so Send may prepare a stored part again.
func (c *Channel) Split(text string) []string { return segment.Split(c.prepare(text), MaxBody) }

// prepare applies gsm_normalize and max_segments to one line.
func (c *Channel) prepare(text string) string {
	if c.cfg.GSMNormalize {
		text = segment.Normalize(text)
	}
	if c.cfg.MaxSegments > 0 {
		text, _ = segment.Truncate(text, c.cfg.MaxSegments, c.cfg.TruncationMark)
	}
	return text
}

// Render implements connector.Renderer: an SMS is plain text. The core
// renders an agent's HTML line with it before storing, so the line is split
// once, by the core, into parts it tracks one by one. Markdown reads well
// enough as it is.
func (c *Channel) Render(text string, f connector.Format) (string, connector.Format) {
	if f == connector.FormatHTML {
		return richtext.PlainText(text), connector.FormatPlain
	}
	return text, connector.FormatPlain
}
