package slacktest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

func TestAuthTest(t *testing.T) {
	s := newTestServer(t)
	got, err := client(s).AuthTestContext(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	want := slack.AuthTestResponse{URL: "https://fakeworkspace.slack.com/", Team: "Fake Workspace", User: "fakebot", TeamID: s.TeamID, UserID: s.BotUserID, BotID: s.BotID}
	got.Header = nil
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("auth.test (-want +got):\n%s", diff)
	}
}

func TestAuthErrors(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name, method, token, want string
	}{
		{"wrong token", "chat.postMessage", "xoxb-wrong", "invalid_auth"},
		{"no token", "chat.postMessage", "", "not_authed"},
		{"app token for chat", "chat.postMessage", s.AppToken, "not_allowed_token_type"},
		{"bot token for sockets", "apps.connections.open", s.BotToken, "not_allowed_token_type"},
		{"unknown method", "chat.nope", s.BotToken, "unknown_method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawCall(t, s, tt.method, tt.token, url.Values{"channel": {"C0SUPPORT1"}, "text": {"hi"}})
			if status != http.StatusOK || body["ok"] != false || body["error"] != tt.want {
				t.Errorf("%s answered %d %v, want 200 error %q", tt.method, status, body, tt.want)
			}
		})
	}
	if n := len(s.Calls("")); n != len(tests) {
		t.Errorf("recorded %d calls, want %d (failed calls are recorded)", n, len(tests))
	}
	if h := s.History("C0SUPPORT1"); len(h) != 0 {
		t.Errorf("failed calls posted %v", h)
	}

	// slack-go surfaces the error code.
	_, err := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL())).AuthTestContext(testContext(t))
	if err == nil || err.Error() != "invalid_auth" {
		t.Errorf("slack-go with a wrong token: %v, want invalid_auth", err)
	}
}

