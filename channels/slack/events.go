package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxEventBody bounds an Events API request; real events are a few KB.
const maxEventBody = 1 << 20

// eventBudget is how long a request may take to commit: Slack gives 3 s
// before it retries, and the answer must still reach it.
const eventBudget = 2500 * time.Millisecond

// serveEvents is the Events API webhook. It answers 401 to a request whose
// signature or timestamp (5 minutes) fails, echoes url_verification, and
// answers 200 to an event only once it is committed (or known to be a
// duplicate, or not for us); otherwise 5xx, so that Slack retries. A body
// over the limit (ours, or the daemon's http.max_body_bytes) is 413; a panic
// while handling the event is logged with its stack and answered 500.
func (c *Channel) serveEvents(w http.ResponseWriter, r *http.Request) {
	defer c.recoverHTTP(w, "events request")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if len(body) > maxEventBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := c.verify(r.Header, body); err != nil {
		c.log.Warn("events request refused", zap.String("remote", r.RemoteAddr), zap.Error(err))
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	cb, err := decodeCallback(body)
	if err != nil {
		c.log.Warn("events request is not JSON", zap.Error(err))
		http.Error(w, "body is not a JSON event", http.StatusBadRequest)
		return
	}
	switch cb.Type {
	case "url_verification":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, cb.Challenge)
		return
	case "event_callback":
	default:
		w.WriteHeader(http.StatusOK) // app_rate_limited and other notices: nothing to do
		return
	}
	if c.self.Load() == nil {
		http.Error(w, "not ready: the app's identity is not known yet", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), eventBudget)
	defer cancel()
	if err := c.handleEvent(ctx, &cb); err != nil {
		c.log.Error("event not committed; Slack will retry", zap.String("event_id", cb.EventID),
			zap.String("retry", r.Header.Get("X-Slack-Retry-Num")), zap.Error(err))
		http.Error(w, "not committed", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// recoverHTTP, deferred by a handler, answers 500 to a request whose
// handling panicked, after logging the panic with its stack, instead of
// letting it reach net/http (which would drop the connection). An aborted
// answer (http.ErrAbortHandler) is passed on.
func (c *Channel) recoverHTTP(w http.ResponseWriter, what string) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	c.log.Error("panic recovered in "+what+"; answered 500", zap.Any("panic", v), zap.Stack("stack"))
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// decodeCallback reads an Events API body (a Socket Mode payload too).
func decodeCallback(body []byte) (callback, error) {
	var cb callback
	err := json.Unmarshal(body, &cb)
	return cb, err
}

// verify checks Slack's request signature: HMAC-SHA256 of "v0:ts:body" with
// the signing secret, and a timestamp within 5 minutes.
func (c *Channel) verify(h http.Header, body []byte) error {
	v, err := slack.NewSecretsVerifier(h, c.cfg.SigningSecret.Reveal())
	if err != nil {
		return err
	}
	if _, err := v.Write(body); err != nil {
		return err
	}
	return v.Ensure()
}

// handleEvent commits an event_callback's message. A payload we cannot read
// is logged and dropped (nil): redelivering it would not make it readable.
// A refusal that retrying cannot fix (no route for the channel) is logged
// and dropped too.
func (c *Channel) handleEvent(ctx context.Context, cb *callback) error {
	m, err := parseEvent(cb)
	if err != nil {
		c.log.Warn("malformed event skipped", zap.String("event_id", cb.EventID), zap.Error(err))
		return nil
	}
	if m == nil {
		return nil
	}
	err = c.intake(ctx, m)
	if connector.IsPermanent(err) {
		c.log.Error("event dropped", zap.String("event_id", cb.EventID), zap.Error(err))
		return nil
	}
	return err
}

// parseEvent returns the message an event_callback carries, nil for another
// event type.
func parseEvent(cb *callback) (*message, error) {
	if len(cb.Event) == 0 {
		return nil, errors.New("event_callback without an event")
	}
	var m message
	if err := json.Unmarshal(cb.Event, &m); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if m.Type != "message" {
		return nil, nil
	}
	return &m, nil
}
