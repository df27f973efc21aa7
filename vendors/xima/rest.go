package xima

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// maxResponse bounds a REST answer; a ChatSession with the agent's base64
// image is the largest, tens of KiB.
const maxResponse = 1 << 20

// api is the Web Chat REST client. Each chat's calls carry its cookie jar.
type api struct {
	base           *url.URL
	installationID string
	client         *http.Client
	timeout        time.Duration
	now            func() time.Time
}

// apiError is a call Xima answered with an error status.
type apiError struct {
	Method, Path string
	Status       int
	Message      string // a short, redacted piece of the body
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("xima %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// statusOf is the HTTP status of a REST failure; 0 when it has none (the
// call did not get an answer).
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// classify puts a REST failure in the core's vocabulary: a request that can
// never work as configured (400, 401, 403, 404, 405, 422...) is Permanent;
// 408, 409, 425, 429 and every 5xx are retried, 429 and 503 no sooner than
// Retry-After says.
func classify(err *apiError, retryAfter string) error {
	switch {
	case err.Status == http.StatusTooManyRequests || err.Status == http.StatusServiceUnavailable:
		if d, ok := parseRetryAfter(retryAfter); ok {
			return connector.RetryAfter(err, d)
		}
		return err
	case err.Status >= 500, err.Status == http.StatusRequestTimeout, err.Status == http.StatusConflict,
		err.Status == http.StatusTooEarly:
		return err
	case err.Status >= 400:
		return connector.Permanent(err)
	}
	return err
}

func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, 10*time.Minute), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), 10*time.Minute), true
	}
	return 0, false
}

// do sends one request. in (when not nil) is sent as JSON; the answer's
// status and body (bounded) are returned for a 2xx, an *apiError (classified)
// otherwise. j, when not nil, sends the chat's cookies and keeps new ones.
func (a *api) do(ctx context.Context, method, path string, query url.Values, in any, j *jar) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	u := a.base.JoinPath(path)
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, connector.Permanent(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, connector.Permanent(err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if j != nil {
		j.add(req, a.now())
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("xima %s %s: %w", method, path, connector.Redacted(err))
	}
	defer resp.Body.Close()
	if j != nil {
		j.take(resp, a.now())
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return 0, nil, fmt.Errorf("xima %s %s: reading the answer: %w", method, path, err)
	}
	if len(raw) > maxResponse {
		return 0, nil, fmt.Errorf("xima %s %s: answer over %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Method: method, Path: path, Status: resp.StatusCode, Message: errorText(raw)}
		return resp.StatusCode, nil, classify(ae, resp.Header.Get("Retry-After"))
	}
	return resp.StatusCode, raw, nil
}

// errorText is a short piece of an error answer for logs: its "message" or
// "error" when it is such JSON, else its first line; redacted, bounded.
func errorText(raw []byte) string {
	var e struct {
		Message any `json:"message"`
		Error   any `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil {
		for _, m := range []any{e.Message, e.Error} {
			if s, ok := m.(string); ok && s != "" {
				return clip(connector.RedactText(s), 200)
			}
		}
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	if strings.HasPrefix(line, "<") { // an HTML error page says nothing useful
		return ""
	}
	return clip(connector.RedactText(line), 200)
}

// startChat is POST /chat/apiqueue: the chat enters the skill's queue.
func (a *api) startChat(ctx context.Context, req chatSessionRequest, j *jar) (chatSession, error) {
	_, raw, err := a.do(ctx, http.MethodPost, "/chat/apiqueue", nil, req, j)
	if err != nil {
		return chatSession{}, err
	}
	cs, err := decodeChatSession(raw)
	if err != nil {
		return chatSession{}, fmt.Errorf("xima POST /chat/apiqueue: %w", err)
	}
	return cs, nil
}

// checkChat is GET /chat/queue?existingChatSessionId=: gone is true when
// Xima answers 204 (no such chat).
func (a *api) checkChat(ctx context.Context, id string, j *jar) (cs chatSession, gone bool, err error) {
	status, raw, err := a.do(ctx, http.MethodGet, "/chat/queue", url.Values{"existingChatSessionId": {id}}, nil, j)
	if err != nil {
		return chatSession{}, false, err
	}
	if status == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
		return chatSession{}, true, nil
	}
	cs, err = decodeChatSession(raw)
	if err != nil {
		// It exists; what it says about itself is not needed to go on.
		return chatSession{ID: id}, false, nil
	}
	return cs, false, nil
}

// credentials is GET /chat/queue/auth: the installation's SQS credentials.
func (a *api) credentials(ctx context.Context) (sqsCredentials, error) {
	_, raw, err := a.do(ctx, http.MethodGet, "/chat/queue/auth", url.Values{"installation-id": {a.installationID}}, nil, nil)
	if err != nil {
		return sqsCredentials{}, err
	}
	c, err := decodeCredentials(raw)
	if err != nil {
		return sqsCredentials{}, fmt.Errorf("xima GET /chat/queue/auth: %w", err)
	}
	return c, nil
}

// say is POST /chat: one customer line.
func (a *api) say(ctx context.Context, chat, text string, j *jar) error {
	body := struct {
		ChatSessionID string `json:"chatSessionId"`
		Message       string `json:"message"`
	}{chat, text}
	_, _, err := a.do(ctx, http.MethodPost, "/chat", nil, body, j)
	return err
}

// stillHere is POST /chat/still-here, which keeps the chat alive.
func (a *api) stillHere(ctx context.Context, chat string, j *jar) error {
	body := struct {
		ChatSessionID string `json:"chatSessionId"`
	}{chat}
	_, _, err := a.do(ctx, http.MethodPost, "/chat/still-here", nil, body, j)
	return err
}

// end is POST /chat/end: no body, the chat found by the cookies.
func (a *api) end(ctx context.Context, j *jar) error {
	_, _, err := a.do(ctx, http.MethodPost, "/chat/end", nil, nil, j)
	return err
}

// rejectScreenshot is POST /screenshot/notify with status REJECTED: the
// customer has no browser window to show.
func (a *api) rejectScreenshot(ctx context.Context, chat string, j *jar) error {
	body := struct {
		ChatSessionID string `json:"chatSessionId"`
		Status        string `json:"status"`
	}{chat, "REJECTED"}
	_, _, err := a.do(ctx, http.MethodPost, "/screenshot/notify", nil, body, j)
	return err
}
