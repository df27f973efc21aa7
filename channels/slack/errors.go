package slack

import (
	"errors"
	"math/rand/v2"

	"github.com/slack-go/slack"

	"github.com/connectord/connectord/connector"
)

// Slack error codes that mean the token, not the request, is the problem: an
// operator must act, so messages wait in the outbox and Health says why.
var authCodes = map[string]bool{
	"invalid_auth": true, "not_authed": true, "token_revoked": true, "token_expired": true,
	"account_inactive": true, "missing_scope": true, "not_allowed_token_type": true,
	"team_access_not_granted": true, "ekm_access_denied": true,
}

// Error codes that a retry may get past.
var transientCodes = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true,
	"request_timeout": true, "ratelimited": true,
}

// slackCode returns the error code of a Slack "ok": false answer, or "".
func slackCode(err error) string {
	var r slack.SlackErrorResponse
	if errors.As(err, &r) {
		return r.Err
	}
	return ""
}

// authError reports whether Slack refused the token.
func authError(err error) bool { return authCodes[slackCode(err)] }

// unknownOutcome reports whether a call may or may not have taken effect:
// Slack answered with a 5xx or did not answer at all. A POST that ended so
// must not be sent again blindly (Slack has no idempotency key).
func unknownOutcome(err error) bool {
	if err == nil {
		return false
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return false // refused before doing anything
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Code >= 500
	}
	return slackCode(err) == "" // no Slack answer: the network
}

// classify maps a Web API error to what the router should do: wait as
// asked (429), retry (network, 5xx, an operator's token problem), or give up
// (any other refusal: channel_not_found, is_archived, msg_too_long...).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return connector.RetryAfter(err, rl.RetryAfter)
	}
	code := slackCode(err)
	if code == "" || authCodes[code] || transientCodes[code] {
		return err
	}
	return connector.Permanent(err)
}

// jitter is a random number in [0, 1).
func jitter() float64 { return rand.Float64() }
