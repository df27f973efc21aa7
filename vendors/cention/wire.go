package cention

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Client frame types (the "type" of {"type","data","id"}).
const (
	typeRegister   = "register"
	typeResume     = "resume"
	typeMessage    = "chat message"
	typeAttachment = "add attachment"
	typeClose      = "close chat"
)

// Server events (the "event" of {"event","args"}). The first group is what
// Cention's mobile SDK handles; the second is the JavaScript API document's
// names, also accepted.
const (
	evRegister    = "register"
	evResume      = "resume"
	evNewMessage  = "CHAT_NEW_MESSAGE"
	evOwnerEnds   = "OWNER_ENDS_CHAT"
	evClientEnds  = "CLIENT_ENDS_CHAT"
	evExpired     = "CHAT_EXPIRED"
	evUnavailable = "agent unavailable"

	evChatMessage = "chat message"
	evSent        = "message sent"
	evAcked       = "message acked"
	evPreview     = "agent preview"
	evQueue       = "queue"
	evQueueFull   = "queue full"
	evClosed      = "chat closed"
	evFinish      = "finish chat session"
)

// errNoSession is the server's refusal of a resume: it no longer has the
// chat of the token.
const errNoSession = "no session"

// fileEvent is the system event of a file notice inside a message text.
const fileEvent = "FILE_UPLOAD"

// jsonPrefix starts a message text that carries a JSON system event (a file
// notice) instead of words.
const jsonPrefix = "\u0001JSON"

// Bounds of what a frame may hold. A socket's frame is at most readLimit
// bytes; inside it, the decoders keep at most these.
const (
	readLimit      = 4 << 20
	maxEventName   = 64
	maxArgs        = 64
	maxBatch       = 1000 // messages in one CHAT_NEW_MESSAGE
	maxID          = 128  // a message id, umid, session id or secret
	maxAgentName   = 200
	maxFileName    = 500
	maxFileURL     = 4096
	maxAckedIDs    = 1000
	maxQueueNumber = 100000
)

// clientFrame is what we write: {"type": name, "data": {...}, "id": n}.
type clientFrame struct {
	Type string `json:"type"`
	Data any    `json:"data,omitempty"`
	ID   int64  `json:"id"`
}

// registerData starts a chat (or, with OfflineChat, leaves a message).
type registerData struct {
	Area           int    `json:"area"`
	Name           string `json:"name"`
	Email          string `json:"email"`
	Phone          string `json:"phone"`
	Message        string `json:"message"`
	ExternalData   string `json:"externalData"`
	BaseURL        string `json:"baseURL"`
	OfflineChat    bool   `json:"offlineChat"`
	TrackClientURL bool   `json:"trackClientUrl"`
}

// resumeData continues the chat of the socket's token.
type resumeData struct {
	Href           string `json:"href"`
	TrackClientURL bool   `json:"trackClientUrl"`
}

// messageData is one customer line: the umid is ours, the server confirms
// it and drops a line whose umid it has seen.
type messageData struct {
	ID      string `json:"id"`
	Message string `json:"message"`
	MCount  int64  `json:"mcount"`
}

// attachmentData tells the chat about a file uploaded for it.
type attachmentData struct {
	Area          int             `json:"area"`
	File          json.RawMessage `json:"file"`
	SessionSecret string          `json:"sessionSecret"`
}

// fileNotice is the JSON after jsonPrefix in a file's chat message.
type fileNotice struct {
	Event        string `json:"event"`
	FileDownload string `json:"fileDownload"`
	FileName     string `json:"fileName"`
	SizeHuman    string `json:"sizeHuman,omitempty"`
}

func encodeFrame(f clientFrame) ([]byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s frame: %w", f.Type, err)
	}
	return b, nil
}

// fileMessage is the text of the chat message announcing an uploaded file.
func fileMessage(n fileNotice) string {
	n.Event = fileEvent
	b, _ := json.Marshal(n) // strings only: cannot fail
	return jsonPrefix + string(b)
}

// serverFrame is one decoded {"event","args"} frame.
type serverFrame struct {
	Event string
	Args  []json.RawMessage
}

