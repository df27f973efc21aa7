package slacktest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Delivery is one attempt to POST an event to the events URL.
type Delivery struct {
	EventID string
	// Attempt is 0 for the first delivery and the retry number (the
	// X-Slack-Retry-Num header) for redeliveries, 1 to 3.
	Attempt int
	Status  int    // HTTP status answered; 0 when there was no answer
	Err     string // transport error or timeout, "" when answered
	Elapsed time.Duration
}

// SetEventsURL sets the Events API request URL. When set, events are POSTed
// there, signed with SigningSecret, instead of being sent over Socket Mode;
// empty (the default) selects Socket Mode. Events already queued use the
// transport in force when their turn comes.
func (s *Server) SetEventsURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventsURL = u
}

// Deliveries returns every Events API delivery attempt, in the order made.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// VerifyURL does what Slack does when the request URL is entered in the app's
// settings: it POSTs a signed url_verification event with a random challenge
// and checks that the answer is 200 and echoes the challenge, as plain text,
// as {"challenge":...} JSON or as a challenge= form.
func (s *Server) VerifyURL(ctx context.Context) error {
	s.mu.Lock()
	target := s.eventsURL
	s.mu.Unlock()
	if target == "" {
		return errors.New("slacktest: VerifyURL: no events URL set")
	}
	challenge := randomString(48, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	body, _ := json.Marshal(map[string]string{
		"token":     verificationToken,
		"challenge": challenge,
		"type":      "url_verification",
	})
	ctx, cancel := context.WithTimeout(ctx, eventHTTPTimeout)
	defer cancel()
	req, err := s.signedRequest(ctx, target, body)
	if err != nil {
		return fmt.Errorf("slacktest: VerifyURL: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("slacktest: VerifyURL: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("slacktest: VerifyURL: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("slacktest: VerifyURL: answered %s", resp.Status)
	}
	if got := echoedChallenge(resp.Header.Get("Content-Type"), answer); got != challenge {
		return fmt.Errorf("slacktest: VerifyURL: answered challenge %q, want %q", got, challenge)
	}
	return nil
}

// echoedChallenge reads the challenge from an answer to url_verification.
func echoedChallenge(contentType string, body []byte) string {
	ct, _, _ := mime.ParseMediaType(contentType)
	switch ct {
	case "application/json":
		var v struct {
			Challenge string `json:"challenge"`
		}
		_ = json.Unmarshal(body, &v)
		return v.Challenge
	case "application/x-www-form-urlencoded":
		v, _ := url.ParseQuery(string(body))
		return v.Get("challenge")
	}
	return strings.TrimSpace(string(body))
}

// signedRequest is a POST of body to target with Slack's signature headers.
func (s *Server) signedRequest(ctx context.Context, target string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(s.SigningSecret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return req, nil
}

// deliverHTTP makes the first Events API delivery of ev now and leaves any
// redelivery to a goroutine: Slack retries a failed delivery up to three times,
// and Post.Deliveries asks for extra copies whatever the answers.
func (s *Server) deliverHTTP(target string, ev *event) {
	good, reason, noRetry := s.postEvent(target, ev, 0, "")
	if good && ev.deliveries <= 1 || !good && noRetry && ev.deliveries <= 1 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goLocked(func() { s.retryHTTP(target, ev, 1, good, reason, noRetry) })
}

// retryHTTP makes the retries of ev from attempt from on, after an attempt
// that ended as good, reason and noRetry say: while one fails (unless the
// app asked for no retries), or copies on purpose are left, up to maxRetries.
func (s *Server) retryHTTP(target string, ev *event, from int, good bool, reason string, noRetry bool) {
	for attempt := from; attempt <= maxRetries; attempt++ {
		wanted := attempt < ev.deliveries || !good && !noRetry
		if !wanted || !s.sleep(s.currentRetryDelay()) {
			return
		}
		if good {
			// A copy on purpose: to the app it looks like Slack missed the answer.
			reason = "http_timeout"
		}
		good, reason, noRetry = s.postEvent(target, ev, attempt, reason)
	}
}

// postEvent POSTs ev once and records the attempt. It reports whether the app
// answered 2xx, and otherwise the X-Slack-Retry-Reason of the next retry and
// whether the app asked for no retries (X-Slack-No-Retry: 1).
func (s *Server) postEvent(target string, ev *event, attempt int, retryReason string) (good bool, reason string, noRetry bool) {
	ctx, cancel := context.WithTimeout(s.ctx, eventHTTPTimeout)
	defer cancel()
	d := Delivery{EventID: ev.id, Attempt: attempt}
	start := time.Now()
	req, err := s.signedRequest(ctx, target, ev.body)
	if err == nil {
		if attempt > 0 {
			req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(attempt))
			req.Header.Set("X-Slack-Retry-Reason", retryReason)
		}
		var resp *http.Response
		resp, err = s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			d.Status = resp.StatusCode
			good = resp.StatusCode >= 200 && resp.StatusCode < 300
			noRetry = resp.Header.Get("X-Slack-No-Retry") == "1"
			reason = "http_error"
		}
	}
	d.Elapsed = time.Since(start)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		d.Err, reason = "http_timeout", "http_timeout"
	case err != nil:
		d.Err, reason = err.Error(), "connection_failed"
	}
	if s.ctx.Err() != nil {
		return false, reason, true // closing: no record, no retry
	}
	s.mu.Lock()
	ev.last = max(ev.last, attempt)
	s.deliveries = append(s.deliveries, d)
	s.changedLocked()
	s.mu.Unlock()
	return good, reason, noRetry
}
