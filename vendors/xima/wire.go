package xima

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The Web Chat API's JSON, as the document shows it, and the messages Xima
// puts on a chat's serverToClientQueue.

// chatSessionRequest is the ClientChatSessionRequest of POST /chat/apiqueue.
type chatSessionRequest struct {
	InstallationID string     `json:"installationId"`
	Email          string     `json:"email"`
	Name           string     `json:"name"`
	Skill          string     `json:"skill"`
	APIKey         string     `json:"apiKey"`
	CustomChatInfo []chatInfo `json:"customChatInfo,omitempty"`
}

// chatInfo is one customChatInfo entry: shown on the agent's screen.
type chatInfo struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// chatSession is what the adapter uses of a ChatSession answer.
type chatSession struct {
	ID    string // the chat session id
	Queue string // serverToClientQueue.url
	Agent string
}

// maxID bounds a chat session id and a message id; maxQueueURL an SQS queue
// URL (AWS queue names are at most 80 characters).
const (
	maxID       = 200
	maxQueueURL = 1024
	maxAgent    = 200
)

// errMalformed marks JSON from Xima that can never be used.
var errMalformed = errors.New("malformed")

// decodeChatSession reads a ChatSession answer: {"sessionDetails": {...}}
// as documented, or the details at the top level. The document's own
// examples have trailing commas and a // comment; those are tolerated.
func decodeChatSession(raw []byte) (chatSession, error) {
	type queue struct {
		URL string `json:"url"`
	}
	type details struct {
		ID                  string `json:"id"`
		Agent               string `json:"agent"`
		ServerToClientQueue *queue `json:"serverToClientQueue"`
	}
	var doc struct {
		SessionDetails *details `json:"sessionDetails"`
		details
	}
	if err := unmarshalRelaxed(raw, &doc); err != nil {
		return chatSession{}, err
	}
	d := doc.details
	if doc.SessionDetails != nil {
		d = *doc.SessionDetails
	}
	cs := chatSession{ID: strings.TrimSpace(d.ID), Agent: clip(strings.TrimSpace(d.Agent), maxAgent)}
	if d.ServerToClientQueue != nil {
		cs.Queue = strings.TrimSpace(d.ServerToClientQueue.URL)
	}
	switch {
	case cs.ID == "" || len(cs.ID) > maxID:
		return chatSession{}, fmt.Errorf("%w chat session: no usable id", errMalformed)
	case cs.Queue == "" || len(cs.Queue) > maxQueueURL:
		return chatSession{}, fmt.Errorf("%w chat session: no usable serverToClientQueue url", errMalformed)
	}
	return cs, nil
}

// sqsCredentials is GET /chat/queue/auth's answer.
type sqsCredentials struct {
	AccessKey string `json:"sqsAccessKey"`
	SecretKey string `json:"sqsSecretKey"`
	Region    string `json:"sqsRegion"`
}

func decodeCredentials(raw []byte) (sqsCredentials, error) {
	var c sqsCredentials
	if err := unmarshalRelaxed(raw, &c); err != nil {
		return sqsCredentials{}, err
	}
	c.AccessKey, c.SecretKey, c.Region = strings.TrimSpace(c.AccessKey), strings.TrimSpace(c.SecretKey), strings.TrimSpace(c.Region)
	if c.AccessKey == "" || c.SecretKey == "" || len(c.AccessKey) > 256 || len(c.SecretKey) > 1024 || len(c.Region) > 64 {
		return sqsCredentials{}, fmt.Errorf("%w SQS credentials: no usable sqsAccessKey and sqsSecretKey", errMalformed)
	}
	return c, nil
}

// The message types of the serverToClientQueue.
const (
	msgEstimatedWait = "ESTIMATED_WAIT_TIME"
	msgChatStarted   = "CHAT_STARTED"
	msgTransferred   = "CHAT_TRANSFERRED"
	msgText          = "CHAT_TEXT"
	msgTyping        = "AGENT_TYPING"
	msgScreenshot    = "TAKE_SCREENSHOT"
	msgEnded         = "CHAT_ENDED"
	msgForceClose    = "FORCE_CLOSE"
	msgDown          = "MULTIMEDIA_DOWN"
)

