package cobrowser

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

// maxResponse bounds a REST response body; the largest, a campaign with its
// survey texts, is a few KiB.
const maxResponse = 1 << 20

// api is the Public API client: X-API-TOKEN on every call, JSON both ways.
type api struct {
	base    *url.URL
	token   connector.Secret
	client  *http.Client
	timeout time.Duration
}

// apiError is a REST call the server answered with an error status.
type apiError struct {
	Method, Path string
	Status       int
	Message      string // the body's "message", when it has one
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("cobrowser %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// noAgent reports whether the error is CoBrowser saying no chat can start
// now (409 "No Availability" or CHAT_CAMPAIGN_INACTIVE): the core's
// no-agent path, and a later message tries again.
func noAgent(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		return ae, true
	}
	return nil, false
}

// classify makes a REST failure into the core's vocabulary: a request that
// can never work as configured (401, 403, 404, 400, 422) is Permanent; 429
// and 503 honour Retry-After; the rest is retried.
func classify(err *apiError, retryAfter string) error {
	switch {
	case err.Status == http.StatusTooManyRequests || err.Status == http.StatusServiceUnavailable:
		if d, ok := parseRetryAfter(retryAfter); ok {
			return connector.RetryAfter(err, d)
		}
		return err
	case err.Status >= 500, err.Status == http.StatusConflict, err.Status == http.StatusRequestTimeout:
		return err
	case err.Status >= 400:
		return connector.Permanent(err)
	}
	return err
}

func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, 10*time.Minute), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), 10*time.Minute), true
	}
	return 0, false
}

// call sends a request to path (relative to the base) and decodes a 2xx
// JSON answer into out (nil: ignored).
func (a *api) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	u := a.base.JoinPath(path)
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return connector.Permanent(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return connector.Permanent(err)
	}
	req.Header.Set("X-API-TOKEN", a.token.Reveal())
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// The URL in the error holds no secret (the token is a header);
		// still, the log redacts URLs.
		return fmt.Errorf("cobrowser %s %s: %w", method, path, connector.Redacted(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("cobrowser %s %s: reading the answer: %w", method, path, err)
	}
	if len(raw) > maxResponse {
		return fmt.Errorf("cobrowser %s %s: answer over %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		return classify(&apiError{Method: method, Path: path, Status: resp.StatusCode, Message: errorMessage(raw)},
			resp.Header.Get("Retry-After"))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("cobrowser %s %s: answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// errorMessage takes "message" out of an error body like
// {"status":"error","status_code":409,"status_text":"Conflict","message":"No Availability"},
// bounded; a body that is not such JSON gives "".
func errorMessage(raw []byte) string {
	var e struct {
		Message any `json:"message"`
		Error   any `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ""
	}
	for _, m := range []any{e.Message, e.Error} {
		if s, ok := m.(string); ok && s != "" {
			return clip(connector.RedactText(s), 200)
		}
	}
	return ""
}

// campaign is GET campaigns/{id}, as much of it as the adapter uses. Every
// field tolerates null.
type campaign struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Active       flexBool  `json:"active"`
	Availability flexBool  `json:"availability"`
	Agents       flexCount `json:"available_agents"`
	Slots        flexCount `json:"available_slots"`
	Survey       *survey   `json:"survey"`
}

// survey is the campaign's customer survey; texts may be null.
type survey struct {
	Active        flexBool       `json:"active"`
	Question      *string        `json:"survey_question"`
	Options       []surveyOption `json:"survey_options"`
	CommentEnable flexBool       `json:"survey_comment_enable"`
	Comment       *string        `json:"survey_comment"`
	ThanksEnable  flexBool       `json:"survey_thanks_enable"`
	Thanks        *string        `json:"survey_thanks"`
}

type surveyOption struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// open reports whether a chat can start now, and why not.
func (c *campaign) open() (bool, string) {
	switch {
	case !bool(c.Active):
		return false, "the campaign is inactive"
	case !bool(c.Availability):
		return false, "no agent is available"
	case c.Slots.Known && c.Slots.N <= 0 && !c.Slots.Unlimited:
		return false, "every agent's slots are taken"
	}
	return true, ""
}

// flexBool reads true/false, "true"/"false", 1/0 and null (false).
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch strings.Trim(strings.ToLower(string(data)), `"`) {
	case "true", "1":
		*b = true
	default:
		*b = false
	}
	return nil
}

// flexCount reads a count that may be a number, a numeric string, the
// string "∞" (no limit) or null (unknown).
type flexCount struct {
	N         int
	Unlimited bool
	Known     bool
}

func (c *flexCount) UnmarshalJSON(data []byte) error {
	*c = flexCount{}
	s := strings.TrimSpace(string(data))
	if s == "null" {
		return nil
	}
	if unq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(unq)
	}
	if s == "∞" || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") {
		c.Unlimited, c.Known = true, true
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		c.N, c.Known = int(max(min(f, 1e9), -1e9)), true
	}
	return nil // anything else: unknown, not an error
}

func (a *api) campaign(ctx context.Context, id string) (*campaign, error) {
	var c campaign
	if err := a.call(ctx, http.MethodGet, "campaigns/"+url.PathEscape(id), nil, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// chatSessionRequest is POST chatsessions.
type chatSessionRequest struct {
	CampaignID        string `json:"campaign_id"`
	TrackerID         string `json:"tracker_id,omitempty"`
	VisitorIdentifier string `json:"visitor_identifier,omitempty"`
	RequestURL        string `json:"request_url,omitempty"`
}

type chatSession struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (a *api) createChatSession(ctx context.Context, req chatSessionRequest) (*chatSession, error) {
	var cs chatSession
	if err := a.call(ctx, http.MethodPost, "chatsessions", req, &cs); err != nil {
		return nil, err
	}
	if cs.ID == "" || len(cs.ID) > maxAttr {
		return nil, errors.New("cobrowser POST chatsessions: the answer has no usable id")
	}
	return &cs, nil
}

func (a *api) chatSession(ctx context.Context, id string) (*chatSession, error) {
	var cs chatSession
	if err := a.call(ctx, http.MethodGet, "chatsessions/"+url.PathEscape(id), nil, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}

// xmppCredentials is POST xmppcredentials: the visitor's XMPP account for
// the chat and the agent it was routed to.
type xmppCredentials struct {
	ID    string `json:"id"`
	Agent struct {
		FirstName string `json:"firstname"`
		NickName  string `json:"nickname"`
		JID       string `json:"jid"`
	} `json:"agent"`
	Credentials struct {
		User     string `json:"user"`
		Password string `json:"password"`
		Domain   string `json:"domain"`
		Resource string `json:"resource"`
	} `json:"credentials"`
}

func (a *api) createCredentials(ctx context.Context, chatSessionID string) (*xmppCredentials, error) {
	var c xmppCredentials
	body := map[string]string{"chatsession_id": chatSessionID}
	if err := a.call(ctx, http.MethodPost, "xmppcredentials", body, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// patchSurvey is PATCH chatsessions/{id} with the customer's answer.
func (a *api) patchSurvey(ctx context.Context, chatSessionID, result, message string) error {
	type answer struct {
		Result  string `json:"result"`
		Message string `json:"message,omitempty"`
	}
	body := struct {
		Survey answer `json:"survey"`
	}{answer{result, message}}
	return a.call(ctx, http.MethodPatch, "chatsessions/"+url.PathEscape(chatSessionID), body, nil)
}