// decodeFrame reads a server frame. Its args stay raw: each event's reader
// below takes what it needs, bounded.
func decodeFrame(b []byte) (serverFrame, error) {
	var raw struct {
		Event string            `json:"event"`
		Args  []json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return serverFrame{}, fmt.Errorf("cention frame: %w", err)
	}
	if raw.Event == "" || len(raw.Event) > maxEventName {
		return serverFrame{}, fmt.Errorf("cention frame: event name of %d bytes", len(raw.Event))
	}
	if len(raw.Args) > maxArgs {
		raw.Args = raw.Args[:maxArgs]
	}
	return serverFrame{Event: raw.Event, Args: raw.Args}, nil
}

// arg0 is the frame's first argument, or nil.
func (f serverFrame) arg0() json.RawMessage {
	if len(f.Args) == 0 {
		return nil
	}
	return f.Args[0]
}

// flexString takes a JSON string, number or bool as text (ids come as
// either); null and other values are "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9' || string(b) == "true" || string(b) == "false":
		*s = flexString(b)
	default:
		*s = "" // an object or array where a scalar was expected: ignored
	}
	return nil
}

// flexBool is true for JSON true, a non-zero number or a non-empty string
// other than "false" and "0" (the SDK's own reading is JavaScript's).
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*v = s != "" && s != "false" && s != "0"
	return nil
}

// flexNumber takes a JSON number or a numeric string; anything else is 0.
type flexNumber float64

func (n *flexNumber) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || f != f { // NaN
		f = 0
	}
	*n = flexNumber(f)
	return nil
}

// registerAnswer is the answer to register or resume.
type registerAnswer struct {
	SessionID string
	Secret    string
	Error     string
}

// decodeAnswer reads a register/resume answer's first argument: a session,
// or an error ("no session" for a refused resume).
func decodeAnswer(arg json.RawMessage) (registerAnswer, bool) {
	var raw struct {
		SessionID     flexString `json:"sessionId"`
		SessionSecret flexString `json:"sessionSecret"`
		Error         flexString `json:"error"`
	}
	if len(arg) == 0 || json.Unmarshal(arg, &raw) != nil {
		return registerAnswer{}, false
	}
	a := registerAnswer{SessionID: clip(string(raw.SessionID), maxID), Secret: clip(string(raw.SessionSecret), maxID),
		Error: clip(string(raw.Error), maxNotice)}
	return a, a.SessionID != "" || a.Error != ""
}

// chatMsg is one message of a batch.
type chatMsg struct {
	ID         string  // Cention's message id ("" when it gave none)
	UMID       string  // the client's umid; for an agent's line, whatever it holds
	Sender     string  // CLIENT, AGENT or SYSTEM (may be empty)
	FromClient bool    // the customer's own line
	Agent      string  // the writer's name on an agent line
	Sent       float64 // unix time
	Text       string
}

// fromCustomer reports whether the message is one of the customer's own.
func (m chatMsg) fromCustomer() bool {
	return m.FromClient || strings.EqualFold(m.Sender, "CLIENT")
}

// batch is what a CHAT_NEW_MESSAGE (or "chat message") frame carries: the
// messages, sorted by sent time, and the assigned agent when it names one.
type batch struct {
	Agent    string
	Messages []chatMsg
}

type rawMsg struct {
	ID         flexString `json:"id"`
	UMID       flexString `json:"umid"`
	Sender     flexString `json:"sender"`
	FromClient flexBool   `json:"fromClient"`
	Agent      flexString `json:"agent"`
	Sent       flexNumber `json:"sent"`
	Text       flexString `json:"text"`
}

// container is an argument that holds messages: the SDK's {messages: [...]}
// (whose session names the agent) and the document's chat message object
// {agent, chat: [...], client}.
type container struct {
	Agent   flexString `json:"agent"`
	Session struct {
		Agent flexString `json:"agent"`
	} `json:"session"`
	Messages []json.RawMessage `json:"messages"`
	Chat     []json.RawMessage `json:"chat"`
	Text     *json.RawMessage  `json:"text"`
}

