package ximatest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxRESTBody bounds a REST request body (a screenshot upload is the
// largest).
const maxRESTBody = 8 << 20

// timeFormat is the document's timestamp form, "2012-04-23T18:25:43.511Z".
const timeFormat = "2006-01-02T15:04:05.000Z"

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// serveREST is the Xima REST API; every call is recorded.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRESTBody))
	rec := &statusRecorder{ResponseWriter: w}
	s.routeREST(rec, r, body)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, Status: rec.status, At: at})
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) routeREST(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	injected := s.injectedLocked(r.URL.Path)
	s.mu.Unlock()
	if injected != 0 {
		w.WriteHeader(injected)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /chat/apiqueue":
		s.apiQueue(w, r, body)
	case "POST /chat/queue":
		// The captcha flow: a daemon has no captcha token to give.
		writeError(w, http.StatusForbidden, "recaptcha verification failed (use /chat/apiqueue with an API key)")
	case "GET /chat/queue":
		s.sessionCheck(w, r)
	case "GET /chat/queue/auth":
		s.queueAuth(w, r)
	case "POST /chat":
		s.onChat(w, r, body, "message", http.StatusOK, func(c *chat, v string) string {
			c.Lines = append(c.Lines, v)
			return ""
		})
	case "POST /chat/still-here":
		s.onChat(w, r, body, "", http.StatusOK, func(c *chat, _ string) string {
			c.StillHere++
			s.armLocked(c)
			return ""
		})
	case "POST /chat/typing":
		s.onChat(w, r, body, "typing", http.StatusNoContent, func(c *chat, v string) string {
			if !isBoolString(v) {
				return `typing must be "true" or "false"`
			}
			c.Typing = append(c.Typing, v)
			return ""
		})
	case "POST /chat/focus":
		s.onChat(w, r, body, "focused", http.StatusNoContent, func(c *chat, v string) string {
			if !isBoolString(v) {
				return `focused must be "true"`
			}
			c.Focused++
			return ""
		})
	case "POST /screenshot/notify":
		s.screenshotNotify(w, r, body)
	case "POST /screenshot":
		s.screenshotUpload(w, body)
	case "POST /chat/end":
		s.endByCookie(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}
}

func isBoolString(v string) bool {
	return strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(marshal(v))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// fields decodes a JSON object whose listed keys must be strings.
func fields(body []byte, keys ...string) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %w", err)
	}
	out := make(map[string]string)
	for _, k := range keys {
		v, ok := raw[k]
		if !ok {
			return nil, fmt.Errorf("missing %s", k)
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return nil, fmt.Errorf("%s must be a string, got %s", k, v)
		}
		out[k] = str
	}
	return out, nil
}

// onChat handles a call whose body is {"chatSessionId": ..., field: "..."}
// (field "" for none): 400 when malformed, 404 when the chat is unknown,
// ended or gone, else apply (a non-empty result is a 400's message) and ok.
func (s *Server) onChat(w http.ResponseWriter, r *http.Request, body []byte, field string, ok int,
	apply func(c *chat, v string) string) {
	keys := []string{"chatSessionId"}
	if field != "" {
		keys = append(keys, field)
	}
	f, err := fields(body, keys...)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, found := s.byID[f["chatSessionId"]]
	if !found || !c.live() {
		writeError(w, http.StatusNotFound, "no live chat session "+f["chatSessionId"])
		return
	}
	c.seeCookie(cookie(r))
	if msg := apply(c, f[field]); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	s.notifyLocked()
	w.WriteHeader(ok)
}

func cookie(r *http.Request) string {
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

type apiQueueRequest struct {
	InstallationID string     `json:"installationId"`
	Email          string     `json:"email"`
	Name           string     `json:"name"`
	Skill          string     `json:"skill"`
	APIKey         string     `json:"apiKey"`
	CustomChatInfo []ChatInfo `json:"customChatInfo"`
}

// apiQueue is POST /chat/apiqueue: checks the API key and installation,
// starts a chat with its two queues, binds it to the browser session (a
// new one, with Set-Cookie, unless the request carries a session cookie the
// server knows: that session then holds the new chat, and /chat/end with
// it no longer reaches the old one) and answers the ChatSession.
func (s *Server) apiQueue(w http.ResponseWriter, r *http.Request, body []byte) {
	var in apiQueueRequest
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "malformed ClientChatSessionRequest: "+err.Error())
		return
	}
	if in.APIKey != s.cfg.APIKey {
		writeError(w, http.StatusUnauthorized, "invalid API key")
		return
	}
	if in.InstallationID != s.cfg.InstallationID {
		writeError(w, http.StatusNotFound, "unknown installation "+in.InstallationID)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	c := &chat{Chat: Chat{ID: newID(), InstallationID: in.InstallationID, Email: in.Email,
		Name: in.Name, Skill: in.Skill, CustomChatInfo: in.CustomChatInfo, Created: now}}
	c.s2c, c.c2s = s.newQueueLocked(now), s.newQueueLocked(now)
	c.QueueURL, c.ClientQueueURL = c.s2c.url, c.c2s.url
	session := cookie(r)
	if _, known := s.sessions[session]; !known {
		session = newSession()
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: session, Path: "/", HttpOnly: true})
	}
	s.sessions[session] = c
	c.seeCookie(session)
	s.chats = append(s.chats, c)
	s.byID[c.ID] = c
	s.armLocked(c)
	s.notifyLocked()
	writeJSON(w, http.StatusOK, s.chatSessionLocked(c))
}

