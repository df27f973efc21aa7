package slacktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// received is an Events API request as the app saw it.
type received struct {
	retryNum, retryReason string
	verifyErr             error
	body                  []byte
}

// eventsApp is an httptest app that verifies signatures and answers the
// statuses it is given in turn (200 once they run out).
type eventsApp struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []received
}

func newEventsApp(t *testing.T, s *Server, statuses ...int) *eventsApp {
	t.Helper()
	a := &eventsApp{statuses: statuses}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{retryNum: r.Header.Get("X-Slack-Retry-Num"), retryReason: r.Header.Get("X-Slack-Retry-Reason"), body: body}
		sv, err := slack.NewSecretsVerifier(r.Header, s.SigningSecret)
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		rec.verifyErr = err
		a.mu.Lock()
		a.got = append(a.got, rec)
		status := http.StatusOK
		if len(a.statuses) > 0 {
			status, a.statuses = a.statuses[0], a.statuses[1:]
		}
		a.mu.Unlock()
		var ev map[string]any
		if json.Unmarshal(body, &ev) == nil && ev["type"] == "url_verification" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"challenge": ev["challenge"]})
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(a.srv.Close)
	s.SetEventsURL(a.srv.URL)
	return a
}

func (a *eventsApp) requests() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]received(nil), a.got...)
}

func TestEventsAPIRetriesOn500(t *testing.T) {
	s := newTestServer(t)
	app := newEventsApp(t, s, 500, 500)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "hi"})
	waitFor(t, s, "three attempts", func() bool { return len(s.Deliveries()) == 3 })

	var got []Delivery
	for _, d := range s.Deliveries() {
		d.Elapsed = 0
		got = append(got, d)
	}
	want := []Delivery{{EventID: m.EventID, Attempt: 0, Status: 500}, {EventID: m.EventID, Attempt: 1, Status: 500}, {EventID: m.EventID, Attempt: 2, Status: 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deliveries (-want +got):\n%s", diff)
	}
	reqs := app.requests()
	var headers [][2]string
	for _, r := range reqs {
		if r.verifyErr != nil {
			t.Errorf("signature: %v", r.verifyErr)
		}
		headers = append(headers, [2]string{r.retryNum, r.retryReason})
	}
	if diff := cmp.Diff([][2]string{{"", ""}, {"1", "http_error"}, {"2", "http_error"}}, headers); diff != "" {
		t.Errorf("retry headers (-want +got):\n%s", diff)
	}
	ev, err := slackevents.ParseEvent(reqs[0].body, slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	cb, isCB := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if ev.Type != slackevents.CallbackEvent || !isCB || cb.EventID != m.EventID {
		t.Errorf("parsed %+v", ev)
	}
	var raw map[string]any
	_ = json.Unmarshal(reqs[0].body, &raw)
	auths, _ := raw["authorizations"].([]any)
	if len(auths) != 1 || auths[0].(map[string]any)["user_id"] != s.BotUserID || auths[0].(map[string]any)["is_bot"] != true {
		t.Errorf("authorizations %v", raw["authorizations"])
	}
}

func TestEventsAPIDeliveriesOnPurpose(t *testing.T) {
	s := newTestServer(t)
	app := newEventsApp(t, s)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "again and again", Deliveries: 3})
	waitFor(t, s, "three deliveries", func() bool { return len(s.Deliveries()) == 3 })
	var nums []string
	for _, r := range app.requests() {
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(r.body, &ev)
		if ev.EventID != m.EventID {
			t.Errorf("event_id %s, want %s", ev.EventID, m.EventID)
		}
		nums = append(nums, r.retryNum)
	}
	if diff := cmp.Diff([]string{"", "1", "2"}, nums); diff != "" {
		t.Errorf("X-Slack-Retry-Num (-want +got):\n%s", diff)
	}
}

func TestEventsAPISilentAndGivingUp(t *testing.T) {
	s := newTestServer(t)
	newEventsApp(t, s, 500, 500, 500, 500, 500)
	s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "quiet", Silent: true})
	s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "failing"})
	waitFor(t, s, "four attempts", func() bool { return len(s.Deliveries()) == 4 })
	last := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "next"})
	waitFor(t, s, "the next event", func() bool { return len(s.Deliveries()) == 5 })
	if d := s.Deliveries(); d[4].EventID != last.EventID || d[3].Attempt != 3 {
		t.Errorf("deliveries %+v", d)
	}
}

func TestVerifyURL(t *testing.T) {
	s := newTestServer(t)
	newEventsApp(t, s)
	if err := s.VerifyURL(testContext(t)); err != nil {
		t.Errorf("VerifyURL: %v", err)
	}
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "not the challenge")
	}))
	defer wrong.Close()
	s.SetEventsURL(wrong.URL)
	if err := s.VerifyURL(testContext(t)); err == nil {
		t.Error("VerifyURL accepted a wrong echo")
	}
}
