package cobrowser

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

func TestCampaignDecoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		open bool
	}{
		{"documented", `{"id":"c","active":true,"availability":true,"available_agents":1,"available_slots":5,
			"cobrowsing":{"active":false,"cbr_text":null},"survey":{"active":false,"survey_question":null,"survey_options":[]}}`, true},
		{"infinite slots", `{"active":true,"availability":true,"available_agents":1,"available_slots":"∞"}`, true},
		{"zero slots", `{"active":true,"availability":true,"available_agents":1,"available_slots":0}`, false},
		{"slots as a string", `{"active":true,"availability":true,"available_slots":"3"}`, true},
		{"null slots", `{"active":true,"availability":true,"available_slots":null}`, true},
		{"inactive", `{"active":false,"availability":true,"available_slots":3}`, false},
		{"no availability", `{"active":true,"availability":false,"available_agents":0,"available_slots":0}`, false},
		{"booleans as strings", `{"active":"true","availability":"1","available_slots":"∞"}`, true},
		{"null booleans", `{"active":null,"availability":null}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c campaign
			if err := json.Unmarshal([]byte(tc.body), &c); err != nil {
				t.Fatal(err)
			}
			if open, why := c.open(); open != tc.open {
				t.Errorf("open %v (%s), want %v", open, why, tc.open)
			}
		})
	}
}

// restServer answers every request with status and body, recording them.
func restServer(t *testing.T, status int, body string, header map[string]string) (*api, *[]*http.Request) {
	t.Helper()
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/api/app.php/chatbot/v1/")
	return &api{base: u, token: "tok-secret", client: srv.Client(), timeout: 2 * time.Second}, &seen
}

func TestRESTErrors(t *testing.T) {
	conflict := `{"status":"error","status_code":409,"status_text":"Conflict","message":"No Availability"}`
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		header    map[string]string
		permanent bool
		noAgent   string
		after     time.Duration
	}{
		{"no availability", 409, conflict, nil, false, "No Availability", 0},
		{"inactive", 409, `{"status":"error","message":"CHAT_CAMPAIGN_INACTIVE"}`, nil, false, "CHAT_CAMPAIGN_INACTIVE", 0},
		{"not found", 404, `{"status":"error","status_code":404,"status_text":"Not found","message":"Not found"}`, nil, true, "", 0},
		{"bad token", 401, `nope`, nil, true, "", 0},
		{"forbidden", 403, ``, nil, true, "", 0},
		{"server error", 500, `<html>`, nil, false, "", 0},
		{"rate limited", 429, ``, map[string]string{"Retry-After": "7"}, false, "", 7 * time.Second},
		{"unavailable", 503, ``, map[string]string{"Retry-After": "2"}, false, "", 2 * time.Second},
		{"redirect not followed", 302, ``, map[string]string{"Location": "https://elsewhere.test/"}, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, seen := restServer(t, tc.status, tc.body, tc.header)
			a.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			_, err := a.createChatSession(context.Background(), chatSessionRequest{CampaignID: "c"})
			if err == nil {
				t.Fatal("no error")
			}
			if connector.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", connector.IsPermanent(err), tc.permanent, err)
			}
			ae, ok := noAgent(err)
			if got := ""; ok {
				got = ae.Message
				if got != tc.noAgent {
					t.Errorf("no-agent message %q, want %q", got, tc.noAgent)
				}
			} else if tc.noAgent != "" {
				t.Errorf("not the no-agent path: %v", err)
			}
			if d, _ := connector.RetryDelay(err); d != tc.after {
				t.Errorf("retry after %s, want %s", d, tc.after)
			}
			if len(*seen) != 1 || (*seen)[0].Header.Get("X-API-TOKEN") != "tok-secret" ||
				(*seen)[0].URL.Path != "/api/app.php/chatbot/v1/chatsessions" {
				t.Errorf("requests: %d, first %+v", len(*seen), (*seen)[0].URL)
			}
		})
	}
}

func TestRESTBodyBounded(t *testing.T) {
	a, _ := restServer(t, 200, `{"id":"`+string(make([]byte, maxResponse))+`"}`, nil)
	if _, err := a.campaign(context.Background(), "c"); err == nil {
		t.Error("an answer over maxResponse: no error")
	}
	a, _ = restServer(t, 200, `{"id":"x"}`, nil)
	if _, err := a.createChatSession(context.Background(), chatSessionRequest{}); err != nil {
		t.Errorf("a chat session: %v", err)
	}
	a, _ = restServer(t, 200, `{"status":"created"}`, nil)
	if _, err := a.createChatSession(context.Background(), chatSessionRequest{}); err == nil {
		t.Error("a chat session without id: no error")
	}
}

func TestRESTUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	u, _ := url.Parse(srv.URL + "/v1/")
	a := &api{base: u, token: "t", client: http.DefaultClient, timeout: time.Second}
	_, err := a.campaign(context.Background(), "c")
	var ae *apiError
	if err == nil || connector.IsPermanent(err) || errors.As(err, &ae) {
		t.Errorf("unreachable: %v; want a retryable transport error", err)
	}
}