// message is one decoded queue message.
type message struct {
	Type   string
	Wait   string // ESTIMATED_WAIT_TIME
	Agent  string // CHAT_STARTED agent, CHAT_TRANSFERRED newAgent
	Text   string // CHAT_TEXT
	Typing bool   // AGENT_TYPING
	// ID is the SNS envelope's MessageId when the body was one ("sns:..."),
	// else "": the SQS MessageId is used.
	ID string
}

// maxBody is SQS's largest message (1 MiB); a body over it is refused.
const maxBody = 1 << 20

// decodeMessage reads a queue message body: the document's JSON, or an SNS
// notification envelope around it (a queue subscribed to a topic delivers
// those unless raw delivery is on).
func decodeMessage(body []byte) (message, error) {
	if len(body) > maxBody {
		return message{}, fmt.Errorf("%w message: %d bytes", errMalformed, len(body))
	}
	var env struct {
		Type      string  `json:"Type"`
		MessageID string  `json:"MessageId"`
		Message   *string `json:"Message"`
		TopicArn  string  `json:"TopicArn"`
	}
	var m message
	if json.Unmarshal(body, &env) == nil && env.Message != nil && env.Type == "Notification" {
		if env.MessageID != "" && len(env.MessageID) <= maxID {
			m.ID = "sns:" + env.MessageID
		}
		body = []byte(*env.Message)
	}
	var doc struct {
		Type          string          `json:"type"`
		EstimatedWait string          `json:"estimatedWait"`
		Agent         string          `json:"agent"`
		NewAgent      string          `json:"newAgent"`
		Text          *string         `json:"text"`
		IsTyping      json.RawMessage `json:"isTyping"`
	}
	if err := unmarshalRelaxed(body, &doc); err != nil {
		return message{}, err
	}
	m.Type = strings.ToUpper(strings.TrimSpace(doc.Type))
	switch m.Type {
	case "":
		return message{}, fmt.Errorf("%w message: no type", errMalformed)
	case msgText:
		if doc.Text == nil {
			return message{}, fmt.Errorf("%w CHAT_TEXT: no text", errMalformed)
		}
		m.Text = *doc.Text
	case msgEstimatedWait:
		m.Wait = clip(strings.TrimSpace(doc.EstimatedWait), maxAgent)
	case msgChatStarted:
		m.Agent = clip(strings.TrimSpace(doc.Agent), maxAgent)
	case msgTransferred:
		m.Agent = clip(strings.TrimSpace(doc.NewAgent), maxAgent)
	case msgTyping:
		m.Typing = isTrue(doc.IsTyping)
	}
	if len(m.Type) > 64 {
		m.Type = m.Type[:64]
	}
	return m, nil
}

// isTrue reads one of the document's booleans: "true" or "True" as a
// string (as documented), or a JSON true.
func isTrue(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	s = strings.Trim(s, `"`)
	return strings.EqualFold(strings.TrimSpace(s), "true")
}

// unmarshalRelaxed decodes JSON, and when that fails, the same text with
// // comments and trailing commas taken out (the document's examples have
// both). Anything else stays an error.
func unmarshalRelaxed(raw []byte, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	if relaxed, changed := relaxJSON(raw); changed && json.Unmarshal(relaxed, v) == nil {
		return nil
	}
	return fmt.Errorf("%w JSON: %w", errMalformed, err)
}

// relaxJSON drops // line comments and commas before } or ] outside
// strings; it never makes the text longer.
func relaxJSON(raw []byte) ([]byte, bool) {
	out := make([]byte, 0, len(raw))
	inString, escaped, changed := false, false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(raw) && raw[i+1] == '/':
			for i < len(raw) && raw[i] != '\n' {
				i++
			}
			changed = true
			if i < len(raw) {
				out = append(out, '\n')
			}
			continue
		case c == '}' || c == ']':
			trimmed := bytes.TrimRight(out, " \t\r\n")
			if len(trimmed) > 0 && trimmed[len(trimmed)-1] == ',' {
				out = append(trimmed[:len(trimmed)-1], out[len(trimmed):]...)
				changed = true
			}
		}
		out = append(out, c)
	}
	return out, changed
}