func TestPostMessageInThreadWithMetadata(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	root := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "my order is late"})

	md := slack.SlackMetadata{EventType: "ticket_reply", EventPayload: map[string]any{"ticket": "T-42"}}
	ch, ts, err := api.PostMessageContext(ctx, "C0SUPPORT1",
		slack.MsgOptionText("We are on it", false), slack.MsgOptionTS(root.TS), slack.MsgOptionMetadata(md),
		slack.MsgOptionUsername("Support"), slack.MsgOptionIconEmoji(":robot_face:"))
	if err != nil {
		t.Fatal(err)
	}
	if ch != "C0SUPPORT1" || ts <= root.TS {
		t.Errorf("posted to %s at %s, want C0SUPPORT1 after %s", ch, ts, root.TS)
	}

	for _, all := range []bool{true, false} {
		msgs, hasMore, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: "C0SUPPORT1", Timestamp: root.TS, IncludeAllMetadata: all,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || hasMore {
			t.Fatalf("replies: %d messages, has_more %v; want 2, false", len(msgs), hasMore)
		}
		if msgs[0].Timestamp != root.TS || msgs[0].ReplyCount != 1 || msgs[0].Text != "my order is late" {
			t.Errorf("root %+v, want ts %s with reply_count 1", msgs[0].Msg, root.TS)
		}
		reply := msgs[1]
		if reply.ThreadTimestamp != root.TS || reply.User != s.BotUserID || reply.BotID != s.BotID || reply.Username != "Support" || reply.ParentUserId != "U0ALICE001" {
			t.Errorf("reply %+v", reply.Msg)
		}
		wantMD := slack.SlackMetadata{}
		if all {
			wantMD = md
		}
		if diff := cmp.Diff(wantMD, reply.Metadata); diff != "" {
			t.Errorf("include_all_metadata=%v: metadata (-want +got):\n%s", all, diff)
		}
	}

	got := s.Replies("C0SUPPORT1", root.TS)
	want := []Message{{
		Channel: "C0SUPPORT1", TS: ts, ThreadTS: root.TS, User: s.BotUserID, BotID: s.BotID, AppID: s.AppID,
		Username: "Support", IconEmoji: ":robot_face:", Text: "We are on it",
		Metadata: &Metadata{EventType: "ticket_reply", EventPayload: map[string]any{"ticket": "T-42"}},
		EventID:  got[0].EventID,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Replies (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got[0].EventID, "Ev0") || len(got[0].EventID) != 12 {
		t.Errorf("EventID %q, want Ev0 and 9 more", got[0].EventID)
	}
	calls := s.Calls("chat.postMessage")
	if len(calls) != 1 || calls[0].Params["thread_ts"] != root.TS || calls[0].Params["token"] != "" || !strings.Contains(calls[0].Params["metadata"], "T-42") {
		t.Errorf("recorded %+v", calls)
	}
}

func TestPostMessageErrors(t *testing.T) {
	s := newTestServer(t)
	api := client(s)
	tests := []struct {
		name    string
		channel string
		opts    []slack.MsgOption
		want    string
	}{
		{"unknown channel", "C0NOWHERE1", []slack.MsgOption{slack.MsgOptionText("x", false)}, "channel_not_found"},
		{"no channel", "", []slack.MsgOption{slack.MsgOptionText("x", false)}, "channel_not_found"},
		{"no text", "C0SUPPORT1", nil, "no_text"},
		{"bad thread", "C0SUPPORT1", []slack.MsgOption{slack.MsgOptionText("x", false), slack.MsgOptionTS("12.000001")}, "invalid_thread_ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := api.PostMessageContext(testContext(t), tt.channel, tt.opts...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
	// Malformed metadata, sent raw.
	_, body := rawCall(t, s, "chat.postMessage", s.BotToken, url.Values{"channel": {"C0SUPPORT1"}, "text": {"x"}, "metadata": {"{not json"}})
	if body["error"] != "invalid_metadata_format" {
		t.Errorf("bad metadata: %v", body)
	}
}

func TestPostMessageJSONBody(t *testing.T) {
	s := newTestServer(t)
	body := `{"channel":"C0SUPPORT1","text":"hello","metadata":{"event_type":"x","event_payload":{"n":1}},"unfurl_links":false}`
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"chat.postMessage", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.BotToken)
	_, out := doJSON(t, req)
	if out["ok"] != true || out["warning"] != "missing_charset" {
		t.Errorf("answer %v, want ok with warning missing_charset", out)
	}
	got := s.Calls("chat.postMessage")[0].Params
	want := map[string]string{"channel": "C0SUPPORT1", "text": "hello", "metadata": `{"event_type":"x","event_payload":{"n":1}}`, "unfurl_links": "false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Params (-want +got):\n%s", diff)
	}
	if m := s.History("C0SUPPORT1"); len(m) != 1 || m[0].Metadata == nil || m[0].Metadata.EventPayload["n"] != float64(1) {
		t.Errorf("History %+v", m)
	}
}

func TestHistoryOrderAndPaging(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	var posted []string
	for i := range 5 {
		m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: string(rune('a' + i)), Silent: true})
		posted = append(posted, m.TS)
	}
	reply := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", ThreadTS: posted[1], Text: "reply", Silent: true})

	var texts []string
	cursor := ""
	pages := 0
	for {
		resp, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C0SUPPORT1", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range resp.Messages {
			texts = append(texts, m.Text)
			if m.Timestamp == posted[1] && (m.ReplyCount != 1 || m.LatestReply != reply.TS || m.ThreadTimestamp != posted[1]) {
				t.Errorf("thread root %+v lacks its thread summary", m.Msg)
			}
		}
		if !resp.HasMore {
			break
		}
		cursor = resp.ResponseMetaData.NextCursor
	}
	if diff := cmp.Diff([]string{"e", "d", "c", "b", "a"}, texts); diff != "" || pages != 3 {
		t.Errorf("history over %d pages (-want +got):\n%s", pages, diff)
	}

	resp, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C0SUPPORT1", Oldest: posted[1], Latest: posted[3], Inclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 3 {
		t.Errorf("inclusive window: %d messages, want 3", len(resp.Messages))
	}
	resp, err = api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C0SUPPORT1", Oldest: posted[1], Latest: posted[3]})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 1 || resp.Messages[0].Text != "c" {
		t.Errorf("exclusive window: %+v, want just c", resp.Messages)
	}
	if got := s.History("C0SUPPORT1"); len(got) != 5 || got[0].Text != "a" {
		t.Errorf("History oldest first: %+v", got)
	}
}

