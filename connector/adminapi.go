package connector

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// The admin API's JSON shapes and the parsing of its query parameters. The
// shapes are a contract with scripts (and `connectord` itself): fields are
// added, never renamed. README.md ("Operating connectord") documents them.

// Bounds of the admin API's listings.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
	// defaultStuckAfter: a message waiting this long is stuck.
	defaultStuckAfter = time.Minute
	// defaultFailedWithin: a conversation with a failure this recent is stuck.
	defaultFailedWithin = time.Hour
	maxFilterValue      = 256 // bytes of a channel or vendor name
)

// StatusReport is GET /api/v1/status: the instance, its health, and the
// store's counts.
type StatusReport struct {
	Instance      string            `json:"instance"`
	Build         BuildInfo         `json:"build"`
	Time          time.Time         `json:"time"`
	Ready         bool              `json:"ready"`
	Store         Health            `json:"store"`
	Adapters      map[string]Health `json:"adapters"`
	Conversations map[State]int     `json:"conversations"`
	Outbox        OutboxStatus      `json:"outbox"`
	// Stuck counts the conversations the default stuck rule selects, at
	// most maxListLimit.
	Stuck StuckCount `json:"stuck"`
}

// OutboxStatus is the outbox part of StatusReport.
type OutboxStatus struct {
	Depth int `json:"depth"`
	// OldestAt is when the oldest waiting message was stored (absent when
	// the outbox is empty); OldestAgeSeconds is its age, 0 then.
	OldestAt         *time.Time `json:"oldest_at,omitempty"`
	OldestAgeSeconds float64    `json:"oldest_age_seconds"`
}

// StuckCount is how many conversations are stuck by the default rule.
type StuckCount struct {
	Count int `json:"count"`
	// AtLeast says the count stopped at the listing limit.
	AtLeast             bool    `json:"at_least"`
	WaitingOverSeconds  float64 `json:"waiting_over_seconds"`
	FailedWithinSeconds float64 `json:"failed_within_seconds"`
}

