package xima

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// restRecorder is an httptest server that records every request and
// answers what answer says.
type restRecorder struct {
	mu     sync.Mutex
	reqs   []recorded
	answer func(w http.ResponseWriter, r *http.Request)
}

type recorded struct {
	Method, Path, Query, Cookie string
	Body                        []byte
}

func newRecorder(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*restRecorder, *api) {
	rec := &restRecorder{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Cookie"), b})
		rec.mu.Unlock()
		rec.answer(w, r)
	}))
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	return rec, &api{base: base, installationID: "inst-1", client: srv.Client(), timeout: 5 * time.Second, now: time.Now}
}

func (r *restRecorder) last() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

const docChat = "9c108bb3-8924-4234-a53c-be9ab284d4e3"

// The bodies of the REST calls, as the document shows them; /chat/end has
// none and carries the cookie.
func TestRESTBodiesGolden(t *testing.T) {
	rec, a := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "s1"})
		w.WriteHeader(http.StatusNoContent)
	})
	ctx := context.Background()
	j := newJar(nil)
	if err := a.say(ctx, docChat, "I have a question about model no. 24601.", j); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "req-chat.json", rec.last().Body)
	if err := a.stillHere(ctx, docChat, j); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); got.Path != "/chat/still-here" || got.Cookie != "JSESSIONID=s1" {
		t.Errorf("still-here %+v", got)
	}
	sameJSON(t, "req-still-here.json", rec.last().Body)
	if err := a.rejectScreenshot(ctx, docChat, j); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "req-screenshot-notify.json", rec.last().Body)
	if err := a.end(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); got.Method != http.MethodPost || got.Path != "/chat/end" || len(got.Body) != 0 || got.Cookie != "JSESSIONID=s1" {
		t.Errorf("end %+v", got)
	}
	if _, err := a.credentials(ctx); err == nil {
		t.Error("credentials from an empty answer")
	}
	if got := rec.last(); got.Path != "/chat/queue/auth" || got.Query != "installation-id=inst-1" {
		t.Errorf("auth %+v", got)
	}
}

func TestCheckChat(t *testing.T) {
	status := http.StatusNoContent
	_, a := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("existingChatSessionId") != docChat {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, `{"sessionDetails":{"id":"`+docChat+`","serverToClientQueue":{"url":"https://sqs.us-east-1.amazonaws.com/1/q2"}}}`)
		}
	})
	_, gone, err := a.checkChat(context.Background(), docChat, nil)
	if err != nil || !gone {
		t.Errorf("204: gone %v, err %v", gone, err)
	}
	status = http.StatusOK
	cs, gone, err := a.checkChat(context.Background(), docChat, nil)
	if err != nil || gone || cs.Queue != "https://sqs.us-east-1.amazonaws.com/1/q2" {
		t.Errorf("200: %+v gone %v, err %v", cs, gone, err)
	}
}

// Errors are classified: a request that can never work is Permanent, the
// rest retried, 429 and 503 with Retry-After honoured; no secret or HTML
// page in the message.
func TestRESTErrorClasses(t *testing.T) {
	var status int
	var retryAfter, body string
	_, a := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	for _, tc := range []struct {
		status    int
		after     string
		body      string
		permanent bool
		delay     time.Duration
	}{
		{400, "", `{"message":"bad skill"}`, true, 0},
		{401, "", "", true, 0},
		{403, "", "<html><body>Forbidden</body></html>", true, 0},
		{404, "", "", true, 0},
		{409, "", "", false, 0},
		{429, "7", "", false, 7 * time.Second},
		{500, "", "oops", false, 0},
		{503, "120", "", false, 2 * time.Minute},
		{503, "", "", false, 0},
	} {
		status, retryAfter, body = tc.status, tc.after, tc.body
		_, err := a.startChat(context.Background(), chatSessionRequest{APIKey: testKey}, nil)
		if err == nil {
			t.Fatalf("%d: no error", tc.status)
		}
		if connector.IsPermanent(err) != tc.permanent {
			t.Errorf("%d: permanent %v, want %v (%v)", tc.status, connector.IsPermanent(err), tc.permanent, err)
		}
		d, ok := connector.RetryDelay(err)
		if ok != (tc.delay > 0) || d != tc.delay {
			t.Errorf("%d: retry after %v %v, want %v", tc.status, d, ok, tc.delay)
		}
		if statusOf(err) != tc.status {
			t.Errorf("%d: statusOf %d", tc.status, statusOf(err))
		}
		if strings.Contains(err.Error(), "<html") || strings.Contains(err.Error(), testKey) {
			t.Errorf("%d: %v", tc.status, err)
		}
	}
	status, retryAfter, body = 200, "", `{"sessionDetails":{"id":"x"}}`
	if _, err := a.startChat(context.Background(), chatSessionRequest{}, nil); !errors.Is(err, errMalformed) {
		t.Errorf("a ChatSession with no queue: %v", err)
	}
	status, body = 200, strings.Repeat("x", maxResponse+1)
	if _, err := a.startChat(context.Background(), chatSessionRequest{}, nil); err == nil || connector.IsPermanent(err) {
		t.Errorf("an answer over the bound: %v", err)
	}
}

