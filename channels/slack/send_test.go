package slack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

// thread posts a customer's first message and returns its conversation address.
func (e *env) thread(text string) (string, slacktest.Message) {
	root := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: text, Silent: true})
	return chSupport + "/" + root.TS, root
}

func (e *env) send(to string, m *connector.Message) (string, error) {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.ch.Send(ctx, to, m)
}

func TestSendAgentLineInThread(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) { cfg["agent_icon_emoji"] = ":headphones:" })
	e.start()
	to, root := e.thread("help")
	ts, err := e.send(to, &connector.Message{ID: 7, Kind: connector.KindText, Agent: "Dee",
		Text: "<p>Try <b>turning it off</b> &amp; on: <a href=\"https://x.example/a?b=1&amp;c=2\">guide</a></p>", Format: connector.FormatHTML})
	if err != nil {
		t.Fatal(err)
	}
	replies := e.fake.Replies(chSupport, root.TS)
	if len(replies) != 1 {
		t.Fatalf("replies = %+v", replies)
	}
	got := replies[0]
	if got.TS != ts || got.Username != "Dee" || got.IconEmoji != ":headphones:" {
		t.Errorf("posted %+v, want ts %s under Dee with the icon", got, ts)
	}
	if want := "Try *turning it off* &amp; on: <https://x.example/a?b=1&amp;c=2|guide>"; got.Text != want {
		t.Errorf("text = %q, want %q", got.Text, want)
	}
	if got.Metadata == nil || got.Metadata.EventType != metadataType || got.Metadata.EventPayload["message_id"] != float64(7) {
		t.Errorf("metadata = %+v, want our message id", got.Metadata)
	}
}

func TestSendNoticesMoveReactions(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	steps := []struct {
		notice, text string
		want         []string
	}{
		{"queued", "Thanks, an agent will be with you shortly.", []string{"hourglass_flowing_sand"}},
		{"agent_joined", "", []string{"speech_balloon"}}, // an empty template: reaction only
		{"ended_by_agent", "The agent has ended the chat.", []string{"white_check_mark"}},
		{"new_conversation", "A new chat starts.", nil},
		{"queued", "", []string{"hourglass_flowing_sand"}},
	}
	for i, s := range steps {
		if _, err := e.send(to, &connector.Message{ID: int64(i + 1), Kind: connector.KindNotice, Notice: s.notice, Text: s.text}); err != nil {
			t.Fatalf("%s: %v", s.notice, err)
		}
		m, _ := e.fake.Message(chSupport, root.TS)
		if diff := cmp.Diff(s.want, m.Reactions); diff != "" {
			t.Errorf("after %s, reactions (-want +got):\n%s", s.notice, diff)
		}
	}
	var texts []string
	for _, r := range e.fake.Replies(chSupport, root.TS) {
		texts = append(texts, r.Text)
	}
	want := []string{"Thanks, an agent will be with you shortly.", "The agent has ended the chat.", "A new chat starts."}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("thread (-want +got):\n%s", diff)
	}
}

func TestSendDMHasNoReactions(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	if _, err := e.send(dmAnn, &connector.Message{ID: 1, Kind: connector.KindNotice, Notice: "queued", Text: "queued"}); err != nil {
		t.Fatal(err)
	}
	h := e.fake.History(dmAnn)
	if len(h) != 1 || h[0].Text != "queued" || h[0].ThreadTS != "" {
		t.Errorf("DM history = %+v, want the notice at the top level", h)
	}
	if n := len(e.fake.Calls("reactions.add")); n != 0 {
		t.Errorf("reactions.add called %d times in a DM", n)
	}
}

// A 429 holds the channel back as Slack asked, for every message: with an
// hour's Retry-After, the next post is held (it reserves the slot after the
// hold and makes no call) until its context ends.
func TestSendRateLimited(t *testing.T) {
	// A post interval, so that a reserved slot moves the channel's next time.
	e := newEnv(t, true, func(cfg map[string]any) { cfg["post_interval"] = "1ms" })
	e.start()
	to, _ := e.thread("help")
	e.fake.Fail("chat.postMessage", slacktest.Fault{Status: 429, RetryAfter: time.Hour, Times: 1})
	_, err := e.send(to, &connector.Message{ID: 1, Kind: connector.KindText, Text: "hi"})
	if d, ok := connector.RetryDelay(err); !ok || d != time.Hour {
		t.Fatalf("Send = %v; want RetryAfter 1h", err)
	}
	posts := len(e.fake.Calls("chat.postMessage"))
	held := latestSlot(e.ch.pace)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := e.ch.Send(ctx, to, &connector.Message{ID: 2, Kind: connector.KindText, Text: "next", CreatedAt: time.Now()})
		got <- err
	}()
	e.waitFor("the next post's slot, after the hold", func() bool { return latestSlot(e.ch.pace).After(held) })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("the next post = %v, want held until its context ended", err)
	}
	if n := len(e.fake.Calls("chat.postMessage")); n != posts {
		t.Errorf("%d posts during the hold, want none", n-posts)
	}
}