func newSession() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// The ChatSession object, in the document's shape.
type (
	chatSession struct {
		SessionDetails sessionDetails `json:"sessionDetails"`
	}
	sessionDetails struct {
		ServerToClientQueue queueInfo `json:"serverToClientQueue"`
		ClientToServerQueue queueInfo `json:"clientToServerQueue"`
		ID                  string    `json:"id"`
		InstallationID      string    `json:"installationId"`
		Email               string    `json:"email"`
		Name                string    `json:"name"`
		Agent               *string   `json:"agent"`
		AgentImage          *string   `json:"agentImage"`
		Skill               string    `json:"skill"`
		Created             string    `json:"created"`
	}
	queueInfo struct {
		URL           string `json:"url"`
		ARN           string `json:"arn"`
		Created       string `json:"created"`
		LastUsed      string `json:"lastUsed"`
		ChatQueueType string `json:"chatQueueType"`
	}
)

// chatSessionLocked builds c's ChatSession. agent and agentImage are null
// until an agent took the chat. lastUsed has the leading space the
// document's example shows.
func (s *Server) chatSessionLocked(c *chat) chatSession {
	info := func(q *queue, typ string) queueInfo {
		created := q.created.UTC().Format(timeFormat)
		return queueInfo{URL: q.url, ARN: q.arn, Created: created, LastUsed: " " + created, ChatQueueType: typ}
	}
	d := sessionDetails{ServerToClientQueue: info(c.s2c, "SERVERTOCLIENT"),
		ClientToServerQueue: info(c.c2s, "CLIENTTOSERVER"),
		ID:                  c.ID, InstallationID: c.InstallationID, Email: c.Email, Name: c.Name,
		Skill: c.Skill, Created: c.Created.UTC().Format(timeFormat)}
	if c.Agent != "" {
		d.Agent, d.AgentImage = &c.Agent, &c.agentImage
	}
	return chatSession{d}
}

// sessionCheck is GET /chat/queue?existingChatSessionId=: the ChatSession
// of a live chat, else 204.
func (s *Server) sessionCheck(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("existingChatSessionId")
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[id]
	if !ok || !c.live() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c.seeCookie(cookie(r))
	writeJSON(w, http.StatusOK, s.chatSessionLocked(c))
}

// queueAuth is GET /chat/queue/auth?installation-id=: the current SQS
// credentials.
func (s *Server) queueAuth(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("installation-id") != s.cfg.InstallationID {
		writeError(w, http.StatusNotFound, "unknown installation")
		return
	}
	s.mu.Lock()
	c := s.currentCredsLocked(time.Now())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"sqsAccessKey": c.accessKey, "sqsSecretKey": c.secretKey, "sqsRegion": s.cfg.Region})
}

// screenshotNotify is POST /screenshot/notify: status ACCEPTED (with the
// uuid of an upload) or REJECTED.
func (s *Server) screenshotNotify(w http.ResponseWriter, r *http.Request, body []byte) {
	var uuid string
	var in struct {
		UUID *string `json:"uuid"`
	}
	if json.Unmarshal(body, &in) == nil && in.UUID != nil {
		uuid = *in.UUID
	}
	s.onChat(w, r, body, "status", http.StatusNoContent, func(c *chat, status string) string {
		switch {
		case status != "ACCEPTED" && status != "REJECTED":
			return "status must be ACCEPTED or REJECTED"
		case status == "ACCEPTED" && uuid == "":
			return "an accepted screenshot needs its uuid"
		}
		c.Screenshots = append(c.Screenshots, ScreenshotReply{Status: status, UUID: uuid})
		return ""
	})
}

// screenshotUpload is POST /screenshot: a "data:image/png;base64;..." body
// answered with a screenshot UUID (as plain text: the document does not
// show the answer's form).
func (s *Server) screenshotUpload(w http.ResponseWriter, body []byte) {
	if !strings.HasPrefix(string(body), "data:image/png;base64") {
		writeError(w, http.StatusBadRequest, "body must be data:image/png;base64;...")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(newID()))
}

// endByCookie is POST /chat/end: no body; the browser session cookie finds
// the chat. Without a session the server knows: 400 and nothing ends.
func (s *Server) endByCookie(w http.ResponseWriter, r *http.Request) {
	v := cookie(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.sessions[v]
	if !ok {
		writeError(w, http.StatusBadRequest, "no chat session in this browser session")
		return
	}
	c.seeCookie(v)
	if c.live() {
		s.endLocked(c, EndedByCustomer)
	}
	w.WriteHeader(http.StatusNoContent)
}