// An unreachable server is retried, not Permanent.
func TestRESTUnreachable(t *testing.T) {
	_, a := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {})
	a.base, _ = url.Parse("http://127.0.0.1:1")
	_, err := a.startChat(context.Background(), chatSessionRequest{}, nil)
	if err == nil || connector.IsPermanent(err) || statusOf(err) != 0 {
		t.Errorf("unreachable: %v", err)
	}
}

func TestJar(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	j := newJar(nil)
	resp := func(cookies ...*http.Cookie) *http.Response {
		h := http.Header{}
		for _, c := range cookies {
			h.Add("Set-Cookie", c.String())
		}
		return &http.Response{Header: h}
	}
	j.take(resp(&http.Cookie{Name: "JSESSIONID", Value: "a"}, &http.Cookie{Name: "AWSALB", Value: "lb1"}), now)
	if !j.changed() {
		t.Error("new cookies not worth storing")
	}
	j.snapshot()
	j.take(resp(&http.Cookie{Name: "AWSALB", Value: "lb2"}), now)
	if j.changed() {
		t.Error("a stickiness cookie's new value stored at once")
	}
	j.take(resp(&http.Cookie{Name: "JSESSIONID", Value: "b"}), now)
	if !j.changed() {
		t.Error("a new session cookie not stored at once")
	}
	j.take(resp(&http.Cookie{Name: "tmp", Value: "x", MaxAge: 60}), now)
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	j.add(req, now.Add(2*time.Minute))
	if got := req.Header.Get("Cookie"); got != "JSESSIONID=b; AWSALB=lb2" {
		t.Errorf("cookie header %q", got)
	}
	j.take(resp(&http.Cookie{Name: "JSESSIONID", Value: "", MaxAge: -1}), now)
	st := j.snapshot()
	if len(st) != 2 || st[0].Name != "AWSALB" {
		t.Errorf("after delete: %+v", st)
	}
	for i := range maxCookies + 5 {
		j.take(resp(&http.Cookie{Name: "c" + string(rune('a'+i)), Value: "v"}), now)
	}
	if n := len(j.snapshot()); n != maxCookies {
		t.Errorf("%d cookies kept, bound %d", n, maxCookies)
	}
	j2 := newJar([]cookie{{Name: "", Value: "x"}, {Name: "ok", Value: strings.Repeat("v", maxCookieBytes)}, {Name: "a b", Value: "x"}, {Name: "k", Value: "v"}})
	if got := j2.snapshot(); len(got) != 1 || got[0].Name != "k" {
		t.Errorf("stored cookies not checked: %+v", got)
	}
}

// SQS answers are cut at their bound: a body of exactly the bound reads
// whole, one byte more is an error.
func TestBoundedBody(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{{0, true}, {100, true}, {101, false}, {5000, false}} {
		b := &boundedBody{rc: io.NopCloser(strings.NewReader(strings.Repeat("x", tc.size))), left: 100}
		got, err := io.ReadAll(b)
		if (err == nil) != tc.ok || (tc.ok && len(got) != tc.size) {
			t.Errorf("%d bytes: read %d, err %v", tc.size, len(got), err)
		}
		if !tc.ok && !errors.Is(err, errAnswerTooLarge) {
			t.Errorf("%d bytes: %v", tc.size, err)
		}
	}
}

// A redirect is not followed (the API key is in the body): it is an error,
// and nothing goes where it points.
func TestRESTNoRedirect(t *testing.T) {
	rec, a := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	v, err := Build(connector.VendorEnv{Instance: instance(validKeys())})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	a.client = v.restHTTP
	if _, err := a.startChat(context.Background(), chatSessionRequest{APIKey: testKey}, nil); statusOf(err) != http.StatusTemporaryRedirect {
		t.Errorf("redirect: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) != 1 || rec.reqs[0].Path != "/chat/apiqueue" {
		t.Errorf("%d requests: %+v", len(rec.reqs), rec.reqs)
	}
}
