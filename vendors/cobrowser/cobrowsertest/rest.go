package cobrowsertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// BasePath is where the fake serves the API, as CoBrowser does under its host.
const BasePath = "/api/app.php/chatbot/v1/"

// Config sets up the fake REST API. Zero fields get the defaults named.
type Config struct {
	// Ejabberd receives the visitor accounts that POST xmppcredentials and
	// POST xmppconnection create, and the agent's account. Nil: credentials
	// are made up and registered nowhere (REST-only tests), and Agent fails.
	Ejabberd   *Ejabberd
	Token      string // the X-API-TOKEN required (401 otherwise); default "test-api-token"
	CampaignID string // default the document's "Tm1dyqk5Nvq5TibLRSyJUkJX2kawLsHX"
	AgentUser  string // local part on Ejabberd.AgentDomain; default "agent1"
	AgentPass  string // default random
	AgentNick  string // default "agent1"
	AgentName  string // first name; default "James"
}

// Request is one HTTP request the fake received.
type Request struct {
	Method string
	Path   string // below BasePath, e.g. "campaigns/ID"
	Query  string
	Token  string // the X-API-TOKEN header as sent ("" when absent)
	Body   string
	Status int // what the fake answered
}

// Session is a chat session created with POST chatsessions.
type Session struct {
	ID                string
	CampaignID        string
	TrackerID         string
	VisitorIdentifier string
	RequestURL        string // "" when not given (answered as null)
	Status            string // created; active once the agent saw the visitor's presence; closed
	Credentials       []Credentials
	Surveys           []json.RawMessage // the "survey" object of each PATCH, as sent
}

// Credentials are the visitor account made for one POST xmppcredentials or
// POST xmppconnection.
type Credentials struct {
	Kind     string // "xmppcredentials" or "xmppconnection"
	ID       string // the entity's id
	User     string // local part, "anonymous.<hex>"
	JID      string // bare JID
	Password string
	Resource string
	RID      int64  // xmppconnection only: BOSH request id
	SID      string // xmppconnection only: BOSH session id (no BOSH session exists)
}

// Server is the fake CoBrowser public REST API, on 127.0.0.1.
type Server struct {
	cfg  Config
	srv  *httptest.Server
	t    testing.TB
	host string // the visitors' XMPP domain

	mu        sync.Mutex
	active    bool
	slots     any
	nullTexts bool
	fails     []fault
	sessions  []*Session
	requests  []Request
	agent     *Agent
}

type fault struct {
	status int
	path   string // prefix below BasePath; "" for any
}

