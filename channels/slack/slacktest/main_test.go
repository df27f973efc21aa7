package slacktest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestServer starts a Server with fast timings and a few people and
// conversations, and closes it at the end of the test.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	s.SetRetryDelay(20 * time.Millisecond)
	s.SetAckTimeout(150 * time.Millisecond)
	s.AddUser(User{ID: "U0ALICE001", Name: "alice", RealName: "Alice Liddell", DisplayName: "alice", Email: "alice@example.com"})
	s.AddChannel(Channel{ID: "C0SUPPORT1", Name: "support"})
	s.AddChannel(Channel{ID: "D0ALICE001", IM: true, User: "U0ALICE001"})
	s.AddChannel(Channel{ID: "C0SHARED01", Name: "acme-shared", Shared: true})
	return s
}

// client is slack-go's Web API client pointed at s, with the bot token.
func client(s *Server) *slack.Client {
	return slack.New(s.BotToken, slack.OptionAPIURL(s.APIURL()))
}

// testContext ends with the test or after 5s.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawCall posts a form to a Web API method and decodes the JSON answer.
func rawCall(t *testing.T, s *Server, method, token string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.APIURL()+method, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("answer %q is not JSON: %v", body, err)
	}
	return resp.StatusCode, out
}

// waitFor fails the test when cond is not true within the test context.
func waitFor(t *testing.T, s *Server, what string, cond func() bool) {
	t.Helper()
	if err := s.WaitFor(testContext(t), cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
