package whoson

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The Chat API frames (the API's "Sending Commands" and "Receiving Data";
// README.md's Protocol section): commands go out as {"Command","Parameters"}, events come
// in as {"EventName","ChatUid","Data"}. Command names are case-insensitive on
// the server; event names are compared case-insensitively here.

// command is one frame to the server. Parameters are case-sensitive strings;
// nil encodes as null, as the spec asks for a command without parameters.
type command struct {
	Command    string   `json:"Command"`
	Parameters []string `json:"Parameters"`
}

// Event names, lower case.
const (
	evConnected      = "connected"
	evError          = "error"
	evAccepted       = "accepted"
	evNotAccepted    = "notaccepted"
	evNewLine        = "newline"
	evOperatorJoined = "operatorjoined"
	evTyping         = "typing"
	evTypingStop     = "typingstop"
	evQueue          = "queue"
	evQuit           = "quit"
	evRequestFile    = "requestfile"
	evRequestField   = "requestfield"
	evAcknowledged   = "acknowledged"
)

// Bounds of what the server's events put in the store, the logs and the
// customer's messages. The frame itself may be up to readLimit (4 MiB);
// real values are far shorter than these.
const (
	maxEventName  = 64
	maxChatUID    = 128
	maxSessionID  = 128
	maxLineText   = 32 << 10 // an operator line, relayed to the customer
	maxClassname  = 256
	maxAgentName  = 128
	maxNoticeText = 2 << 10 // a field prompt, a notaccepted or queue text
	maxErrorText  = 512     // an error event's text, logged and in end reasons
	// maxQueuePosition is the largest queue position believed; a larger
	// number is garbage, not a position.
	maxQueuePosition = 100000
)

// clipText cuts s to at most n bytes without splitting a rune, with "…"
// marking the cut (within the n bytes).
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// event is one frame from the server, its name lower-cased.
type event struct {
	Name    string
	ChatUID string
	Data    json.RawMessage
}

// decodeEvent parses a frame. A frame that is not a JSON object with an
// EventName, or whose EventName or ChatUid is longer than any real one, is
// an error; the caller logs and skips it.
func decodeEvent(b []byte) (event, error) {
	var raw struct {
		EventName *string
		ChatUid   json.RawMessage
		Data      json.RawMessage
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return event{}, fmt.Errorf("malformed event frame: %w", err)
	}
	if raw.EventName == nil || strings.TrimSpace(*raw.EventName) == "" {
		return event{}, fmt.Errorf("event frame without an EventName")
	}
	ev := event{
		Name:    strings.ToLower(strings.TrimSpace(*raw.EventName)),
		ChatUID: scalarString(raw.ChatUid),
		Data:    raw.Data,
	}
	switch {
	case len(ev.Name) > maxEventName:
		return event{}, fmt.Errorf("event frame with an EventName of %d bytes", len(ev.Name))
	case len(ev.ChatUID) > maxChatUID:
		return event{}, fmt.Errorf("%s event frame with a ChatUid of %d bytes", ev.Name, len(ev.ChatUID))
	}
	return ev, nil
}

// text is the event's Data as a string: a JSON string as is, a number or a
// boolean in its JSON spelling, anything else (null, object, list) empty.
func (e event) text() string { return scalarString(e.Data) }

// scalarString renders a JSON scalar as a string; null, objects and lists
// render empty.
func scalarString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	case '{', '[', 'n':
		return ""
	default:
		return string(raw)
	}
}

// object decodes Data as a JSON object into v. A Data that is a JSON string
// holding an object is accepted too.
func (e event) object(v any) error {
	raw := bytes.TrimSpace(e.Data)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("%s event: Data is not an object", e.Name)
	}
	return json.Unmarshal(raw, v)
}

// flexBool is a boolean the server may send as true, "True" or "true" (and
// false, "False", "", null). Anything unrecognised reads as false.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.Trim(strings.TrimSpace(string(data)), `"`)
	switch strings.ToLower(s) {
	case "true", "1", "yes", "y":
		*b = true
	default:
		*b = false
	}
	return nil
}

// connectedData is what the adapter uses of the connected event.
type connectedData struct {
	SessionID           string
	LeaveMessageEnabled flexBool
	ForwardingURL       string
	Translation         struct {
		Enabled flexBool
	}
}

// lineData is a newline event's Data.
type lineData struct {
	Classname string
	Content   string
}

// lineOf decodes a newline event's Data, its Content clipped to
// maxLineText and its Classname to maxClassname.
func lineOf(ev event) (lineData, error) {
	var l lineData
	if err := ev.object(&l); err != nil {
		return lineData{}, err
	}
	l.Content, l.Classname = clipText(l.Content, maxLineText), clipText(l.Classname, maxClassname)
	return l, nil
}

