package connector

import (
	"fmt"
	"reflect"
)

// Notices are the texts connectord itself sends to customers, as
// text/template strings over NoticeData. An empty template sends nothing.
type Notices struct {
	Queued        string `toml:"queued"`
	AgentJoined   string `toml:"agent_joined"`
	Transferred   string `toml:"transferred"`
	QueuePosition string `toml:"queue_position"`
	NoAgent       string `toml:"no_agent"`
	LeaveMessage  string `toml:"leave_message"`
	MessageLeft   string `toml:"message_left"`
	EndedByAgent  string `toml:"ended_by_agent"`
	// EndedByCustomer answers a customer who ended the chat (Slack's end keyword).
	EndedByCustomer string `toml:"ended_by_customer"`
	// NewConversation tells a customer who wrote where an ended chat lived (a
	// Slack thread) that a new chat starts.
	NewConversation string `toml:"new_conversation"`
	// EndedByOperator tells a customer that an operator ended the chat
	// (connectord end, or the admin API).
	EndedByOperator string `toml:"ended_by_operator"`
	EndedTimeout    string `toml:"ended_timeout"`
	EndedFailed     string `toml:"ended_failed"`
	DeliveryFailed  string `toml:"delivery_failed"`
	// Busy tells a customer that their chat waits because the channel has
	// conversation.max_open chats open.
	Busy string `toml:"busy"`
	// Reconnected tells a customer that the vendor lost their chat and a new
	// one is being opened; they are not told that it ended.
	Reconnected string `toml:"reconnected"`
	// Undelivered tells a customer which of their lines no agent could take
	// ({{.Text}} quotes the start of each).
	Undelivered string `toml:"undelivered"`
	// OptedOutAgent is the line the agent gets when the customer opted out
	// of the channel's messages (an SMS STOP): the chat ends after it.
	OptedOutAgent string `toml:"opted_out_agent"`
}

// NoticeData is what a notice template can use.
type NoticeData struct {
	Agent    string // the agent's name
	Position int    // queue position, 0 when unknown
	Text     string // the vendor's own words, when it gave any
	Reason   string // why it ended or failed
}

// DefaultNotices are plain English defaults.
func DefaultNotices() Notices {
	return Notices{
		Queued:          "Thanks, we have your message. An agent will be with you shortly.",
		AgentJoined:     "You are now chatting with {{.Agent}}.",
		Transferred:     "You have been transferred to {{.Agent}}.",
		QueuePosition:   "{{if .Text}}{{.Text}}{{else if .Position}}You are number {{.Position}} in the queue.{{end}}",
		NoAgent:         "Sorry, no agent is available right now. Please try again later.",
		LeaveMessage:    "Sorry, no agent is available right now. Reply with a message and we will pass it on.",
		MessageLeft:     "Thanks, your message has been passed on. We will get back to you.",
		EndedByAgent:    "The agent has ended the chat. Write again any time to start a new one.",
		EndedByCustomer: "You ended the chat. Write again any time to start a new one.",
		NewConversation: "The earlier chat here had ended, so this starts a new one.",
		EndedByOperator: "This chat was closed by our support team. Write again any time to start a new one.",
		EndedTimeout:    "This chat was closed after a period of inactivity. Write again any time to start a new one.",
		EndedFailed:     "Sorry, we could not keep this chat going ({{.Reason}}). Write again to start a new one.",
		DeliveryFailed:  "Sorry, your last message could not be delivered to the agent ({{.Reason}}).",
		Busy:            "All our agents' lines are busy right now. Your message is kept and you will be connected as soon as one is free.",
		Reconnected:     "We were briefly disconnected. An agent will be with you shortly.",
		Undelivered:     "Sorry, no agent could take these messages: {{.Text}}",
		OptedOutAgent:   "The customer opted out of messages on this channel (they texted STOP): nothing more can reach them, so the chat ends.",
	}
}

// compile parses every template; the Router keeps the result.
func (n Notices) compile() (map[string]*Template, []error) {
	out := map[string]*Template{}
	var errs []error
	v := reflect.ValueOf(n)
	for i := 0; i < v.NumField(); i++ {
		key := v.Type().Field(i).Tag.Get("toml")
		t, err := ParseTemplate(key, v.Field(i).String(), NoticeData{})
		if err != nil {
			errs = append(errs, &ConfigError{Path: "notices." + key, Msg: err.Error()})
			continue
		}
		out[key] = t
	}
	return out, errs
}

func (n Notices) validate() []error {
	_, errs := n.compile()
	return errs
}

// noticeSet renders compiled notices.
type noticeSet map[string]*Template

func (s noticeSet) render(key string, d NoticeData) (string, error) {
	t, ok := s[key]
	if !ok {
		return "", fmt.Errorf("no notice %q", key)
	}
	text, err := t.Render(d)
	if err != nil {
		return "", fmt.Errorf("notice %s: %w", key, err)
	}
	return text, nil
}
