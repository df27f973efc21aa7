package ximatest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

func TestAPIQueue(t *testing.T) {
	s := NewServer(t, Config{})
	c := httpClient(t, newJar(t))
	req := map[string]any{"installationId": DefaultInstallationID, "email": "a@example.com",
		"name": "Ann", "skill": "Sales", "apiKey": "wrong"}
	if status, _, _ := call(t, c, "POST", s.URL()+"/chat/apiqueue", req); status != http.StatusUnauthorized {
		t.Errorf("wrong API key: %d, want 401", status)
	}
	req["apiKey"], req["installationId"] = DefaultAPIKey, "other"
	if status, _, _ := call(t, c, "POST", s.URL()+"/chat/apiqueue", req); status != http.StatusNotFound {
		t.Errorf("wrong installation: %d, want 404", status)
	}
	req["installationId"] = DefaultInstallationID
	req["customChatInfo"] = []map[string]string{{"name": "Phone", "value": "+15550100"}}
	status, b, h := call(t, c, "POST", s.URL()+"/chat/apiqueue", req)
	if status != http.StatusOK {
		t.Fatalf("apiqueue: %d %s", status, b)
	}
	if !strings.HasPrefix(h.Get("Set-Cookie"), SessionCookie+"=") {
		t.Errorf("Set-Cookie = %q, want a %s", h.Get("Set-Cookie"), SessionCookie)
	}
	var cs map[string]map[string]any
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	d := cs["sessionDetails"]
	for _, k := range []string{"serverToClientQueue", "clientToServerQueue", "id", "installationId",
		"email", "name", "agent", "agentImage", "skill", "created"} {
		if _, ok := d[k]; !ok {
			t.Errorf("sessionDetails has no %q: %s", k, b)
		}
	}
	if d["agent"] != nil || d["agentImage"] != nil {
		t.Errorf("agent before CHAT_STARTED = %v, %v; want null", d["agent"], d["agentImage"])
	}
	s2c := d["serverToClientQueue"].(map[string]any)
	c2s := d["clientToServerQueue"].(map[string]any)
	if s2c["chatQueueType"] != "SERVERTOCLIENT" || c2s["chatQueueType"] != "CLIENTTOSERVER" ||
		!strings.HasPrefix(s2c["url"].(string), s.SQSEndpoint()+"/"+Account+"/mm-queue-") ||
		!strings.HasPrefix(s2c["arn"].(string), "arn:aws:sqs:"+DefaultRegion+":"+Account+":mm-queue-") ||
		!strings.HasPrefix(s2c["lastUsed"].(string), " ") {
		t.Errorf("queues = %v / %v", s2c, c2s)
	}
	if _, err := time.Parse(timeFormat, d["created"].(string)); err != nil {
		t.Errorf("created: %v", err)
	}
	chats := s.Chats()
	if len(chats) != 1 {
		t.Fatalf("%d chats", len(chats))
	}
	got := chats[0]
	if got.ID != d["id"] || got.Email != "a@example.com" || got.Name != "Ann" || got.Skill != "Sales" ||
		got.QueueURL != s2c["url"] || len(got.Cookies) != 1 ||
		!cmp.Equal(got.CustomChatInfo, []ChatInfo{{"Phone", "+15550100"}}) {
		t.Errorf("Chat = %+v", got)
	}
}

func TestCaptchaQueueRefused(t *testing.T) {
	s := NewServer(t, Config{})
	status, _, _ := call(t, httpClient(t, nil), "POST", s.URL()+"/chat/queue", map[string]string{
		"installationId": DefaultInstallationID, "recaptchaToken": "x"})
	if status != http.StatusForbidden || len(s.Chats()) != 0 {
		t.Errorf("POST /chat/queue: %d with %d chats, want 403 and none", status, len(s.Chats()))
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/chat/queue" || reqs[0].Status != http.StatusForbidden {
		t.Errorf("Requests = %+v", reqs)
	}
}

