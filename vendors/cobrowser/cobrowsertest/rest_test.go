package cobrowsertest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type apiError struct {
	Status     string `json:"status"`
	StatusCode int    `json:"status_code"`
	StatusText string `json:"status_text"`
	Message    string `json:"message"`
}

func wantError(t *testing.T, got apiError, status int, message string) {
	t.Helper()
	want := apiError{Status: "error", StatusCode: status, StatusText: http.StatusText(status), Message: message}
	if got != want {
		t.Errorf("error body %+v, want %+v", got, want)
	}
}

func TestRESTToken(t *testing.T) {
	s := NewServer(t, Config{Token: "secret"})
	if !strings.HasSuffix(s.URL(), "/api/app.php/chatbot/v1/") || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	for _, token := range []string{"", "wrong"} {
		var e apiError
		if st := call(t, s, token, "GET", "campaigns", nil, &e); st != http.StatusUnauthorized {
			t.Fatalf("token %q: %d", token, st)
		}
		wantError(t, e, http.StatusUnauthorized, "Invalid API Token")
	}
	var list []map[string]any
	if st := call(t, s, "secret", "GET", "campaigns", nil, &list); st != http.StatusOK {
		t.Fatalf("GET campaigns: %d", st)
	}
	if len(list) != 2 || list[0]["id"] != s.CampaignID() || list[0]["active"] != true || list[1]["active"] != false {
		t.Errorf("campaigns %v", list)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Token != "" || reqs[1].Token != "wrong" || reqs[2].Token != "secret" ||
		reqs[2].Path != "campaigns" || reqs[2].Status != 200 || reqs[0].Status != 401 {
		t.Errorf("requests %+v", reqs)
	}
}

func TestRESTAvailability(t *testing.T) {
	s := NewServer(t, Config{})
	campaign := func() map[string]any {
		t.Helper()
		var c map[string]any
		if st := call(t, s, s.Token(), "GET", "campaigns/"+s.CampaignID(), nil, &c); st != http.StatusOK {
			t.Fatalf("GET campaign: %d", st)
		}
		return c
	}
	open := func() (int, apiError) {
		t.Helper()
		var e apiError
		st := call(t, s, s.Token(), "POST", "chatsessions", map[string]string{"campaign_id": s.CampaignID()}, &e)
		return st, e
	}
	if c := campaign(); c["availability"] != true || c["available_slots"] != float64(5) || c["available_agents"] != float64(1) {
		t.Errorf("default campaign %v", c)
	}
	s.SetAvailable("∞")
	if c := campaign(); c["available_slots"] != "∞" || c["availability"] != true {
		t.Errorf("∞ campaign %v", c)
	}
	if st, _ := open(); st != http.StatusOK {
		t.Errorf("POST chatsessions with ∞ slots: %d", st)
	}
	s.SetAvailable(0)
	if c := campaign(); c["availability"] != false || c["available_slots"] != float64(0) || c["available_agents"] != float64(0) {
		t.Errorf("no availability %v", c)
	}
	st, e := open()
	if st != http.StatusConflict {
		t.Fatalf("POST chatsessions without availability: %d", st)
	}
	wantError(t, e, http.StatusConflict, "No Availability")

	s.SetAvailable(2)
	s.SetCampaignActive(false)
	if c := campaign(); c["active"] != false {
		t.Errorf("inactive campaign %v", c)
	}
	st, e = open()
	if st != http.StatusConflict {
		t.Fatalf("POST chatsessions, inactive campaign: %d", st)
	}
	wantError(t, e, http.StatusConflict, "CHAT_CAMPAIGN_INACTIVE")

	s.SetCampaignActive(true)
	for _, path := range []string{"campaigns/nope", "chatsessions/nope", "xmppcredentials/nope", "xmppconnection/nope", "nothing"} {
		if st := call(t, s, s.Token(), "GET", path, nil, &e); st != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, st)
		}
		wantError(t, e, http.StatusNotFound, "Not found")
	}
	if st := call(t, s, s.Token(), "DELETE", "campaigns", nil, &e); st != http.StatusNotFound {
		t.Errorf("DELETE campaigns: %d", st)
	}
	if st := call(t, s, s.Token(), "POST", "chatsessions", map[string]string{"campaign_id": "nope"}, &e); st != http.StatusNotFound {
		t.Errorf("POST chatsessions, unknown campaign: %d", st)
	}
	if st := call(t, s, s.Token(), "POST", "xmppcredentials", map[string]string{"chatsession_id": "nope"}, &e); st != http.StatusNotFound {
		t.Errorf("POST xmppcredentials, unknown session: %d", st)
	}
}

func TestRESTNullTexts(t *testing.T) {
	s := NewServer(t, Config{})
	s.SetNullTexts(true)
	var c struct {
		Cobrowsing map[string]any `json:"cobrowsing"`
		Survey     map[string]any `json:"survey"`
	}
	if st := call(t, s, s.Token(), "GET", "campaigns/"+s.CampaignID(), nil, &c); st != http.StatusOK {
		t.Fatal(st)
	}
	for _, k := range []string{"cbr_text", "cobrowsingButtonAcceptText", "cobrowsingButtonDenyText"} {
		if v, ok := c.Cobrowsing[k]; !ok || v != nil {
			t.Errorf("cobrowsing.%s = %v (present %v), want null", k, v, ok)
		}
	}
	for _, k := range []string{"survey_question", "survey_comment", "survey_thanks"} {
		if v, ok := c.Survey[k]; !ok || v != nil {
			t.Errorf("survey.%s = %v (present %v), want null", k, v, ok)
		}
	}
	if opts, ok := c.Survey["survey_options"].([]any); !ok || len(opts) != 0 {
		t.Errorf("survey_options %v, want []", c.Survey["survey_options"])
	}
}