// latestSlot is the latest next-post time p holds for any channel.
func latestSlot(p *pacer) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var latest time.Time
	for _, t := range p.next {
		if t.After(latest) {
			latest = t
		}
	}
	return latest
}

func TestSendPermanentAndAuthErrors(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	_, err := e.send("C0GONE0001/1700000000.000100", &connector.Message{ID: 1, Kind: connector.KindText, Text: "hi"})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "channel_not_found") {
		t.Errorf("to an unknown channel: %v; want permanent channel_not_found", err)
	}
	to, _ := e.thread("help")
	e.fake.Fail("chat.postMessage", slacktest.Fault{Error: "token_revoked"})
	_, err = e.send(to, &connector.Message{ID: 2, Kind: connector.KindText, Text: "hi"})
	if err == nil || connector.IsPermanent(err) {
		t.Errorf("with a revoked token: %v; want a retryable error (the message waits)", err)
	}
	if h := e.ch.Health(); h.Ready || !strings.Contains(h.Detail, "token_revoked") {
		t.Errorf("Health = %+v, want not ready because of the token", h)
	}
	e.fake.ClearFaults()
	if _, err := e.send(to, &connector.Message{ID: 2, Kind: connector.KindText, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if h := e.ch.Health(); !h.Ready {
		t.Errorf("Health after a good call = %+v", h)
	}
}

func TestSendUnknownOutcomeNotPostedTwice(t *testing.T) {
	for _, fault := range []slacktest.Fault{
		{Status: 500, AfterApply: true, Times: 1},            // Slack posted, then failed
		{Delay: 3 * time.Second, AfterApply: true, Times: 1}, // posted, answer too late (timeout)
		{Status: 503, Times: 1},                              // not posted
	} {
		e := newEnv(t, true, func(cfg map[string]any) { cfg["request_timeout"] = "1s" })
		e.start()
		to, root := e.thread("help")
		e.fake.Fail("chat.postMessage", fault)
		m := &connector.Message{ID: 42, Kind: connector.KindText, Text: "exactly once"}
		if _, err := e.send(to, m); err == nil {
			t.Fatalf("fault %+v: first attempt succeeded", fault)
		}
		ts, err := e.send(to, m)
		if err != nil {
			t.Fatalf("fault %+v: retry: %v", fault, err)
		}
		replies := e.fake.Replies(chSupport, root.TS)
		if len(replies) != 1 || replies[0].TS != ts {
			t.Errorf("fault %+v: thread has %d replies (%+v), want exactly one with ts %s", fault, len(replies), replies, ts)
		}
	}
}

func TestSendAfterRestartFindsEarlierPost(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	m := &connector.Message{ID: 9, Kind: connector.KindText, Text: "posted before the crash", CreatedAt: time.Now()}
	ts, err := e.send(to, m)
	if err != nil {
		t.Fatal(err)
	}
	// A new process (the message is older than it) must not post it again.
	again := build(t, map[string]any{"bot_token": e.fake.BotToken, "app_token": e.fake.AppToken,
		"api_url": e.fake.APIURL(), "channels": []string{chSupport}, "post_interval": "0s"}, e.sink, "")
	if err := again.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer again.Stop(context.Background())
	got, err := again.Send(context.Background(), to, m)
	if err != nil || got != ts {
		t.Errorf("Send after restart = %q, %v; want the earlier ts %s", got, err, ts)
	}
	if n := len(e.fake.Replies(chSupport, root.TS)); n != 1 {
		t.Errorf("thread has %d replies, want 1", n)
	}
}

func TestSendUploadsAgentFile(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone.pdf" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "%PDF-1.4 invoice")
	}))
	defer files.Close()
	e := newEnv(t, true, func(cfg map[string]any) { cfg["fetch_allow"] = []string{"127.0.0.0/8"} }) // the fake is on loopback
	e.start()
	to, root := e.thread("help")
	_, err := e.send(to, &connector.Message{ID: 1, Kind: connector.KindText, Text: "here you go", Agent: "Dee",
		Attachments: []connector.Attachment{{URL: files.URL + "/invoice.pdf", Name: "invoice.pdf"}, {URL: files.URL + "/gone.pdf", Name: "gone.pdf"}}})
	if err != nil {
		t.Fatal(err)
	}
	replies := e.fake.Replies(chSupport, root.TS)
	if len(replies) != 3 {
		t.Fatalf("replies = %+v; want the text, the file and a link", replies)
	}
	if f := replies[1].Files; len(f) != 1 || f[0].Name != "invoice.pdf" || string(f[0].Content) != "%PDF-1.4 invoice" {
		t.Errorf("uploaded %+v", f)
	}
	if want := "<" + files.URL + "/gone.pdf|gone.pdf>"; replies[2].Text != want {
		t.Errorf("link = %q, want %q", replies[2].Text, want)
	}
}

