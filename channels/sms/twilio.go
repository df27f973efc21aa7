package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
)

// The two calls of Twilio's 2010-04-01 REST API the channel makes, on the
// Messages resource of the account: create (a form POST) and list (a GET
// with To/From filters), both with HTTP basic auth (account SID, auth
// token), both answered with JSON. An error answer is Twilio's error
// document {"code","message","more_info","status"}.

// Bounds of what is read of an answer. A list page of reconcilePage
// messages of 1600 characters each is about half a megabyte.
const (
	maxAnswer      = 4 << 20
	maxErrorAnswer = 64 << 10
	// maxErrorMessage bounds the server's message kept in an error, which
	// reaches Health and the logs.
	maxErrorMessage = 512
)

// apiError is an error answer: its HTTP status and, when the body was
// Twilio's error document, Twilio's code and message.
type apiError struct {
	Status  int
	Code    int
	Message string
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "twilio answered HTTP %d", e.Status)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", error %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// decodeAPIError reads an error answer. A body that is not Twilio's error
// document (a proxy's page) leaves Code 0, which callers read as "not
// Twilio's own answer".
func decodeAPIError(status int, body []byte) *apiError {
	var doc struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
	}
	e := &apiError{Status: status}
	if json.Unmarshal(body, &doc) != nil {
		return e
	}
	if code, err := strconv.Atoi(doc.Code.String()); err == nil && code > 0 {
		e.Code = code
	}
	e.Message = clipRunes(strings.TrimSpace(doc.Message), maxErrorMessage)
	return e
}

// clipRunes cuts s to at most n bytes without splitting a rune, marking the cut.
func clipRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// messageDoc is what the channel reads of a Message resource.
type messageDoc struct {
	SID                 string `json:"sid"`
	To                  string `json:"to"`
	From                string `json:"from"`
	Body                string `json:"body"`
	Direction           string `json:"direction"`
	DateCreated         string `json:"date_created"`
	DateSent            string `json:"date_sent"`
	Status              string `json:"status"`
	NumMedia            string `json:"num_media"`
	MessagingServiceSID string `json:"messaging_service_sid"`
}

// messagePage is what the channel reads of a page of Message resources.
type messagePage struct {
	Messages    []messageDoc `json:"messages"`
	NextPageURI string       `json:"next_page_uri"`
}

// messagesURL is the account's Messages resource under api_url, with query
// appended when there is one.
func (c *Channel) messagesURL(query url.Values) string {
	u := strings.TrimSuffix(c.cfg.APIURL, "/") + "/2010-04-01/Accounts/" +
		url.PathEscape(c.cfg.AccountSID) + "/Messages.json"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// createMessage POSTs form to the Messages resource. status is the HTTP
// status Twilio answered, 0 when no answer came.
func (c *Channel) createMessage(ctx context.Context, form url.Values) (messageDoc, int, error) {
	var m messageDoc
	status, err := c.call(ctx, http.MethodPost, c.messagesURL(nil), form, &m)
	return m, status, err
}

// listMessages GETs one page of the Messages resource filtered by query.
func (c *Channel) listMessages(ctx context.Context, query url.Values) (messagePage, error) {
	var p messagePage
	_, err := c.call(ctx, http.MethodGet, c.messagesURL(query), nil, &p)
	return p, err
}

// nextPage GETs the page a list answer's next_page_uri names. The URI must
// be the account's Messages resource on the API host: it is Twilio's
// answer, but the credentials go with the request.
func (c *Channel) nextPage(ctx context.Context, uri string) (messagePage, error) {
	var p messagePage
	base := c.messagesURL(nil)
	prefix := strings.TrimPrefix(base, strings.TrimSuffix(c.cfg.APIURL, "/"))
	if !strings.HasPrefix(uri, prefix+"?") {
		return p, fmt.Errorf("twilio's next_page_uri is not the Messages list: %s", connector.RedactURL(uri))
	}
	_, err := c.call(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.APIURL, "/")+uri, nil, &p)
	return p, err
}

// call makes one API request, bounded by ctx and request_timeout, and
// decodes a 2xx JSON answer into out. A non-2xx answer is an *apiError;
// a failure to reach Twilio keeps its cause for errors.As (net.OpError,
// net.DNSError), its text with every URL redacted.
func (c *Channel) call(ctx context.Context, method, u string, form url.Values, out any) (status int, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, connector.Redacted(fmt.Errorf("twilio request: %w", err))
	}
	req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "connectord")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, connector.Redacted(err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := int64(maxErrorAnswer)
	if ok {
		limit = maxAnswer
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return resp.StatusCode, connector.Redacted(fmt.Errorf("read twilio answer (HTTP %d): %w", resp.StatusCode, err))
	case !ok:
		return resp.StatusCode, decodeAPIError(resp.StatusCode, b[:min(len(b), maxErrorAnswer)])
	case int64(len(b)) > limit:
		return resp.StatusCode, fmt.Errorf("twilio answer (HTTP %d) is larger than %d bytes", resp.StatusCode, limit)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode twilio answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// isAPIError reports whether err is an error answer from the API, and which.
func isAPIError(err error) (*apiError, bool) {
	var ae *apiError
	ok := errors.As(err, &ae)
	return ae, ok
}
