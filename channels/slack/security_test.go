package slack

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

// listener records every request's Authorization header: a host outside
// Slack that an event can name.
type listener struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
	hits  int
}

func newListener(t *testing.T, body string) *listener {
	l := &listener{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.hits++
		if a := r.Header.Get("Authorization"); a != "" {
			l.auths = append(l.auths, a)
		}
		l.mu.Unlock()
		io.WriteString(w, body)
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *listener) seen() (hits int, auths []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits, append([]string(nil), l.auths...)
}

// signedFileEvent is an Events API body: a customer message sharing files.
func signedFileEvent(ts string, files string) string {
	return `{"type":"event_callback","event_id":"Ev` + strings.ReplaceAll(ts, ".", "") + `","event":{"type":"message","channel":"` +
		chSupport + `","user":"` + ann + `","text":"see attached","ts":"` + ts + `","files":[` + files + `]}}`
}

// The bot token goes only to Slack's file hosts: a file an event names on
// another host (an external file, or any url_private elsewhere) reaches the
// agent as its own URL, and opening it never sends the token; nor does a
// signed link made for such a host (one signed before an upgrade).
func TestBotTokenNeverLeavesSlack(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	l := newListener(t, "gotcha")
	ts := tsOf(time.Now())
	files := `{"id":"F0EXT00001","name":"remote.pdf","is_external":true,"external_type":"gdrive","url_private":"` + l.URL + `/ext/remote.pdf"},` +
		`{"id":"F0EXT00002","name":"plain.pdf","url_private":"` + l.URL + `/pri/plain.pdf","url_private_download":"` + l.URL + `/pri/download/plain.pdf"}`
	if got := e.postSigned(signedFileEvent(ts, files), e.fake.SigningSecret, time.Now()); got != http.StatusOK {
		t.Fatalf("signed event: status %d", got)
	}
	in := e.waitInbound(1)[0]
	want := []string{l.URL + "/ext/remote.pdf", l.URL + "/pri/download/plain.pdf"}
	if len(in.Attachments) != 2 {
		t.Fatalf("attachments = %+v, want both files", in.Attachments)
	}
	for i, a := range in.Attachments {
		if a.URL != want[i] {
			t.Errorf("attachment %d = %q, want the file's own URL %q (not our proxy)", i, a.URL, want[i])
		}
		resp, err := http.Get(a.URL) // the agent opens it
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A link signed for the listener, as an older version made them.
	forged := e.ch.links.url(e.web.URL+"/slack/test", "F0EXT00002", "plain.pdf", l.URL+"/pri/plain.pdf", time.Now())
	resp, err := http.Get(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("link to a non-Slack host: %d, want 403", resp.StatusCode)
	}
	hits, auths := l.seen()
	if len(auths) != 0 {
		t.Fatalf("the listener received Authorization %q", auths)
	}
	if hits != 2 {
		t.Errorf("the listener saw %d requests, want the agent's 2", hits)
	}
}

// observe replaces the channel's logger by one that records (and still
// writes through the test's).
func (e *env) observe() *observer.ObservedLogs {
	core, logs := observer.New(zapcore.DebugLevel)
	e.ch.log = zap.New(zapcore.NewTee(e.ch.log.Core(), core))
	return logs
}

// An agent's attachment on an internal address is not fetched (it is posted
// as a link), and the log names it without its query; with fetch_allow
// covering the address it is fetched and uploaded.
func TestAgentAttachmentInternalAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allow   []string
		fetched bool
	}{{"refused by default", nil, false}, {"allowed by fetch_allow", []string{"127.0.0.0/8"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newListener(t, "# HELP internal_secret 1")
			e := newEnv(t, true, func(cfg map[string]any) {
				if tc.allow != nil {
					cfg["fetch_allow"] = tc.allow
				}
			})
			logs := e.observe()
			e.start()
			to, root := e.thread("help")
			att := connector.Attachment{URL: l.URL + "/metrics?token=s3cret", Name: "metrics.txt"}
			if _, err := e.send(to, &connector.Message{ID: 1, Kind: connector.KindText, Text: "look", Agent: "Dee",
				Attachments: []connector.Attachment{att}}); err != nil {
				t.Fatal(err)
			}
			replies := e.fake.Replies(chSupport, root.TS)
			if len(replies) != 2 {
				t.Fatalf("replies = %+v, want the text and the attachment", replies)
			}
			hits, _ := l.seen()
			if tc.fetched {
				if f := replies[1].Files; hits != 1 || len(f) != 1 || string(f[0].Content) != "# HELP internal_secret 1" {
					t.Errorf("hits %d, uploaded %+v; want the file fetched and uploaded", hits, f)
				}
				return
			}
			if hits != 0 {
				t.Errorf("the internal server was fetched %d times", hits)
			}
			if want := "<" + att.URL + "|metrics.txt>"; replies[1].Text != want || len(replies[1].Files) != 0 {
				t.Errorf("reply = %q %+v, want the link %q", replies[1].Text, replies[1].Files, want)
			}
			refused := logs.FilterMessageSnippet("posting its link").All()
			if len(refused) != 1 {
				t.Fatalf("logged %d refusals, want 1", len(refused))
			}
			for _, entry := range logs.All() {
				line := entry.Message + fmt.Sprint(entry.ContextMap())
				if strings.Contains(line, "s3cret") {
					t.Errorf("log line carries the URL's query: %s", line)
				}
			}
			if msg := fmt.Sprint(refused[0].ContextMap()); !strings.Contains(msg, "loopback") {
				t.Errorf("refusal logged as %s, want it to say why", msg)
			}
		})
	}
}