// operatorOf decodes an operatorjoined event's Data, the Name clipped to
// maxAgentName.
func operatorOf(ev event) (operatorData, error) {
	var op operatorData
	if err := ev.object(&op); err != nil {
		return operatorData{}, err
	}
	op.Name = clipText(strings.TrimSpace(op.Name), maxAgentName)
	return op, nil
}

// fieldOf decodes a requestfield event's Data, its texts clipped.
func fieldOf(ev event) (fieldData, error) {
	var f fieldData
	if err := ev.object(&f); err != nil {
		return fieldData{}, err
	}
	f.FieldName, f.Prompt = clipText(f.FieldName, maxAgentName), clipText(f.Prompt, maxNoticeText)
	return f, nil
}

// connectedOf decodes a connected event's Data; a SessionID that is missing
// or longer than maxSessionID is an error.
func connectedOf(ev event) (connectedData, error) {
	var d connectedData
	if err := ev.object(&d); err != nil {
		return connectedData{}, err
	}
	switch {
	case d.SessionID == "":
		return connectedData{}, errors.New("connected event without a SessionID")
	case len(d.SessionID) > maxSessionID:
		return connectedData{}, fmt.Errorf("connected event with a SessionID of %d bytes", len(d.SessionID))
	}
	d.ForwardingURL = "" // unused; not kept
	return d, nil
}

// classes splits a Classname ("lineo final") into lower-case words.
func (l lineData) classes() []string { return strings.Fields(strings.ToLower(l.Classname)) }

// operatorData is an operatorjoined event's Data.
type operatorData struct {
	Name  string
	IsBot flexBool
}

// fieldData is a requestfield event's Data.
type fieldData struct {
	FieldName string
	Prompt    string
}

// connectCmd starts a session. The seven parameters are the spec's: auth
// string, domain, visitor IP (blank: the socket's), visitor cookie session
// id, user agent, referrer, API key. When resuming, the stored ChatUid is
// added as an eighth parameter; the server matches the visitor by IP and
// cookie, and a server that keeps the chat answers connected with its
// ChatUid.
func connectCmd(s *settings, cookie, chatUID string) command {
	p := []string{s.AuthString.Reveal(), s.Domain, "", cookie, s.UserAgent, "", s.APIKey.Reveal()}
	if chatUID != "" {
		p = append(p, chatUID)
	}
	return command{Command: "Connect", Parameters: p}
}

// helloParams is what the Hello command carries.
type helloParams struct {
	VisitorName string
	Department  string
	SessionID   string
	Cookie      string
	Language    string
	Translation bool
	Fields      []field
}

// helloCmd asks for a chat: visitor name, domain, department, operator
// (blank: routing rules), session id, visitor IP (blank), cookie, language,
// translation, pre-chat survey XML.
func helloCmd(s *settings, h helloParams) command {
	return command{Command: "Hello", Parameters: []string{
		h.VisitorName, s.Domain, h.Department, "", h.SessionID, "", h.Cookie,
		h.Language, strconv.FormatBool(h.Translation), fieldsXML(h.Fields),
	}}
}

// messageCmd sends one visitor line (at most maxLine characters).
func messageCmd(s *settings, sessionID, text string) command {
	return command{Command: "Message", Parameters: []string{sessionID, s.Domain, text}}
}

// quitCmd ends the chat from the visitor side.
func quitCmd(s *settings, sessionID string) command {
	return command{Command: "Quit", Parameters: []string{sessionID, s.Domain}}
}

// leftMessage is what the LeaveMessage command carries.
type leftMessage struct {
	ChatUID, SessionID, Name, Department, Email, Phone, Text string
}

// leaveMessageCmd leaves a message for operators: chat uid, session id,
// domain, visitor IP (blank), name, department, email, phone, text.
func leaveMessageCmd(s *settings, m leftMessage) command {
	return command{Command: "LeaveMessage", Parameters: []string{
		m.ChatUID, m.SessionID, s.Domain, "", m.Name, m.Department, m.Email, m.Phone, m.Text,
	}}
}

// field is one pre-chat survey field.
type field struct{ Name, Value string }

// fieldsXML renders survey fields as the spec's
// <Fields><Field><Name>..</Name><Value>..</Value></Field>...</Fields>, with
// names and values XML-escaped. Fields with an empty value are left out.
func fieldsXML(fields []field) string {
	var b strings.Builder
	b.WriteString("<Fields>")
	for _, f := range fields {
		if f.Value == "" {
			continue
		}
		b.WriteString("<Field><Name>")
		xmlEscape(&b, f.Name)
		b.WriteString("</Name><Value>")
		xmlEscape(&b, f.Value)
		b.WriteString("</Value></Field>")
	}
	b.WriteString("</Fields>")
	return b.String()
}

func xmlEscape(b *strings.Builder, s string) {
	// EscapeText only fails when the writer does; a strings.Builder does not.
	_ = xml.EscapeText(b, []byte(s))
}