func TestCustomerFileReachesAgentAsLink(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "see attached",
		Files: []slacktest.File{{Name: "error log.txt", Mimetype: "text/plain", Content: []byte("segfault at 0x0")}}})
	in := e.waitInbound(1)[0]
	if len(in.Attachments) != 1 || !strings.HasPrefix(in.Attachments[0].URL, e.web.URL+"/slack/test/files/") {
		t.Fatalf("attachments = %+v, want a link on our public URL", in.Attachments)
	}
	a := in.Attachments[0]
	if a.Name != "error log.txt" || a.ContentType != "text/plain" || a.Size != 15 {
		t.Errorf("attachment = %+v", a)
	}
	resp, err := http.Get(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "segfault at 0x0" {
		t.Errorf("GET link = %d %q", resp.StatusCode, body)
	}
	// A download that cannot run as a page on connectord's origin.
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff",
		"Content-Disposition": `attachment; filename="error log.txt"`} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// A link with a changed signature or file is refused.
	for _, bad := range []string{strings.Replace(a.URL, "sig=", "sig=0", 1), strings.Replace(a.URL, "/files/F", "/files/G", 1)} {
		resp, err := http.Get(bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s = %d, want 403", bad, resp.StatusCode)
		}
	}
}

func TestSplit(t *testing.T) {
	c := &Channel{}
	long := strings.Repeat("word ", 2000) // 10,000 characters
	parts := c.Split(long)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	if strings.TrimSpace(strings.Join(parts, " ")) != strings.TrimSpace(long) {
		t.Errorf("parts do not join back to the text")
	}
	for _, p := range parts {
		if n := len([]rune(p)); n > maxText {
			t.Errorf("part of %d characters", n)
		}
	}
	if got := c.Split("short"); len(got) != 1 || got[0] != "short" {
		t.Errorf("Split(short) = %q", got)
	}
}

// A chat server's campaign message names a Slack customer by user id: it goes
// to the app's DM with them, once, even when the first answer is lost.
func TestSendToUserIDIsADM(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	e.fake.Fail("chat.postMessage", slacktest.Fault{Status: 500, AfterApply: true, Times: 1})
	m := &connector.Message{ID: 5, Kind: connector.KindText, Text: "Our sale starts today"}
	if _, err := e.send(ann, m); err == nil {
		t.Fatal("first attempt succeeded despite the fault")
	}
	if _, err := e.send(ann, m); err != nil {
		t.Fatal(err)
	}
	h := e.fake.History(dmAnn)
	if len(h) != 1 || h[0].Text != "Our sale starts today" {
		t.Errorf("DM history = %+v, want the message once", h)
	}
}

// A message without a creation time (the Channel contract does not promise
// one) is older than the process, so it is looked for before posting; the
// look-up must span the whole thread, not ask Slack for a negative oldest
// ts, which it refuses as invalid_ts_oldest (and the message would fail for
// good).
func TestSendWithoutCreationTime(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	m := &connector.Message{ID: 3, Kind: connector.KindText, Text: "no timestamp"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := e.ch.Send(ctx, to, m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	again, err := e.ch.Send(ctx, to, m)
	if err != nil {
		t.Fatalf("Send again: %v", err)
	}
	if replies := e.fake.Replies(chSupport, root.TS); len(replies) != 1 || first != again || replies[0].TS != first {
		t.Errorf("replies %+v, ts %s then %s; want one post found again", replies, first, again)
	}
}

// An agent's HTML or Markdown line is rendered to mrkdwn before the core
// stores it, and Send posts native text as it is (no second escaping).
func TestRenderNative(t *testing.T) {
	var c Channel
	for _, tc := range []struct {
		text string
		f    connector.Format
		want string
	}{
		{"Hi, I'm <b>Alice</b> &amp; co", connector.FormatHTML, "Hi, I'm *Alice* &amp; co"},
		{"Hi, I'm **Alice**", connector.FormatMarkdown, "Hi, I'm *Alice*"},
	} {
		got, f := c.Render(tc.text, tc.f)
		if got != tc.want || f != connector.FormatNative {
			t.Errorf("Render(%q, %s) = %q, %s; want %q, native", tc.text, tc.f, got, f, tc.want)
		}
		if sent := render(&connector.Message{Text: got, Format: f}); sent != got {
			t.Errorf("native %q sent as %q", got, sent)
		}
	}
}