// ConversationView is a conversation as the admin API shows it: never its
// vendor session (tokens, cookies).
type ConversationView struct {
	ID           int64     `json:"id"`
	Channel      string    `json:"channel"`
	Customer     string    `json:"customer"`
	Vendor       string    `json:"vendor"`
	State        State     `json:"state"`
	EndReason    string    `json:"end_reason,omitempty"`
	Agent        string    `json:"agent,omitempty"`
	Profile      Profile   `json:"profile"`
	Owner        string    `json:"owner,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastActivity time.Time `json:"last_activity"`
}

func viewConversation(c *Conversation) ConversationView {
	return ConversationView{ID: c.ID, Channel: c.Channel, Customer: c.Customer, Vendor: c.Vendor, State: c.State,
		EndReason: c.EndReason, Agent: c.Agent, Profile: c.Profile, Owner: c.Owner,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, LastActivity: c.LastActivity}
}

// MessageView is a message as the admin API shows it, with its delivery
// state.
type MessageView struct {
	ID             int64        `json:"id"`
	ConversationID int64        `json:"conversation_id"`
	Direction      Direction    `json:"direction"`
	Kind           Kind         `json:"kind"`
	Text           string       `json:"text"`
	Notice         string       `json:"notice,omitempty"`
	Agent          string       `json:"agent,omitempty"`
	Attachments    []Attachment `json:"attachments,omitempty"`
	State          Delivery     `json:"state"`
	Reason         string       `json:"reason,omitempty"`
	RemoteID       string       `json:"remote_id,omitempty"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

func viewMessage(m *Message) MessageView {
	return MessageView{ID: m.ID, ConversationID: m.ConversationID, Direction: m.Direction, Kind: m.Kind, Text: m.Text,
		Notice: m.Notice, Agent: m.Agent, Attachments: m.Attachments, State: m.State, Reason: m.Reason,
		RemoteID: m.RemoteID, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func viewConversations(cs []*Conversation) []ConversationView {
	out := make([]ConversationView, len(cs))
	for i, c := range cs {
		out[i] = viewConversation(c)
	}
	return out
}

func viewMessages(ms []*Message) []MessageView {
	out := make([]MessageView, len(ms))
	for i, m := range ms {
		out[i] = viewMessage(m)
	}
	return out
}

// ConversationList is GET /api/v1/conversations. NextBefore, when set, is
// the before= of the next page.
type ConversationList struct {
	Conversations []ConversationView `json:"conversations"`
	NextBefore    int64              `json:"next_before,omitempty"`
}

// ConversationDetail is GET /api/v1/conversations/{id} (with its messages,
// by id) and the answer of POST .../end (without).
type ConversationDetail struct {
	Conversation ConversationView `json:"conversation"`
	// Messages are the newest maxDetailMessages, oldest first;
	// MessagesOmitted counts the older ones left out.
	Messages        []MessageView `json:"messages,omitempty"`
	MessagesOmitted int           `json:"messages_omitted,omitempty"`
}

// maxDetailMessages bounds the messages in a conversation's detail, so
// that one very long conversation cannot make an answer of any size.
const maxDetailMessages = 1000

// MessageDetail is the answer of POST /api/v1/messages/{id}/retry.
type MessageDetail struct {
	Message MessageView `json:"message"`
}

// badParam is a query parameter the API refuses: 400, naming it.
type badParam struct{ name, msg string }

func (e *badParam) Error() string { return e.name + ": " + e.msg }

// isListParam reports whether GET /api/v1/conversations takes the query
// parameter: a misspelt one is refused rather than ignored, since ignoring
// it would list more than the operator asked for.
func isListParam(name string) bool {
	switch name {
	case "state", "channel", "vendor", "older_than", "newer_than", "stuck", "stuck_after", "failed_within", "limit", "before":
		return true
	}
	return false
}

// parseListQuery turns GET /api/v1/conversations's parameters into a
// ConversationQuery, at now. Every problem names its parameter.
func parseListQuery(v url.Values, now time.Time) (ConversationQuery, error) {
	q := ConversationQuery{Limit: defaultListLimit}
	for name, vals := range v {
		if !isListParam(name) {
			return q, &badParam{name, "unknown parameter"}
		}
		if len(vals) > 1 {
			return q, &badParam{name, "given more than once"}
		}
	}
	var err error
	if q.State, q.Open, err = parseState(v.Get("state")); err != nil {
		return q, err
	}
	for _, p := range []struct {
		name string
		into *string
	}{{"channel", &q.Channel}, {"vendor", &q.Vendor}} {
		if *p.into = v.Get(p.name); len(*p.into) > maxFilterValue {
			return q, &badParam{p.name, fmt.Sprintf("longer than %d bytes", maxFilterValue)}
		}
	}
	if q.Limit, err = intParam(v, "limit", defaultListLimit, 1, maxListLimit); err != nil {
		return q, err
	}
	before, err := intParam(v, "before", 0, 1, 1<<62)
	if err != nil {
		return q, err
	}
	q.Before = int64(before)
	if err := parseAges(v, now, &q); err != nil {
		return q, err
	}
	return q, parseStuck(v, now, &q)
}

func parseState(s string) (State, bool, error) {
	switch State(s) {
	case "":
		return "", false, nil
	case "open":
		return "", true, nil
	case StatePending, StateQueued, StateActive, StateEnded:
		return State(s), false, nil
	}
	return "", false, &badParam{"state", fmt.Sprintf("%q is not one of pending, queued, active, ended, open", s)}
}

// parseAges reads older_than and newer_than: how long ago the conversation
// was created.
func parseAges(v url.Values, now time.Time, q *ConversationQuery) error {
	older, err := durationParam(v, "older_than", 0)
	if err != nil {
		return err
	}
	newer, err := durationParam(v, "newer_than", 0)
	if err != nil {
		return err
	}
	if older > 0 {
		q.CreatedBefore = now.Add(-older)
	}
	if newer > 0 {
		q.CreatedAfter = now.Add(-newer)
	}
	return nil
}

// parseStuck reads stuck, stuck_after and failed_within.
func parseStuck(v url.Values, now time.Time, q *ConversationQuery) error {
	stuck := false
	if s := v.Get("stuck"); s != "" {
		var err error
		if stuck, err = strconv.ParseBool(s); err != nil {
			return &badParam{"stuck", fmt.Sprintf("%q is not true or false", s)}
		}
	}
	after, err := durationParam(v, "stuck_after", defaultStuckAfter)
	if err != nil {
		return err
	}
	within, err := durationParam(v, "failed_within", defaultFailedWithin)
	if err != nil {
		return err
	}
	if !stuck {
		for _, name := range []string{"stuck_after", "failed_within"} {
			if v.Has(name) {
				return &badParam{name, "needs stuck=true"}
			}
		}
		return nil
	}
	q.Stuck = stuckRule(now, after, within)
	return nil
}

func stuckRule(now time.Time, after, within time.Duration) *StuckRule {
	return &StuckRule{WaitingBefore: now.Add(-after), FailedSince: now.Add(-within)}
}

// durationParam reads a positive duration like "90s"; def when absent.
func durationParam(v url.Values, name string, def time.Duration) (time.Duration, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, &badParam{name, fmt.Sprintf("%q is not a positive duration like \"90s\" or \"2h\"", s)}
	}
	return d, nil
}

// intParam reads an integer in [lo, hi]; def when absent.
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, &badParam{name, fmt.Sprintf("%q is not an integer from %d to %d", s, lo, hi)}
	}
	return n, nil
}

// parseID reads a path id: a positive integer.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, &badParam{"id", fmt.Sprintf("%q is not a positive integer", s)}
	}
	return id, nil
}

// errorStatus is the HTTP status an error of the API answers with.
func errorStatus(err error) int {
	var bp *badParam
	switch {
	case errors.As(err, &bp):
		return 400
	case errors.Is(err, ErrNotFound):
		return 404
	case errors.Is(err, ErrWrongState):
		return 409
	}
	return 500
}