// decodeBatch reads the messages of a CHAT_NEW_MESSAGE or "chat message"
// frame. Each argument is a container of messages, a list of messages or a
// message itself; other values are skipped. At most maxBatch messages are
// kept, sorted by sent time (the server's order where equal).
func decodeBatch(args []json.RawMessage) batch {
	var out batch
	var add func(raw json.RawMessage, depth int)
	add = func(raw json.RawMessage, depth int) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || len(out.Messages) >= maxBatch || depth > 2 {
			return
		}
		if raw[0] == '[' {
			var list []json.RawMessage
			if json.Unmarshal(raw, &list) == nil {
				for _, r := range list {
					add(r, depth+1)
				}
			}
			return
		}
		var c container
		if raw[0] != '{' || json.Unmarshal(raw, &c) != nil {
			return
		}
		if c.Text == nil { // a container
			for _, a := range []flexString{c.Agent, c.Session.Agent} {
				if a := clip(strings.TrimSpace(string(a)), maxAgentName); a != "" {
					out.Agent = a
				}
			}
			for _, r := range append(c.Messages, c.Chat...) {
				add(r, depth+1)
			}
			return
		}
		if m, ok := decodeMsg(raw); ok {
			out.Messages = append(out.Messages, m)
		}
	}
	for _, a := range args {
		add(a, 0)
	}
	sort.SliceStable(out.Messages, func(i, j int) bool { return out.Messages[i].Sent < out.Messages[j].Sent })
	return out
}

func decodeMsg(raw json.RawMessage) (chatMsg, bool) {
	var r rawMsg
	if json.Unmarshal(raw, &r) != nil {
		return chatMsg{}, false
	}
	m := chatMsg{ID: clip(string(r.ID), maxID), UMID: clip(string(r.UMID), maxID), Sender: clip(string(r.Sender), 16),
		FromClient: bool(r.FromClient), Agent: clip(strings.TrimSpace(string(r.Agent)), maxAgentName),
		Sent: float64(r.Sent), Text: string(r.Text)}
	if m.ID == "0" {
		m.ID = ""
	}
	return m, true
}

// decodeSent reads "message sent": the umid the server took, and its id
// for it (or "already-seen-<umid>" when the umid was a repeat).
func decodeSent(arg json.RawMessage) (id, umid string, ok bool) {
	var raw struct {
		ID   flexString `json:"id"`
		UMID flexString `json:"umid"`
	}
	if len(arg) == 0 || json.Unmarshal(arg, &raw) != nil {
		return "", "", false
	}
	id, umid = clip(string(raw.ID), maxID+16), clip(string(raw.UMID), maxID)
	if umid == "" {
		umid = strings.TrimPrefix(id, "already-seen-")
		if umid == id {
			return "", "", false
		}
	}
	return id, umid, umid != ""
}

