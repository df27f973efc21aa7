package customerchannel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The Socket.IO events of the Customer Channel API.
const (
	evRegister     = "registerConnector"
	evJoin         = "joinConversation"
	evSend         = "sendMessage"
	evEnd          = "endConversation"
	evArrived      = "messageArrived"
	evConversation = "conversationInfo"
)

// Message types and activity types (the union of the spec's two tables).
const (
	typeChat     = "ChatMessage"
	typeActivity = "ActivityMessage"

	actGreetings          = "greetings"
	actTyping             = "typing"
	actParticipantAdded   = "participantAdded"
	actParticipantRemoved = "participantRemoved"
	actParticipantJoined  = "participantJoined"
	actParticipantLeft    = "participantLeft"
	actEnd                = "endOfConversation"
	actHandOff            = "handOff"
	actNoAgent            = "noAgentAvailable"
)

// participant is a bot or user in a conversation.
type participant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// attachment is a file that travels with a ChatMessage, by URL.
type attachment struct {
	Type         string `json:"type,omitempty"`
	Name         string `json:"name,omitempty"`
	ContentURL   string `json:"contentUrl"`
	ThumbnailURL string `json:"thumbnailUrl,omitempty"`
}

// message is a ChatMessage or an ActivityMessage, as sent and received.
type message struct {
	Type           string          `json:"type"`
	ID             string          `json:"id,omitempty"`
	ConversationID string          `json:"conversationId"`
	From           participant     `json:"from"`
	To             []participant   `json:"to,omitempty"`
	Text           string          `json:"text,omitempty"`
	RefID          string          `json:"refId,omitempty"`
	Tag            string          `json:"tag,omitempty"`
	Attachments    []attachment    `json:"attachments,omitempty"`
	ActivityType   string          `json:"activityType,omitempty"`
	Info           json.RawMessage `json:"info,omitempty"`
	Timestamp      string          `json:"timestamp,omitempty"`
}

// conversationInfo is what a join answers with; messages is the history.
type conversationInfo struct {
	Conversation struct {
		ID             string `json:"id"`
		ConversationID string `json:"conversationId"`
	} `json:"conversation"`
	ConversationID string    `json:"conversationId"`
	Messages       []message `json:"messages"`
	// Participants is who is in the chat now: the spec calls it
	// "participant: list of participants", the simulator "participants",
	// each {id, name, role}; read leniently (roster).
	Participants json.RawMessage `json:"participants"`
	Participant  json.RawMessage `json:"participant"`
}

// member is one entry of conversationInfo's participant list. Role is the
// simulator's ("customer", "bot", "agent"); the spec's Participant object
// has only id and name.
type member struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// agent returns the agent in the chat now: the last participant whose role
// is "agent" (any case), false when there is none. A list without roles
// names no agent: the bot and the agents cannot be told apart.
func (info *conversationInfo) agent() (participant, bool) {
	for _, raw := range []json.RawMessage{info.Participants, info.Participant} {
		var list []member
		if json.Unmarshal(raw, &list) != nil {
			continue
		}
		for i := len(list) - 1; i >= 0; i-- {
			if m := list[i]; strings.EqualFold(m.Role, "agent") && (m.ID != "" || m.Name != "") {
				return participant{ID: m.ID, Name: m.Name}, true
			}
		}
	}
	return participant{}, false
}

// chatID is the conversation the answer is about: its conversation's id,
// else the conversationId beside it or in its first message; "" when none.
func (info *conversationInfo) chatID() string {
	for _, id := range []string{info.Conversation.ID, info.Conversation.ConversationID, info.ConversationID} {
		if id != "" {
			return id
		}
	}
	for _, m := range info.Messages {
		if m.ConversationID != "" {
			return m.ConversationID
		}
	}
	return ""
}

// initRequest is the body of POST /api/customer/init.
type initRequest struct {
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Channel   string `json:"channel"`
	Language  string `json:"language,omitempty"`
	RefID     string `json:"refId"`
	Subject   string `json:"subject,omitempty"`
	RequestID string `json:"requestId"`
	Timestamp string `json:"timestamp"`
}

// initResponse is init's answer; keys are matched case-insensitively (the
// spec writes "Participant" and "conversationId").
type initResponse struct {
	ConversationID string      `json:"conversationId"`
	Participant    participant `json:"participant"`
	RequestID      string      `json:"requestId"`
}

// decodePayload reads an event argument that is a JSON object or a JSON
// string holding one (servers send both).
func decodePayload(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = json.RawMessage(strings.TrimSpace(s))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("payload is not a JSON object: %.40q", raw)
	}
	return json.Unmarshal(raw, v)
}

// infoParticipant reads the participant an activity is about: info's
// participant (or info itself), else the sender.
func (m *message) infoParticipant() participant {
	var in struct {
		Participant participant `json:"participant"`
		ID          string      `json:"id"`
		Name        string      `json:"name"`
	}
	_ = json.Unmarshal(m.Info, &in)
	switch {
	case in.Participant.ID != "" || in.Participant.Name != "":
		return in.Participant
	case in.ID != "" || in.Name != "":
		return participant{ID: in.ID, Name: in.Name}
	}
	return m.From
}

// typingOn reads a typing activity's state: info.typing, default on.
func (m *message) typingOn() bool {
	var in struct {
		Typing *bool `json:"typing"`
	}
	if json.Unmarshal(m.Info, &in) == nil && in.Typing != nil {
		return *in.Typing
	}
	return true
}