// NewServer starts the fake; t.Cleanup closes it. With cfg.Ejabberd set it
// registers the agent's account there.
func NewServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = "test-api-token"
	}
	if cfg.CampaignID == "" {
		cfg.CampaignID = "Tm1dyqk5Nvq5TibLRSyJUkJX2kawLsHX"
	}
	if cfg.AgentUser == "" {
		cfg.AgentUser = "agent1"
	}
	if cfg.AgentPass == "" {
		cfg.AgentPass = randomHex(12)
	}
	if cfg.AgentNick == "" {
		cfg.AgentNick = "agent1"
	}
	if cfg.AgentName == "" {
		cfg.AgentName = "James"
	}
	s := &Server{cfg: cfg, t: t, active: true, slots: 5, host: "xmpp.test"}
	if cfg.Ejabberd != nil {
		s.host = cfg.Ejabberd.Domain
		cfg.Ejabberd.Register(t, s.AgentJID(), cfg.AgentPass)
	}
	mux := http.NewServeMux()
	for pattern, h := range map[string]http.HandlerFunc{
		"GET " + BasePath + "campaigns":            s.campaigns,
		"GET " + BasePath + "campaigns/{id}":       s.campaign,
		"POST " + BasePath + "chatsessions":        s.createSession,
		"GET " + BasePath + "chatsessions/{id}":    s.getSession,
		"PATCH " + BasePath + "chatsessions/{id}":  s.patchSession,
		"POST " + BasePath + "xmppcredentials":     s.createCredentials,
		"GET " + BasePath + "xmppcredentials/{id}": s.getCredentials,
		"POST " + BasePath + "xmppconnection":      s.createConnection,
		"GET " + BasePath + "xmppconnection/{id}":  s.getConnection,
		"/": func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusNotFound, "Not found") },
	} {
		mux.HandleFunc(pattern, h)
	}
	s.srv = httptest.NewServer(s.middleware(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API's base URL, ending with "/" (what api_url is set to).
func (s *Server) URL() string { return s.srv.URL + BasePath }

// Token is the X-API-TOKEN the fake requires.
func (s *Server) Token() string { return s.cfg.Token }

// CampaignID is the active campaign's id.
func (s *Server) CampaignID() string { return s.cfg.CampaignID }

// AgentJID is the bare JID of the agent every chat session is routed to.
func (s *Server) AgentJID() string {
	domain := "internal." + s.host
	if s.cfg.Ejabberd != nil {
		domain = s.cfg.Ejabberd.AgentDomain
	}
	return s.cfg.AgentUser + "@" + domain
}

// SetAvailable sets the campaign's available_slots: a number (0 means no
// availability: availability false, available_agents 0, and POST
// chatsessions answers 409 "No Availability") or the string "∞".
func (s *Server) SetAvailable(slots any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots = slots
}

// SetCampaignActive switches the campaign; inactive, POST chatsessions
// answers 409 CHAT_CAMPAIGN_INACTIVE.
func (s *Server) SetCampaignActive(active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = active
}

// SetNullTexts makes the campaign's cobrowsing and survey texts null (and
// survey_options empty), as for a campaign whose plugins were never saved.
func (s *Server) SetNullTexts(null bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nullTexts = null
}

// Fail answers the next n requests whose path (below BasePath) starts with
// pathPrefix ("" for any) with status and the error body, after recording
// them and checking the token.
func (s *Server) Fail(n int, status int, pathPrefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fails = append(s.fails, fault{status: status, path: pathPrefix})
	}
}

// Requests is every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Sessions is every chat session created, in order (copies).
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessions))
	for i, cs := range s.sessions {
		out[i] = *cs
		out[i].Credentials = append([]Credentials(nil), cs.Credentials...)
		out[i].Surveys = append([]json.RawMessage(nil), cs.Surveys...)
	}
	return out
}

// Agent logs the agent in (once; later calls return the same Agent, or a
// new one when its stream ended, as after Ejabberd.Restart: an agent's page
// logs in again). t.Cleanup logs it out.
func (s *Server) Agent(t testing.TB) *Agent {
	t.Helper()
	if s.cfg.Ejabberd == nil {
		t.Fatal("cobrowsertest: Agent needs Config.Ejabberd")
	}
	s.mu.Lock()
	a := s.agent
	s.mu.Unlock()
	if a != nil && a.Ended() == nil {
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	local, _ := s.cfg.Ejabberd.split(s.AgentJID())
	a, err := newAgent(ctx, s.cfg.Ejabberd, local, s.cfg.AgentPass, s.cfg.AgentNick, s.cfg.AgentName, s.visitorEvent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Logout() })
	s.mu.Lock()
	s.agent = a
	s.mu.Unlock()
	return a
}

// visitorEvent follows a chat session's status from what the agent sees.
func (s *Server) visitorEvent(visitor, event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.sessionOf(visitor)
	if cs == nil {
		return
	}
	switch {
	case event == "available" && cs.Status == "created":
		cs.Status = "active"
	case event == "closed":
		cs.Status = "closed"
	}
}

func (s *Server) sessionOf(visitorJID string) *Session {
	for _, cs := range s.sessions {
		for _, c := range cs.Credentials {
			if c.JID == visitorJID {
				return cs
			}
		}
	}
	return nil
}

// middleware records the request, checks the token and applies Fail.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		path := strings.TrimPrefix(r.URL.Path, BasePath)
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, Request{
				Method: r.Method, Path: path, Query: r.URL.RawQuery,
				Token: r.Header.Get("X-API-TOKEN"), Body: string(body), Status: rec.status,
			})
			s.mu.Unlock()
		}()
		if r.Header.Get("X-API-TOKEN") != s.cfg.Token {
			writeError(rec, http.StatusUnauthorized, "Invalid API Token")
			return
		}
		if status := s.takeFault(path); status != 0 {
			writeError(rec, status, http.StatusText(status))
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) takeFault(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.fails {
		if strings.HasPrefix(path, f.path) {
			s.fails = append(s.fails[:i], s.fails[i+1:]...)
			return f.status
		}
	}
	return 0
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// writeError answers with the error body CoBrowser's API uses.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{
		"status": "error", "status_code": status, "status_text": http.StatusText(status), "message": message,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func (s *Server) campaigns(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	active := s.active
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, []map[string]any{
		{"id": s.cfg.CampaignID, "name": "First Chat Campaign", "active": active},
		{"id": "UqJEeQ1w3VyhauoHuwsygIJrCaKzFRKCi", "name": "Second Chat Campaign", "active": false},
	})
}