func TestChatCalls(t *testing.T) {
	s := NewServer(t, Config{})
	c := httpClient(t, newJar(t))
	id, _ := startChat(t, s, c)
	post := func(path string, v any) int {
		status, _, _ := call(t, c, "POST", s.URL()+path, v)
		return status
	}
	checks := []struct {
		path string
		body any
		want int
	}{
		{"/chat", map[string]string{"chatSessionId": id, "message": "I have a question."}, 200},
		{"/chat", map[string]string{"chatSessionId": id, "message": "About model 24601."}, 200},
		{"/chat", map[string]string{"chatSessionId": "nope", "message": "x"}, 404},
		{"/chat", map[string]any{"chatSessionId": id}, 400},
		{"/chat/typing", map[string]string{"chatSessionId": id, "typing": "true"}, 204},
		{"/chat/typing", map[string]any{"chatSessionId": id, "typing": false}, 400}, // a JSON boolean, not the document's string
		{"/chat/typing", map[string]string{"chatSessionId": id, "typing": "False"}, 204},
		{"/chat/focus", map[string]string{"chatSessionId": id, "focused": "true"}, 204},
		{"/chat/still-here", map[string]string{"chatSessionId": id}, 200},
		{"/screenshot/notify", map[string]string{"chatSessionId": id, "status": "REJECTED"}, 204},
		{"/screenshot/notify", map[string]string{"chatSessionId": id, "status": "ACCEPTED"}, 400},
		{"/screenshot/notify", map[string]string{"chatSessionId": id, "status": "MAYBE"}, 400},
		{"/chat/nonsense", map[string]string{"chatSessionId": id}, 404},
	}
	for _, ch := range checks {
		if got := post(ch.path, ch.body); got != ch.want {
			t.Errorf("POST %s %v: %d, want %d", ch.path, ch.body, got, ch.want)
		}
	}
	got, _ := s.Chat(id)
	if diff := cmp.Diff([]string{"I have a question.", "About model 24601."}, got.Lines); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"true", "False"}, got.Typing); diff != "" {
		t.Errorf("Typing (-want +got):\n%s", diff)
	}
	if got.Focused != 1 || got.StillHere != 1 || !cmp.Equal(got.Screenshots, []ScreenshotReply{{Status: "REJECTED"}}) {
		t.Errorf("Chat = %+v", got)
	}
	reqs := s.Requests()
	if len(reqs) != 1+len(checks) {
		t.Fatalf("%d requests recorded, want %d", len(reqs), 1+len(checks))
	}
	for i, ch := range checks {
		if r := reqs[i+1]; r.Path != ch.path || r.Status != ch.want || r.Method != "POST" || len(r.Body) == 0 {
			t.Errorf("request %d recorded as %s %s %d", i+1, r.Method, r.Path, r.Status)
		}
	}
}

func TestEndNeedsTheSessionCookie(t *testing.T) {
	s := NewServer(t, Config{})
	jar := newJar(t)
	id, _ := startChat(t, s, httpClient(t, jar))
	if status, _, _ := call(t, httpClient(t, nil), "POST", s.URL()+"/chat/end", nil); status != http.StatusBadRequest {
		t.Errorf("end without cookie: %d, want 400", status)
	}
	if got, _ := s.Chat(id); got.Ended != "" {
		t.Fatalf("ended without the cookie: %q", got.Ended)
	}
	if status, _, _ := call(t, httpClient(t, jar), "POST", s.URL()+"/chat/end", nil); status != http.StatusNoContent {
		t.Errorf("end with cookie: %d, want 204", status)
	}
	if got, _ := s.Chat(id); got.Ended != EndedByCustomer || got.Gone {
		t.Errorf("after /chat/end: ended %q gone %v", got.Ended, got.Gone)
	}
	// An ended chat refuses lines; its queue still answers (the agent side
	// may still write to it).
	if status, _, _ := call(t, httpClient(t, jar), "POST", s.URL()+"/chat",
		map[string]string{"chatSessionId": id, "message": "x"}); status != http.StatusNotFound {
		t.Errorf("line after end: %d, want 404", status)
	}
	if err := s.Say(id, "late"); err != nil {
		t.Errorf("agent line after the customer ended: %v", err)
	}
}

// A jar shared by two chats holds one session: /chat/end reaches only the
// chat started last, which is why a client needs a jar per chat.
func TestSharedCookieJarEndsTheLatestChat(t *testing.T) {
	s := NewServer(t, Config{})
	c := httpClient(t, newJar(t))
	first, _ := startChat(t, s, c)
	second, _ := startChat(t, s, c)
	if status, _, _ := call(t, c, "POST", s.URL()+"/chat/end", nil); status != http.StatusNoContent {
		t.Fatalf("end: %d", status)
	}
	a, _ := s.Chat(first)
	b, _ := s.Chat(second)
	if a.Ended != "" || b.Ended != EndedByCustomer {
		t.Errorf("first ended %q, second ended %q; want only the second", a.Ended, b.Ended)
	}
	if !cmp.Equal(a.Cookies, b.Cookies) {
		t.Errorf("cookies %v and %v: want the one session", a.Cookies, b.Cookies)
	}
}