func TestRESTSessionAndCredentials(t *testing.T) {
	s := NewServer(t, Config{})
	var cs map[string]any
	if st := call(t, s, s.Token(), "POST", "chatsessions", map[string]string{
		"campaign_id": s.CampaignID(), "tracker_id": "9082734890274",
		"visitor_identifier": "+41790000000", "request_url": "https://example.com",
	}, &cs); st != http.StatusOK {
		t.Fatal(st)
	}
	id := cs["id"].(string)
	if cs["status"] != "created" || cs["visitor_identifier"] != "+41790000000" || cs["tracker_id"] != "9082734890274" ||
		cs["request_url"] != "https://example.com" || cs["campaign_id"] != s.CampaignID() || len(id) != 32 {
		t.Errorf("chat session %v", cs)
	}
	var creds credentialsAnswer
	if st := call(t, s, s.Token(), "POST", "xmppcredentials", map[string]string{"chatsession_id": id}, &creds); st != http.StatusOK {
		t.Fatal(st)
	}
	c := creds.Credentials
	if !strings.HasPrefix(c.User, "anonymous.") || !strings.HasSuffix(c.User, "@xmpp.test") || c.Domain != "xmpp.test" ||
		c.Password == "" || len(c.Resource) != 15 || creds.Agent.JID != "agent1@internal.xmpp.test" ||
		creds.Agent.Nickname != "agent1" || creds.Agent.Firstname != "James" {
		t.Errorf("xmppcredentials %+v", creds)
	}
	var again credentialsAnswer
	if st := call(t, s, s.Token(), "GET", "xmppcredentials/"+creds.ID, nil, &again); st != http.StatusOK || again != creds {
		t.Errorf("GET xmppcredentials: %d %+v", st, again)
	}

	var conn struct {
		ID    string            `json:"id"`
		Agent map[string]string `json:"agent"`
		Creds struct {
			JID  string          `json:"jid"`
			RID  int64           `json:"rid"`
			SID  string          `json:"sid"`
			BOSH json.RawMessage `json:"bosh"`
		} `json:"credentials"`
	}
	if st := call(t, s, s.Token(), "POST", "xmppconnection", map[string]string{"chatsession_id": id}, &conn); st != http.StatusOK {
		t.Fatal(st)
	}
	if !strings.Contains(conn.Creds.JID, "@xmpp.test/") || conn.Creds.RID < 1_000_000_000 || len(conn.Creds.SID) != 40 ||
		!strings.Contains(string(conn.Creds.BOSH), `"ack":null`) || conn.Agent["jid"] != s.AgentJID() {
		t.Errorf("xmppconnection %+v %s", conn, conn.Creds.BOSH)
	}

	survey := map[string]any{"survey": map[string]string{"result": "good", "message": "thanks"}}
	if st := call(t, s, s.Token(), "PATCH", "chatsessions/"+id, survey, &cs); st != http.StatusOK {
		t.Fatalf("PATCH: %d", st)
	}
	var e apiError
	if st := call(t, s, s.Token(), "PATCH", "chatsessions/"+id, map[string]any{"survey": map[string]string{}}, &e); st != http.StatusBadRequest {
		t.Errorf("PATCH without result: %d", st)
	}
	got := s.Sessions()
	if len(got) != 1 || len(got[0].Credentials) != 2 || got[0].Credentials[0].JID != c.User ||
		got[0].Credentials[1].Kind != "xmppconnection" || len(got[0].Surveys) != 1 ||
		string(got[0].Surveys[0]) != `{"message":"thanks","result":"good"}` {
		t.Errorf("sessions %+v", got)
	}
}

func TestRESTDefaultsAndFail(t *testing.T) {
	s := NewServer(t, Config{})
	var cs map[string]any
	if st := call(t, s, s.Token(), "POST", "chatsessions", map[string]string{"campaign_id": s.CampaignID()}, &cs); st != http.StatusOK {
		t.Fatal(st)
	}
	if cs["request_url"] != nil || cs["visitor_identifier"] == "" || cs["tracker_id"] == "" {
		t.Errorf("defaults %v", cs)
	}
	s.Fail(2, http.StatusServiceUnavailable, "campaigns")
	var e apiError
	for range 2 {
		if st := call(t, s, s.Token(), "GET", "chatsessions/"+cs["id"].(string), nil, nil); st != http.StatusOK {
			t.Errorf("unaffected path: %d", st)
		}
		if st := call(t, s, s.Token(), "GET", "campaigns", nil, &e); st != http.StatusServiceUnavailable {
			t.Errorf("failing: %d", st)
		}
	}
	if st := call(t, s, s.Token(), "GET", "campaigns", nil, nil); st != http.StatusOK {
		t.Errorf("after the failures: %d", st)
	}
	if st := call(t, s, s.Token(), "POST", "chatsessions", nil, &e); st != http.StatusBadRequest {
		t.Errorf("no body: %d", st)
	}
}