func (s *Server) campaign(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != s.cfg.CampaignID {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	s.mu.Lock()
	active, slots, null := s.active, s.slots, s.nullTexts
	s.mu.Unlock()
	available := hasSlots(slots)
	agents := 0
	if available {
		agents = 1
	}
	c := map[string]any{
		"id": s.cfg.CampaignID, "name": "First Chat campaign", "active": active,
		"color": "#0a6018", "language": "en",
		"availability": available, "available_agents": agents, "available_slots": slots,
		"cobrowsing": map[string]any{
			"active": true, "cbr_text": "Screen sharing?",
			"cobrowsingButtonAcceptText": "Yes", "cobrowsingButtonDenyText": "No",
		},
		"survey": map[string]any{
			"survey_question": "How would you rate our service?",
			"survey_options": []map[string]string{
				{"value": "good", "label": "Good"}, {"value": "moderate", "label": "Might be better"}, {"value": "bad", "label": "Bad"},
			},
			"survey_comment_enable": true,
			"survey_comment":        "Help us out to improve our service with your comments",
			"survey_thanks_enable":  true,
			"survey_thanks":         "Thanks for your time and comments",
			"active":                true,
		},
	}
	if null {
		c["cobrowsing"] = map[string]any{
			"active": false, "cbr_text": nil, "cobrowsingButtonAcceptText": nil, "cobrowsingButtonDenyText": nil,
		}
		c["survey"] = map[string]any{
			"survey_question": nil, "survey_options": []any{}, "survey_comment_enable": false,
			"survey_comment": nil, "survey_thanks_enable": false, "survey_thanks": nil, "active": false,
		}
	}
	writeJSON(w, http.StatusOK, c)
}

// hasSlots: any number above zero, or the string "∞" (or any other string).
func hasSlots(slots any) bool {
	switch v := slots.(type) {
	case int:
		return v > 0
	case float64:
		return v > 0
	case string:
		return v != "" && v != "0"
	}
	return false
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("body is not a JSON object: %w", err)
	}
	return nil
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CampaignID        string  `json:"campaign_id"`
		TrackerID         *string `json:"tracker_id"`
		VisitorIdentifier *string `json:"visitor_identifier"`
		RequestURL        *string `json:"request_url"`
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.CampaignID != s.cfg.CampaignID {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		writeError(w, http.StatusConflict, "CHAT_CAMPAIGN_INACTIVE")
		return
	}
	if !hasSlots(s.slots) {
		writeError(w, http.StatusConflict, "No Availability")
		return
	}
	// What the document says CoBrowser does without them: random values.
	cs := &Session{
		ID: randomID(32), CampaignID: in.CampaignID, Status: "created",
		TrackerID: orRandom(in.TrackerID, randomDigits(13)), VisitorIdentifier: orRandom(in.VisitorIdentifier, randomID(16)),
	}
	if in.RequestURL != nil {
		cs.RequestURL = *in.RequestURL
	}
	s.sessions = append(s.sessions, cs)
	writeJSON(w, http.StatusOK, sessionJSON(cs))
}

func orRandom(p *string, random string) string {
	if p == nil || *p == "" {
		return random
	}
	return *p
}

func sessionJSON(cs *Session) map[string]any {
	var url any
	if cs.RequestURL != "" {
		url = cs.RequestURL
	}
	return map[string]any{
		"id": cs.ID, "campaign_id": cs.CampaignID, "tracker_id": cs.TrackerID,
		"visitor_identifier": cs.VisitorIdentifier, "request_url": url, "status": cs.Status,
	}
}

func (s *Server) session(id string) *Session {
	for _, cs := range s.sessions {
		if cs.ID == id {
			return cs
		}
	}
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.session(r.PathValue("id"))
	if cs == nil {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(cs))
}

