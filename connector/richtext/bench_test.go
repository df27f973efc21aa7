package richtext

import (
	"strings"
	"testing"
)

// agentHTML is a realistic agent line as WhosOn sends it.
const agentHTML = `<p>Hi <b>Sam</b>, thanks for waiting &ndash; I checked your account.</p>
<p>To reset the router, please:</p>
<ol><li>Unplug it for <i>30 seconds</i>;</li><li>Open <a href="https://help.example.com/router?model=x200&amp;lang=en">the setup page</a>;</li>
<li>Choose <strong>Factory reset</strong> and confirm.</li></ol>
<p>If that does not help, write to <a href="mailto:support@example.com">support@example.com</a> or call us.<br>Kind regards,<br>Alice</p>`

// agentMarkdown is a realistic agent message in Markdown.
const agentMarkdown = "Hi **Sam**, thanks for waiting – I checked your account.\n\n" +
	"To reset the router, please:\n\n1. Unplug it for *30 seconds*;\n2. Open [the setup page](https://help.example.com/router?model=x200&lang=en);\n" +
	"3. Choose **Factory reset** and confirm.\n\n> Note: `reset` clears ~~all~~ your Wi-Fi settings.\n\n" +
	"If that does not help, write to <support@example.com> or call us.\nKind regards,\nAlice"

// slackText is a realistic customer message from Slack.
const slackText = "Hi <@U01ABCDEF>, the *router* still blinks _orange_ after <https://help.example.com/router|the reset>.\n" +
	"```\nstatus: 0x12 &lt;fail&gt;\n```\nCan someone from <#C01ABCDEF> help? ~thanks~"

func benchConvert(b *testing.B, conv func(string) string, in string) {
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		conv(in)
	}
}

func BenchmarkPlainText(b *testing.B) {
	b.Run("agent", func(b *testing.B) { benchConvert(b, PlainText, agentHTML) })
	b.Run("hostile32k", func(b *testing.B) { benchConvert(b, PlainText, repeatTo("<ul><li>x", 32<<10)) })
}

func BenchmarkMrkdwn(b *testing.B) {
	b.Run("agent", func(b *testing.B) { benchConvert(b, Mrkdwn, agentHTML) })
	b.Run("hostile32k", func(b *testing.B) { benchConvert(b, Mrkdwn, repeatTo("<b><i>x", 32<<10)) })
}

func BenchmarkMarkdownToMrkdwn(b *testing.B) {
	b.Run("agent", func(b *testing.B) { benchConvert(b, MarkdownToMrkdwn, agentMarkdown) })
	b.Run("hostile32k", func(b *testing.B) {
		benchConvert(b, MarkdownToMrkdwn, repeatTo("*a ", 16<<10)+repeatTo("a* ", 16<<10))
	})
}

func BenchmarkPlainFromMrkdwn(b *testing.B) {
	names := map[string]string{"U01ABCDEF": "Alice", "C01ABCDEF": "support"}
	conv := func(s string) string { return PlainFromMrkdwn(s, names) }
	b.Run("customer", func(b *testing.B) { benchConvert(b, conv, slackText) })
	b.Run("hostile32k", func(b *testing.B) { benchConvert(b, conv, repeatTo("*a ", 32<<10)) })
}

// TestBenchInputsRender keeps the benchmark inputs honest: they render to
// what a reader expects.
func TestBenchInputsRender(t *testing.T) {
	if got := PlainText(agentHTML); !strings.Contains(got, "2. Open the setup page (https://help.example.com/router?model=x200&lang=en);") {
		t.Errorf("PlainText(agentHTML) = %q", got)
	}
	if got := MarkdownToMrkdwn(agentMarkdown); !strings.Contains(got, "2. Open <https://help.example.com/router?model=x200&amp;lang=en|the setup page>;") {
		t.Errorf("MarkdownToMrkdwn(agentMarkdown) = %q", got)
	}
}