// decodeAcked reads "message acked": the ids the agent received.
func decodeAcked(arg json.RawMessage) []string {
	var raw struct {
		IDs []flexString `json:"ids"`
	}
	if len(arg) == 0 || json.Unmarshal(arg, &raw) != nil {
		return nil
	}
	var out []string
	for _, id := range raw.IDs {
		if len(out) == maxAckedIDs {
			break
		}
		if s := clip(string(id), maxID); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// decodePreview reads "agent preview": whether the agent is typing.
func decodePreview(arg json.RawMessage) bool {
	var raw struct {
		MessageLen flexNumber `json:"messageLen"`
	}
	if len(arg) == 0 || json.Unmarshal(arg, &raw) != nil {
		return len(arg) > 0 // a preview we cannot read still says "typing"
	}
	return raw.MessageLen > 0
}

// decodeQueue reads "queue": the queue number, bare or in an object; 0
// when there is none or it is implausible.
func decodeQueue(arg json.RawMessage) int {
	var n flexNumber
	if err := json.Unmarshal(arg, &n); err != nil || n == 0 {
		var raw struct {
			Queue    flexNumber `json:"queue"`
			Position flexNumber `json:"position"`
		}
		if json.Unmarshal(arg, &raw) != nil {
			return 0
		}
		n = max(raw.Queue, raw.Position)
	}
	if n < 1 || n > maxQueueNumber || n != flexNumber(int(n)) {
		return 0
	}
	return int(n)
}

// sysEvent is a system event inside a message text.
type sysEvent struct {
	Event string
	File  fileNotice // for FILE_UPLOAD
}

// errNotEvent marks a text that is words, not a system event.
var errNotEvent = errors.New("not a system event")

// decodeSystemText reads a message text that is a system event: a JSON
// object with an "event" ({"event":"OWNER_ENDS_CHAT"}), or a file notice
// after jsonPrefix. Plain words return errNotEvent. A text that starts like
// an event but cannot be read is still an event (Event ""), never words.
func decodeSystemText(text string) (sysEvent, error) {
	t := strings.TrimSpace(text)
	prefixed := strings.HasPrefix(t, jsonPrefix)
	if prefixed {
		t = strings.TrimSpace(t[len(jsonPrefix):])
	}
	if !prefixed && (!strings.HasPrefix(t, "{") || !strings.HasSuffix(t, "}")) {
		return sysEvent{}, errNotEvent
	}
	var raw struct {
		Event        flexString `json:"event"`
		FileDownload flexString `json:"fileDownload"`
		FileName     flexString `json:"fileName"`
		SizeHuman    flexString `json:"sizeHuman"`
	}
	if err := json.Unmarshal([]byte(t), &raw); err != nil {
		if prefixed {
			return sysEvent{}, nil
		}
		return sysEvent{}, errNotEvent // words that happen to be in braces
	}
	if raw.Event == "" && !prefixed {
		return sysEvent{}, errNotEvent // a JSON-looking line with no event: the agent's words
	}
	return sysEvent{Event: clip(string(raw.Event), maxEventName), File: fileNotice{
		FileDownload: clip(string(raw.FileDownload), maxFileURL), FileName: clip(string(raw.FileName), maxFileName),
		SizeHuman: clip(string(raw.SizeHuman), 32)}}, nil
}

// canChat is canchat's answer.
type canChat struct {
	ChatOpen        bool
	AgentsAvailable *int // nil when the answer leaves it out
	Resumable       bool
	Error           string
}

func decodeCanChat(b []byte) (canChat, error) {
	var raw struct {
		ChatOpen        flexBool    `json:"chatOpen"`
		AgentsAvailable *flexNumber `json:"agentsAvailable"`
		Resumable       flexBool    `json:"resumable"`
		Error           flexString  `json:"error"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return canChat{}, fmt.Errorf("canchat answer: %w", err)
	}
	c := canChat{ChatOpen: bool(raw.ChatOpen), Resumable: bool(raw.Resumable), Error: clip(string(raw.Error), maxNotice)}
	if raw.AgentsAvailable != nil {
		n := int(min(max(*raw.AgentsAvailable, -1), 1<<20))
		c.AgentsAvailable = &n
	}
	return c, nil
}

// decodeAgentList reads agentlist's answer: how many agents it lists.
func decodeAgentList(b []byte) (int, error) {
	var raw struct {
		Agents []json.RawMessage `json:"agents"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return 0, fmt.Errorf("agentlist answer: %w", err)
	}
	return len(raw.Agents), nil
}

// uploaded is the upload call's answer: kept raw for the add attachment
// frame, with the fields the file notice needs.
type uploaded struct {
	Raw       json.RawMessage
	Download  string
	Name      string
	SizeHuman string
}

func decodeUpload(b []byte) (uploaded, error) {
	var raw struct {
		Download  flexString `json:"download"`
		Value     flexString `json:"value"`
		SizeHuman flexString `json:"sizeHuman"`
		Error     flexString `json:"error"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return uploaded{}, fmt.Errorf("upload answer: %w", err)
	}
	if raw.Error != "" {
		return uploaded{}, fmt.Errorf("upload refused: %s", clip(string(raw.Error), 200))
	}
	if raw.Download == "" {
		return uploaded{}, errors.New("upload answer has no download link")
	}
	return uploaded{Raw: json.RawMessage(bytes.Clone(b)), Download: clip(string(raw.Download), maxFileURL),
		Name: clip(string(raw.Value), maxFileName), SizeHuman: clip(string(raw.SizeHuman), 32)}, nil
}