func TestRepliesPaging(t *testing.T) {
	s := newTestServer(t)
	root := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "root", Silent: true})
	for i := range 5 {
		s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", ThreadTS: root.TS, Text: string(rune('1' + i)), Silent: true})
	}
	var texts []string
	cursor := ""
	for {
		msgs, hasMore, next, err := client(s).GetConversationRepliesContext(testContext(t), &slack.GetConversationRepliesParameters{ChannelID: "C0SUPPORT1", Timestamp: root.TS, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if msgs[0].Timestamp != root.TS {
			t.Fatalf("page does not start with the root: %+v", msgs[0].Msg)
		}
		for _, m := range msgs[1:] {
			texts = append(texts, m.Text)
		}
		if !hasMore {
			break
		}
		cursor = next
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5"}, texts); diff != "" {
		t.Errorf("replies (-want +got):\n%s", diff)
	}
	_, _, _, err := client(s).GetConversationRepliesContext(testContext(t), &slack.GetConversationRepliesParameters{ChannelID: "C0SUPPORT1", Timestamp: "1.000001"})
	if err == nil || err.Error() != "thread_not_found" {
		t.Errorf("unknown thread: %v", err)
	}
}

func TestUpdateAndDelete(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	var notified []Message
	done := make(chan struct{}, 3)
	s.Notify(func(m Message) { notified = append(notified, m); done <- struct{}{} })

	_, ts, err := api.PostMessageContext(ctx, "C0SUPPORT1", slack.MsgOptionText("v1", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0SUPPORT1", ts, slack.MsgOptionText("v2", false)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message("C0SUPPORT1", ts); m.Text != "v2" || !m.Edited {
		t.Errorf("after update: %+v", m)
	}
	user := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "mine", Silent: true})
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0SUPPORT1", user.TS, slack.MsgOptionText("x", false)); err == nil || err.Error() != "cant_update_message" {
		t.Errorf("updating a user's message: %v", err)
	}
	if _, _, err := api.DeleteMessageContext(ctx, "C0SUPPORT1", ts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.DeleteMessageContext(ctx, "C0SUPPORT1", ts); err == nil || err.Error() != "message_not_found" {
		t.Errorf("deleting twice: %v", err)
	}
	if m, found := s.Message("C0SUPPORT1", ts); !found || !m.Deleted {
		t.Errorf("deleted message: %+v, %v", m, found)
	}
	if h := s.History("C0SUPPORT1"); len(h) != 1 || h[0].TS != user.TS {
		t.Errorf("History after delete: %+v", h)
	}
	for range 3 {
		<-done
	}
	var got []string
	for _, m := range notified {
		got = append(got, m.Text+map[bool]string{true: " deleted"}[m.Deleted])
	}
	if diff := cmp.Diff([]string{"v1", "v2", "v2 deleted"}, got); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
}