// A Slack file whose download is cut short is not answered as a shorter
// file: the answer is aborted and the client sees an error.
func TestFileLinkTruncatedDownloadAborts(t *testing.T) {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	go func() {
		for {
			conn, err := upstream.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				http.ReadRequest(bufio.NewReader(conn))
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nonly the first part")
			}()
		}
	}()
	origin := "http://" + upstream.Addr().String()
	e := newEnv(t, true, func(cfg map[string]any) { cfg["file_hosts"] = []string{origin} })
	logs := e.observe()
	e.start()
	link := e.ch.links.url(e.web.URL+"/slack/test", "F0CUT00001", "log.txt", origin+"/files-pri/T-F0CUT00001/log.txt", time.Now())
	// The part read may still sit in connectord's buffer when it aborts:
	// the error then comes before the headers, else while reading the body.
	resp, err := http.Get(link)
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("GET link = %d, %d bytes, no error; want the cut-short download to fail", resp.StatusCode, len(body))
		}
	}
	if n := logs.FilterMessageSnippet("cut short").Len(); n != 1 {
		t.Errorf("logged %d cut-short downloads, want 1", n)
	}
}

// An Events API body over the daemon's own limit is 413, not 400.
func TestEventsAPIBodyOverLimitIs413(t *testing.T) {
	e := newEnv(t, false, nil)
	h := http.MaxBytesHandler(http.HandlerFunc(e.ch.serveEvents), 1024)
	for _, size := range []int{2048, maxEventBody + 10} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/slack/test/events", strings.NewReader(strings.Repeat("x", size))))
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%d-byte body: %d, want 413", size, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	e.ch.serveEvents(rec, httptest.NewRequest(http.MethodPost, "/slack/test/events", strings.NewReader(strings.Repeat("x", maxEventBody+1))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over maxEventBody: %d, want 413", rec.Code)
	}
}

// A panic while committing an event answers 500 (Slack retries) and the
// daemon goes on; the retry commits.
func TestEventsAPIPanicAnswers500(t *testing.T) {
	e := newEnv(t, false, nil)
	logs := e.observe()
	e.start()
	e.sink.mu.Lock()
	e.sink.panics = 1
	e.sink.mu.Unlock()
	ts := tsOf(time.Now())
	body := signedFileEvent(ts, "")
	if got := e.postSigned(body, e.fake.SigningSecret, time.Now()); got != http.StatusInternalServerError {
		t.Errorf("panicking commit: status %d, want 500", got)
	}
	if got := e.postSigned(body, e.fake.SigningSecret, time.Now()); got != http.StatusOK {
		t.Errorf("the retry: status %d, want 200", got)
	}
	if got := e.sink.inbound(); len(got) != 1 || got[0].SourceID != chSupport+"/"+ts {
		t.Errorf("inbound = %+v", got)
	}
	assertPanicLogged(t, logs)
}