func TestStillHereDeadlineKillsTheChat(t *testing.T) {
	const limit = 400 * time.Millisecond
	s := NewServer(t, Config{StillHereLimit: limit})
	c := httpClient(t, newJar(t))
	id, q := startChat(t, s, c)
	// Still-here every 100ms for longer than the limit keeps it alive.
	start := time.Now()
	for time.Since(start) < 2*limit {
		if status, _, _ := call(t, c, "POST", s.URL()+"/chat/still-here", map[string]string{"chatSessionId": id}); status != http.StatusOK {
			t.Fatalf("still-here: %d", status)
		}
		time.Sleep(limit / 4)
	}
	if got, _ := s.Chat(id); got.Ended != "" {
		t.Fatalf("chat died while kept alive: %q", got.Ended)
	}
	// Then silence kills it.
	if err := s.Wait(ctxFor(t), func() bool { ch, _ := s.Chat(id); return ch.Gone }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Chat(id); got.Ended != EndedByStillHere {
		t.Errorf("Ended = %q, want %q", got.Ended, EndedByStillHere)
	}
	if status, _, _ := call(t, c, "GET", s.URL()+"/chat/queue?existingChatSessionId="+id, nil); status != http.StatusNoContent {
		t.Errorf("session check of a dead chat: %d, want 204", status)
	}
	if status, _, _ := call(t, c, "POST", s.URL()+"/chat", map[string]string{"chatSessionId": id, "message": "x"}); status != http.StatusNotFound {
		t.Errorf("line to a dead chat: %d, want 404", status)
	}
	_, err := sqsClient(t, s, "", "").ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q)})
	var gone *types.QueueDoesNotExist
	if !errors.As(err, &gone) {
		t.Errorf("dead chat's queue: %v, want QueueDoesNotExist", err)
	}
	if err := s.Say(id, "x"); !errors.Is(err, ErrNoChat) {
		t.Errorf("Say to a dead chat: %v", err)
	}
}

func TestSessionCheck(t *testing.T) {
	s := NewServer(t, Config{})
	c := httpClient(t, newJar(t))
	id, _ := startChat(t, s, c)
	if err := s.StartChat(id, "Myles"); err != nil {
		t.Fatal(err)
	}
	status, b, _ := call(t, c, "GET", s.URL()+"/chat/queue?existingChatSessionId="+id, nil)
	var cs struct {
		SessionDetails struct{ ID, Agent, AgentImage string } `json:"sessionDetails"`
	}
	if err := json.Unmarshal(b, &cs); status != http.StatusOK || err != nil {
		t.Fatalf("session check: %d %s %v", status, b, err)
	}
	if cs.SessionDetails.ID != id || cs.SessionDetails.Agent != "Myles" || cs.SessionDetails.AgentImage == "" {
		t.Errorf("session = %+v", cs.SessionDetails)
	}
	for _, q := range []string{"?existingChatSessionId=unknown", ""} {
		if status, _, _ := call(t, c, "GET", s.URL()+"/chat/queue"+q, nil); status != http.StatusNoContent {
			t.Errorf("session check %q: %d, want 204", q, status)
		}
	}
	if err := s.End(id); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := call(t, c, "GET", s.URL()+"/chat/queue?existingChatSessionId="+id, nil); status != http.StatusNoContent {
		t.Errorf("session check after CHAT_ENDED: %d, want 204", status)
	}
}

func TestQueueAuth(t *testing.T) {
	s := NewServer(t, Config{Region: "eu-west-1"})
	c := httpClient(t, nil)
	status, b, _ := call(t, c, "GET", s.URL()+"/chat/queue/auth?installation-id="+DefaultInstallationID, nil)
	var got map[string]string
	if err := json.Unmarshal(b, &got); status != http.StatusOK || err != nil {
		t.Fatalf("auth: %d %s", status, b)
	}
	ak, sk := s.Credentials()
	if diff := cmp.Diff(map[string]string{"sqsAccessKey": ak, "sqsSecretKey": sk, "sqsRegion": "eu-west-1"}, got); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
	if status, _, _ := call(t, c, "GET", s.URL()+"/chat/queue/auth?installation-id=other", nil); status != http.StatusNotFound {
		t.Errorf("other installation: %d, want 404", status)
	}
}

func TestFailREST(t *testing.T) {
	s := NewServer(t, Config{})
	c := httpClient(t, newJar(t))
	id, _ := startChat(t, s, c)
	s.FailREST("/chat/still-here", http.StatusServiceUnavailable, 2)
	var got []int
	for range 3 {
		status, _, _ := call(t, c, "POST", s.URL()+"/chat/still-here", map[string]string{"chatSessionId": id})
		got = append(got, status)
	}
	if diff := cmp.Diff([]int{503, 503, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if ch, _ := s.Chat(id); ch.StillHere != 1 {
		t.Errorf("StillHere = %d, want 1 (failed calls have no effect)", ch.StillHere)
	}
}

func TestScreenshotUpload(t *testing.T) {
	s := NewServer(t, Config{})
	c := httpClient(t, nil)
	req, _ := http.NewRequest("POST", s.URL()+"/screenshot", strings.NewReader("data:image/png;base64;iVBORw0KGgo="))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("upload: %d", resp.StatusCode)
	}
}