func TestReactions(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "hi", Silent: true})
	ref := slack.NewRefToMessage("C0SUPPORT1", m.TS)
	steps := []struct {
		add  bool
		name string
		want string // error
	}{
		{true, "eyes", ""},
		{true, "eyes", "already_reacted"},
		{true, "white_check_mark", ""},
		{false, "eyes", ""},
		{false, "eyes", "no_reaction"},
	}
	for _, st := range steps {
		var err error
		if st.add {
			err = api.AddReactionContext(ctx, st.name, ref)
		} else {
			err = api.RemoveReactionContext(ctx, st.name, ref)
		}
		if got := errString(err); got != st.want {
			t.Errorf("add=%v %s: error %q, want %q", st.add, st.name, got, st.want)
		}
	}
	got, _ := s.Message("C0SUPPORT1", m.TS)
	if diff := cmp.Diff([]string{"white_check_mark"}, got.Reactions); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	if err := api.AddReactionContext(ctx, "eyes", slack.NewRefToMessage("C0SUPPORT1", "1.000002")); errString(err) != "message_not_found" {
		t.Errorf("reacting to nothing: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUsersAndConversationsInfo(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	u, err := api.GetUserInfoContext(ctx, "U0ALICE001")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" || u.RealName != "Alice Liddell" || u.Profile.DisplayName != "alice" || u.Profile.Email != "alice@example.com" || u.TeamID != s.TeamID || u.IsBot || u.Profile.Image72 == "" {
		t.Errorf("users.info: %+v", u)
	}
	if bot, err := api.GetUserInfoContext(ctx, s.BotUserID); err != nil || !bot.IsBot || bot.Profile.BotID != s.BotID {
		t.Errorf("the bot: %+v, %v", bot, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0NOBODY01"); errString(err) != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}

	tests := []struct {
		id                    string
		im, shared, isChannel bool
		user, name            string
	}{
		{"C0SUPPORT1", false, false, true, "", "support"},
		{"D0ALICE001", true, false, false, "U0ALICE001", ""},
		{"C0SHARED01", false, true, true, "", "acme-shared"},
	}
	for _, tt := range tests {
		c, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: tt.id})
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != tt.id || c.IsIM != tt.im || c.IsExtShared != tt.shared || c.IsChannel != tt.isChannel || c.User != tt.user || c.Name != tt.name {
			t.Errorf("conversations.info %s: %+v", tt.id, c)
		}
	}
	if _, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C0NOWHERE1"}); errString(err) != "channel_not_found" {
		t.Errorf("unknown channel: %v", err)
	}
}

// conversations.list pages the app's DMs (or channels) in creation order,
// with each one's creation time.
func TestConversationsList(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	opened := time.Unix(1763000000, 0)
	s.AddUser(User{ID: "U0BOB00001", Name: "bob"})
	s.AddChannel(Channel{ID: "D0BOB00001", IM: true, User: "U0BOB00001", Created: opened})
	var ids []string
	var created []time.Time
	cursor, pages := "", 0
	for {
		chs, next, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{Types: []string{"im"}, Limit: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range chs {
			if !c.IsIM {
				t.Errorf("%s listed as an IM: %+v", c.ID, c)
			}
			ids = append(ids, c.ID)
			created = append(created, c.Created.Time())
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if diff := cmp.Diff([]string{"D0ALICE001", "D0BOB00001"}, ids); diff != "" || pages != 2 {
		t.Errorf("IMs in %d pages (-want +got):\n%s", pages, diff)
	}
	if len(created) == 2 && (!created[1].Equal(opened) || time.Since(created[0]) > time.Minute) {
		t.Errorf("created = %v; want when added, and %v as given", created, opened)
	}
	chs, _, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{})
	if err != nil || len(chs) != 2 || chs[0].ID != "C0SUPPORT1" || chs[1].ID != "C0SHARED01" {
		t.Errorf("public channels: %+v, %v", chs, err)
	}
	if _, _, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{Cursor: "bm9wZQ=="}); errString(err) != "invalid_cursor" {
		t.Errorf("a bad cursor: %v", err)
	}
}

func TestUploadFileIntoThread(t *testing.T) {
	s := newTestServer(t)
	ctx := testContext(t)
	api := client(s)
	root := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "send me the invoice", Silent: true})
	content := "invoice #1\n"
	f, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Channel: "C0SUPPORT1", ThreadTimestamp: root.TS, Filename: "invoice.txt", Title: "Invoice",
		Content: content, FileSize: len(content), InitialComment: "here it is",
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.ID == "" || f.Title != "Invoice" {
		t.Errorf("UploadFile returned %+v", f)
	}
	replies := s.Replies("C0SUPPORT1", root.TS)
	if len(replies) != 1 {
		t.Fatalf("replies %+v, want the file message", replies)
	}
	want := Message{
		Channel: "C0SUPPORT1", TS: replies[0].TS, ThreadTS: root.TS, User: s.BotUserID, BotID: s.BotID, AppID: s.AppID,
		Text: "here it is", Subtype: "file_share", EventID: replies[0].EventID,
		Files: []File{{ID: f.ID, Name: "invoice.txt", Mimetype: "text/plain", Content: []byte(content)}},
	}
	if diff := cmp.Diff(want, replies[0]); diff != "" {
		t.Errorf("file message (-want +got):\n%s", diff)
	}

	// The file is downloadable with the bot token, through slack-go.
	msgs, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "C0SUPPORT1", Timestamp: root.TS})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || len(msgs[1].Files) != 1 {
		t.Fatalf("replies lack the file: %+v", msgs)
	}
	var buf bytes.Buffer
	if err := api.GetFileContext(ctx, msgs[1].Files[0].URLPrivateDownload, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != content {
		t.Errorf("downloaded %q, want %q", buf.String(), content)
	}
}