// A panic in a Socket Mode lane leaves the envelope unacked; Slack
// redelivers it, and the redelivery commits and is acked.
func TestSocketModePanicLeavesEnvelopeUnacked(t *testing.T) {
	e := newEnv(t, true, nil)
	logs := e.observe()
	e.start()
	e.sink.mu.Lock()
	e.sink.panics = 1
	e.sink.mu.Unlock()
	msg := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "first"})
	got := e.waitInbound(1)
	if got[0].SourceID != chSupport+"/"+msg.TS {
		t.Errorf("inbound = %+v", got)
	}
	e.waitFor("the redelivery's ack", func() bool { return ackedEvents(e.fake, msg.EventID) == 1 })
	e.sink.mu.Lock()
	calls := e.sink.calls
	e.sink.mu.Unlock()
	if calls != 2 {
		t.Errorf("%d commits, want the panicking one and the redelivery's", calls)
	}
	// The lane goes on: a later message of the same thread commits.
	e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: msg.TS, Text: "second"})
	e.waitInbound(2)
	assertPanicLogged(t, logs)
}

func assertPanicLogged(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	panics := logs.FilterMessageSnippet("panic recovered").All()
	if len(panics) != 1 {
		t.Fatalf("logged %d panics, want 1", len(panics))
	}
	stack, _ := panics[0].ContextMap()["stack"].(string)
	if !strings.Contains(stack, "fakeSink") {
		t.Errorf("stack logged = %q, want the panicking frames", stack)
	}
}

// Health and Web API failures never show a URL's userinfo or query.
func TestHealthRedactsURLs(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close() // nothing listens there now
	e := newEnv(t, false, func(cfg map[string]any) { cfg["api_url"] = "http://user:hunter2@" + addr + "/api/" })
	if err := e.ch.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ch.Stop(t.Context()) })
	e.waitFor("a failure in Health", func() bool { return strings.Contains(e.ch.Health().Detail, "auth.test has not answered: ") })
	if d := e.ch.Health().Detail; strings.Contains(d, "hunter2") || !strings.Contains(d, addr) {
		t.Errorf("Health = %q, want the host without the password", d)
	}
}

// A Socket Mode URL carries a one-time ticket in its query: a failed dial
// shows the host in Health and the log, never the ticket.
func TestSocketHealthHidesTicket(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/auth.test":
			fmt.Fprint(w, `{"ok":true,"user_id":"U0BOT","bot_id":"B0BOT","team_id":"T0TEAM"}`)
		case "/api/apps.connections.open":
			fmt.Fprintf(w, `{"ok":true,"url":"ws://%s/link/?ticket=abc123&app_id=A1"}`, addr)
		default:
			fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
		}
	}))
	t.Cleanup(slackAPI.Close)
	e := newEnv(t, true, func(cfg map[string]any) { cfg["api_url"] = slackAPI.URL + "/api/" })
	logs := e.observe()
	if err := e.ch.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ch.Stop(t.Context()) })
	e.waitFor("the dial failure in Health", func() bool { return strings.Contains(e.ch.Health().Detail, "dial socket") })
	if d := e.ch.Health().Detail; strings.Contains(d, "abc123") || !strings.Contains(d, addr+"/link/") {
		t.Errorf("socket Health = %q, want the URL without its ticket", d)
	}
	e.waitFor("the failure logged", func() bool { return logs.FilterMessageSnippet("reconnecting").Len() > 0 })
	for _, entry := range logs.All() {
		for k, v := range entry.ContextMap() {
			if s := fmt.Sprint(v); strings.Contains(s, "abc123") {
				t.Errorf("log %q: %s = %q, want no ticket", entry.Message, k, s)
			}
		}
	}
}
