package slacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAPIBody bounds a Web API request body.
const maxAPIBody = 1 << 20

// Call is one recorded Web API call.
type Call struct {
	Method string
	// Params are the form, query or JSON body fields, flattened to strings (a
	// JSON object or array value as its JSON text), without the token.
	Params map[string]string
	Status int    // HTTP status answered
	Error  string // the Slack error code answered, "" when ok
	Time   time.Time
}

// Calls returns the recorded calls of method ("chat.postMessage"...), or of
// every method when method is "", in the order they were answered. Failed calls
// (bad token, faults, rate limits, unknown methods) are recorded too.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			c.Params = maps.Clone(c.Params)
			out = append(out, c)
		}
	}
	return out
}

// params are a call's arguments.
type params map[string]string

// bool reads a Slack boolean: "1" or "true".
func (p params) bool(key string) bool {
	v := strings.ToLower(p[key])
	return v == "1" || v == "true"
}

// int reads an integer argument; def when absent, ok false when malformed.
func (p params) int(key string, def int) (int, bool) {
	v, present := p[key]
	if !present || v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}

// result is a method's answer.
type result struct {
	status     int            // HTTP status; 0 means 200
	fields     map[string]any // the body besides ok and error
	err        string         // Slack error code; "" means ok
	retryAfter time.Duration  // sent as Retry-After when > 0
}

func ok(fields map[string]any) result { return result{fields: fields} }
func fail(code string) result         { return result{err: code} }

// methodFunc runs a method with its checked arguments.
type methodFunc func(p params) result

// method returns the implementation of a Web API method, nil when unknown.
func (s *Server) method(name string) methodFunc {
	switch name {
	case "auth.test":
		return s.authTest
	case "apps.connections.open":
		return s.appsConnectionsOpen
	case "chat.postMessage":
		return s.chatPostMessage
	case "chat.update":
		return s.chatUpdate
	case "chat.delete":
		return s.chatDelete
	case "conversations.replies":
		return s.conversationsReplies
	case "conversations.history":
		return s.conversationsHistory
	case "conversations.info":
		return s.conversationsInfo
	case "conversations.list":
		return s.conversationsList
	case "conversations.open":
		return s.conversationsOpen
	case "users.info":
		return s.usersInfo
	case "reactions.add":
		return s.reactionsAdd
	case "reactions.remove":
		return s.reactionsRemove
	case "files.getUploadURLExternal":
		return s.filesGetUploadURLExternal
	case "files.completeUploadExternal":
		return s.filesCompleteUploadExternal
	}
	return nil
}

// handleAPI serves /api/METHOD: it reads the arguments, checks the token, applies
// rate limits and faults, runs the method and records the call.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/")
	start := time.Now()
	p, token, warning, perr := readParams(w, r)
	res := s.serveAPI(r.Context(), name, p, token, perr)
	if res.err == "" && warning != "" {
		res.fields = maps.Clone(res.fields)
		if res.fields == nil {
			res.fields = map[string]any{}
		}
		res.fields["warning"] = warning
		md, _ := res.fields["response_metadata"].(map[string]any)
		md = maps.Clone(md)
		if md == nil {
			md = map[string]any{}
		}
		md["warnings"] = []string{warning}
		res.fields["response_metadata"] = md
	}
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}

	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: name, Params: p, Status: status, Error: res.err, Time: start})
	s.changedLocked()
	s.mu.Unlock()

	body := map[string]any{}
	maps.Copy(body, res.fields)
	body["ok"] = res.err == ""
	if res.err != "" {
		body["error"] = res.err
	}
	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(res.retryAfter), 10))
	}
	writeJSON(w, status, body)
}

// serveAPI decides a call's answer.
func (s *Server) serveAPI(ctx context.Context, name string, p params, token string, perr string) result {
	run := s.method(name)
	if run == nil {
		return fail("unknown_method")
	}
	if perr != "" {
		return fail(perr)
	}
	s.mu.Lock()
	revoked := s.appRevoked
	s.mu.Unlock()
	switch {
	case token == "":
		return fail("not_authed")
	case token == s.AppToken && revoked:
		return fail("token_revoked")
	case token != s.BotToken && token != s.AppToken:
		return fail("invalid_auth")
	case name == "apps.connections.open" && token != s.AppToken:
		return fail("not_allowed_token_type")
	case name != "apps.connections.open" && name != "auth.test" && token == s.AppToken:
		return fail("not_allowed_token_type")
	}

	s.mu.Lock()
	wait, allowed := s.takeTokenLocked(name, p["channel"], time.Now())
	var f Fault
	var faulted bool
	if allowed {
		f, faulted = s.takeFaultLocked(name)
	}
	s.mu.Unlock()
	if !allowed {
		return result{status: http.StatusTooManyRequests, err: "ratelimited", retryAfter: wait}
	}
	if !faulted {
		return run(p)
	}

	answerFault := func() result {
		res := result{status: f.Status, err: f.errorCode()}
		if f.Status == http.StatusTooManyRequests {
			res.retryAfter = max(f.RetryAfter, time.Second)
		}
		return res
	}
	if f.failure() && !f.AfterApply {
		s.wait(ctx, f.Delay)
		return answerFault()
	}
	res := run(p)
	s.wait(ctx, f.Delay)
	if f.failure() {
		return answerFault()
	}
	return res
}

// wait sleeps d, or less if ctx ends or the server closes.
func (s *Server) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// readParams reads a call's arguments from the query and the body (form,
// multipart form or JSON object) and takes out the token, preferring the
// Authorization header. perr is a Slack error code for an unreadable request;
// warning is a Slack warning code ("missing_charset" for JSON without a
// charset, as Slack warns).
func readParams(w http.ResponseWriter, r *http.Request) (p params, token, warning, perr string) {
	p = params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
	case ct == "application/json":
		if _, has := ctParams["charset"]; !has {
			warning = "missing_charset"
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			perr = bodyError(err)
			break
		}
		if len(bytes.TrimSpace(body)) == 0 {
			break // apps.connections.open is posted with an empty body
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			perr = "invalid_json"
			break
		}
		for k, raw := range obj {
			p[k] = flattenJSON(raw)
		}
	case ct == "multipart/form-data":
		if err := r.ParseMultipartForm(maxAPIBody); err != nil {
			perr = bodyError(err)
			break
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v[0]
		}
	default:
		if err := r.ParseForm(); err != nil {
			perr = bodyError(err)
			break
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	}
	token = p["token"]
	delete(p, "token")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if t, found := strings.CutPrefix(auth, "Bearer "); found {
			token = strings.TrimSpace(t)
		}
	}
	return p, token, warning, perr
}

// bodyError is the Slack error for an unreadable body.
func bodyError(err error) string {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "request_too_large"
	}
	return "invalid_form_data"
}

// flattenJSON renders a JSON value as a call argument: strings unquoted, null
// as "", anything else as its JSON text.
func flattenJSON(raw json.RawMessage) string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return t
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