func TestCustomerFileNeedsToken(t *testing.T) {
	s := newTestServer(t)
	m := s.Post(Post{Channel: "D0ALICE001", User: "U0ALICE001", Text: "photo", Silent: true,
		Files: []File{{Name: "cat.png", Content: []byte("\x89PNG fake")}}})
	if m.Subtype != "file_share" || len(m.Files) != 1 || m.Files[0].ID == "" || m.Files[0].Mimetype != "image/png" {
		t.Fatalf("posted %+v", m)
	}
	private, download := s.fileURLs(m.Files[0])
	var buf bytes.Buffer
	if err := client(s).GetFileContext(testContext(t), private, &buf); err != nil || buf.String() != "\x89PNG fake" {
		t.Errorf("with the bot token: %q, %v", buf.String(), err)
	}
	other := slack.New("xoxb-someone-else", slack.OptionAPIURL(s.APIURL()))
	if err := other.GetFileContext(testContext(t), download, &buf); err == nil || !strings.Contains(err.Error(), "sign-in") {
		t.Errorf("with a wrong token: %v, want slack-go's sign-in redirect error", err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(private)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("without a token: %s, want 302", resp.Status)
	}
}

func TestRateLimit(t *testing.T) {
	s := newTestServer(t)
	s.SetRateLimit("chat.postMessage", time.Minute, 1)
	api := client(s)
	ctx := testContext(t)
	if _, _, err := api.PostMessageContext(ctx, "C0SUPPORT1", slack.MsgOptionText("1", false)); err != nil {
		t.Fatal(err)
	}
	// Another channel has its own bucket.
	if _, _, err := api.PostMessageContext(ctx, "D0ALICE001", slack.MsgOptionText("1", false)); err != nil {
		t.Fatal(err)
	}
	_, _, err := api.PostMessageContext(ctx, "C0SUPPORT1", slack.MsgOptionText("2", false))
	var rl *slack.RateLimitedError
	// A second may pass between the calls on a slow machine.
	if !errors.As(err, &rl) || rl.RetryAfter < 58*time.Second || rl.RetryAfter > time.Minute {
		t.Fatalf("over the limit: %v, want a RateLimitedError of 1m", err)
	}
	if len(s.History("C0SUPPORT1")) != 1 {
		t.Errorf("a rate-limited post was stored")
	}
	c := s.Calls("chat.postMessage")
	if last := c[len(c)-1]; last.Status != http.StatusTooManyRequests || last.Error != "ratelimited" {
		t.Errorf("recorded %+v", last)
	}
	s.SetRateLimit("chat.postMessage", 0, 0)
	if _, _, err := api.PostMessageContext(ctx, "C0SUPPORT1", slack.MsgOptionText("3", false)); err != nil {
		t.Errorf("after removing the limit: %v", err)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    Fault
		check    func(t *testing.T, err error)
		stored   int
		timeout  time.Duration
		nextGood bool
	}{
		{
			name:  "429 with Retry-After rounded up",
			fault: Fault{Status: 429, RetryAfter: 1500 * time.Millisecond, Times: 1},
			check: func(t *testing.T, err error) {
				var rl *slack.RateLimitedError
				if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
					t.Errorf("got %v, want RateLimitedError of 2s", err)
				}
			},
			nextGood: true,
		},
		{
			name:  "500",
			fault: Fault{Status: 500, Times: 1},
			check: func(t *testing.T, err error) {
				var sc slack.StatusCodeError
				if !errors.As(err, &sc) || sc.Code != 500 {
					t.Errorf("got %v, want StatusCodeError 500", err)
				}
			},
			nextGood: true,
		},
		{
			name:  "ok false until cleared",
			fault: Fault{Error: "fatal_error"},
			check: func(t *testing.T, err error) {
				if errString(err) != "fatal_error" {
					t.Errorf("got %v", err)
				}
			},
		},
		{
			name:   "after apply",
			fault:  Fault{Status: 503, AfterApply: true, Times: 1},
			check:  func(t *testing.T, err error) { checkErr(t, err) },
			stored: 1, nextGood: true,
		},
		{
			name:    "slow after apply: the client times out, the post exists",
			fault:   Fault{Delay: 2 * time.Second, Times: 1},
			timeout: 100 * time.Millisecond,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want a deadline", err)
				}
			},
			stored: 1, nextGood: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			s.Fail("chat.postMessage", tt.fault)
			ctx := testContext(t)
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, _, err := client(s).PostMessageContext(ctx, "C0SUPPORT1", slack.MsgOptionText("hello", false))
			tt.check(t, err)
			if tt.timeout > 0 {
				waitFor(t, s, "the slow call to end", func() bool { return len(s.Calls("chat.postMessage")) == 1 })
			}
			if n := len(s.History("C0SUPPORT1")); n != tt.stored {
				t.Errorf("stored %d messages, want %d", n, tt.stored)
			}
			_, _, err = client(s).PostMessageContext(testContext(t), "C0SUPPORT1", slack.MsgOptionText("again", false))
			if (err == nil) != tt.nextGood {
				t.Errorf("next call: %v, want success %v", err, tt.nextGood)
			}
			s.ClearFaults()
			if _, _, err := client(s).PostMessageContext(testContext(t), "C0SUPPORT1", slack.MsgOptionText("cleared", false)); err != nil {
				t.Errorf("after ClearFaults: %v", err)
			}
		})
	}
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Error("got success, want an error")
	}
}

func TestMalformedRequests(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name, contentType, body, want string
	}{
		{"bad json", "application/json; charset=utf-8", "{", "invalid_json"},
		{"json array", "application/json; charset=utf-8", "[1]", "invalid_json"},
		{"bad limit", "application/x-www-form-urlencoded", "channel=C0SUPPORT1&limit=many", "invalid_limit"},
		{"bad cursor", "application/x-www-form-urlencoded", "channel=C0SUPPORT1&cursor=bm9wZQ==", "invalid_cursor"},
		{"too big", "application/x-www-form-urlencoded", "channel=" + strings.Repeat("x", 2<<20), "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"conversations.history", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			req.Header.Set("Authorization", "Bearer "+s.BotToken)
			status, out := doJSON(t, req)
			if status != 200 || out["error"] != tt.want {
				t.Errorf("answered %d %v, want %s", status, out, tt.want)
			}
		})
	}
}