// patchSession records a survey: {"survey": {"result": ..., "message": ...}}.
func (s *Server) patchSession(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Survey json.RawMessage `json:"survey"`
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var survey struct {
		Result string `json:"result"`
	}
	if len(in.Survey) == 0 || json.Unmarshal(in.Survey, &survey) != nil || survey.Result == "" {
		writeError(w, http.StatusBadRequest, "survey.result is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.session(r.PathValue("id"))
	if cs == nil {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	cs.Surveys = append(cs.Surveys, in.Survey)
	writeJSON(w, http.StatusOK, sessionJSON(cs))
}

// newVisitor makes a visitor account for a chat session (registered in
// ejabberd when there is one).
func (s *Server) newVisitor(ctx context.Context, kind string) (Credentials, error) {
	user := "anonymous." + randomHex(16)
	c := Credentials{
		Kind: kind, User: user, JID: user + "@" + s.host,
		Password: randomHex(28), Resource: randomHex(8)[:15],
	}
	if kind == "xmppcredentials" {
		c.ID = "__" + randomID(54)
	} else {
		c.ID = randomID(32)
		rid, _ := rand.Int(rand.Reader, big.NewInt(8_999_999_999))
		c.RID, c.SID = rid.Int64()+1_000_000_000, randomHex(20)
	}
	if s.cfg.Ejabberd != nil {
		if err := s.cfg.Ejabberd.register(ctx, c.JID, c.Password); err != nil {
			return c, err
		}
	}
	return c, nil
}

// createCredentials answers POST xmppcredentials: the agent and a fresh
// visitor account (user is a bare JID; password, domain, resource).
func (s *Server) createCredentials(w http.ResponseWriter, r *http.Request) {
	s.create(w, r, "xmppcredentials")
}

// createConnection answers POST xmppconnection: the BOSH variant, whose
// credentials are a full JID with rid, sid and BOSH settings (the BOSH
// session itself is not pre-bound: the fake runs no BOSH).
func (s *Server) createConnection(w http.ResponseWriter, r *http.Request) {
	s.create(w, r, "xmppconnection")
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, kind string) {
	var in struct {
		ChatsessionID string `json:"chatsession_id"`
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	found := s.session(in.ChatsessionID) != nil
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	c, err := s.newVisitor(r.Context(), kind)
	if err != nil && r.Context().Err() != nil {
		return // the client went away (a test killed it mid-request): nobody to answer
	}
	if err != nil {
		s.t.Errorf("cobrowsertest: registering a visitor: %v", err)
		writeError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	s.mu.Lock()
	cs := s.session(in.ChatsessionID)
	cs.Credentials = append(cs.Credentials, c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.credentialsJSON(c))
}

func (s *Server) credentialsJSON(c Credentials) map[string]any {
	agent := map[string]any{"firstname": s.cfg.AgentName, "nickname": s.cfg.AgentNick, "jid": s.AgentJID()}
	if c.Kind == "xmppcredentials" {
		return map[string]any{"id": c.ID, "agent": agent, "credentials": map[string]any{
			"user": c.JID, "password": c.Password, "domain": s.host, "resource": c.Resource,
		}}
	}
	return map[string]any{"id": c.ID, "agent": agent, "credentials": map[string]any{
		"jid": c.JID + "/" + c.Resource, "rid": c.RID, "sid": c.SID,
		"bosh": map[string]any{
			"wait": "60", "requests": "2", "ver": "1.8", "polling": "2", "inactivity": "30",
			"hold": "", "to": "", "ack": nil, "accept": "", "maxpause": "120",
		},
	}}
}

func (s *Server) getCredentials(w http.ResponseWriter, r *http.Request) {
	s.get(w, r, "xmppcredentials")
}
func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) { s.get(w, r, "xmppconnection") }

func (s *Server) get(w http.ResponseWriter, r *http.Request, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cs := range s.sessions {
		for _, c := range cs.Credentials {
			if c.Kind == kind && c.ID == r.PathValue("id") {
				writeJSON(w, http.StatusOK, s.credentialsJSON(c))
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, "Not found")
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomID(n int) string     { return randomFrom(idAlphabet, n) }
func randomDigits(n int) string { return randomFrom("0123456789", n) }

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}
