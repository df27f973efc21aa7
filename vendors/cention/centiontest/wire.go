package centiontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Client frame types, as Cention's mobile SDK spells them.
const (
	frameRegister   = "register"
	frameResume     = "resume"
	frameMessage    = "chat message"
	frameAttachment = "add attachment"
	frameClose      = "close chat"
)

// Server event names. The first group is what the SDK shows on the wire;
// the second is the vendor document's vocabulary, which the fake speaks
// with Config.DocumentEvents (and for the events that exist only there).
const (
	evRegister         = "register"
	evNewMessage       = "CHAT_NEW_MESSAGE"
	evAgentUnavailable = "agent unavailable"

	evChatMessage   = "chat message"
	evMessageSent   = "message sent"
	evMessageAcked  = "message acked"
	evAgentPreview  = "agent preview"
	evQueue         = "queue"
	evQueueFull     = "queue full"
	evChatClosed    = "chat closed"
	evFinishSession = "finish chat session"
)

// In-text system events: the whole text of a SYSTEM message is a JSON object.
const (
	OwnerEndsChat  = "OWNER_ENDS_CHAT"
	ClientEndsChat = "CLIENT_ENDS_CHAT"
	ChatExpired    = "CHAT_EXPIRED"
)

// FilePrefix starts the text of a file notice; a JSON object follows it.
const FilePrefix = "\u0001JSON"

// fileUploadEvent is the "event" of a file notice.
const fileUploadEvent = "FILE_UPLOAD"

// Error strings the server answers with.
const (
	errNoSession   = "no session"
	errInvalidArea = "invalid area"
)

// Sender values of a message object (the document's field).
const (
	SenderClient = "CLIENT"
	SenderAgent  = "AGENT"
	SenderSystem = "SYSTEM"
)

// clientFrame is one client frame: {"type": name, "data": {...}, "id": n}.
type clientFrame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	ID   json.RawMessage `json:"id"`
}

// errNoType is returned for a frame that is JSON but names no type.
var errNoType = errors.New("frame has no type")

// decodeFrame parses a client frame. It fails on anything but a JSON object
// with a non-empty string "type"; data and id are kept raw.
func decodeFrame(p []byte) (clientFrame, error) {
	var f clientFrame
	if err := json.Unmarshal(p, &f); err != nil {
		return clientFrame{}, err
	}
	if f.Type == "" {
		return clientFrame{}, errNoType
	}
	return f, nil
}

// registerData is the data of a register frame.
type registerData struct {
	Area            flexInt         `json:"area"`
	Name            string          `json:"name"`
	Email           string          `json:"email"`
	Phone           string          `json:"phone"`
	Message         string          `json:"message"`
	ExternalData    json.RawMessage `json:"externalData"`
	BaseURL         string          `json:"baseURL"`
	OfflineChat     bool            `json:"offlineChat"`
	TrackClientURL  bool            `json:"trackClientUrl"`
	ClientDeviceRaw json.RawMessage `json:"clientDeviceInfo"`
}

// messageData is the data of a chat message frame: id is the client's
// unsent message id (umid).
type messageData struct {
	ID      string  `json:"id"`
	Message string  `json:"message"`
	Mcount  flexInt `json:"mcount"`
}

// attachmentData is the data of an add attachment frame.
type attachmentData struct {
	Area          flexInt         `json:"area"`
	File          json.RawMessage `json:"file"`
	SessionSecret string          `json:"sessionSecret"`
}

// flexInt decodes a JSON number or a numeric string (clients differ); any
// other value decodes as 0 without failing the frame.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		*f = 0
		return nil
	}
	*f = flexInt(n)
	return nil
}

// serverFrame is one server frame: {"event": name, "args": [...]}.
type serverFrame struct {
	Event string `json:"event"`
	Args  []any  `json:"args"`
}

// session is args[0] of a successful register (and resume) answer.
type session struct {
	SessionID     int64  `json:"sessionId"`
	SessionSecret string `json:"sessionSecret"`
	AreaID        int    `json:"areaId"`
	ClientName    string `json:"clientName"`
}

// errorArg is args[0] of a refused register or resume.
type errorArg struct {
	Error string `json:"error"`
}

// wireMessage is one message object of a batch. It carries both the SDK's
// fields (fromClient, agent, aid, client) and the document's (sender), so a
// client may read either.
type wireMessage struct {
	ID         int64  `json:"id"`
	Umid       string `json:"umid"`
	Text       string `json:"text"`
	FromClient bool   `json:"fromClient"`
	Sender     string `json:"sender"`
	Agent      string `json:"agent"`
	AID        int    `json:"aid"`
	Client     string `json:"client"`
	Sent       int64  `json:"sent"`
	SentHuman  string `json:"sentHuman"`
}

// sdkBatch is args[0] of CHAT_NEW_MESSAGE.
type sdkBatch struct {
	SessionID int64         `json:"sessionId"`
	ErrandID  int64         `json:"errandId"`
	Session   batchSession  `json:"session"`
	Messages  []wireMessage `json:"messages"`
}

type batchSession struct {
	Client string `json:"client"`
	Agent  string `json:"agent"`
}

// docBatch is args[0] of the document's "chat message".
type docBatch struct {
	Agent  string        `json:"agent"`
	Chat   []wireMessage `json:"chat"`
	Client string        `json:"client"`
}

// messageSent is args[0] of the document's "message sent". Its id is a
// string: normally the message id, "already-seen-" + umid for a repeat.
type messageSent struct {
	ID        string `json:"id"`
	Umid      string `json:"umid"`
	Sent      int64  `json:"sent"`
	SentHuman string `json:"sentHuman"`
}

// messageAcked is args[0] of the document's "message acked".
type messageAcked struct {
	IDs []int64 `json:"ids"`
}

// agentPreview is args[0] of "agent preview".
type agentPreview struct {
	MessageLen int `json:"messageLen"`
}

// alreadySeen is the document's "message sent" id for a repeated umid.
func alreadySeen(umid string) string { return "already-seen-" + umid }

// systemEventText is the text of a SYSTEM message carrying an in-text event.
func systemEventText(event string) string {
	b, _ := json.Marshal(struct {
		Event string `json:"event"`
	}{event})
	return string(b)
}

// FileNotice is the JSON after FilePrefix in a file notice.
type FileNotice struct {
	Event        string `json:"event"` // "FILE_UPLOAD"
	FileDownload string `json:"fileDownload"`
	FileName     string `json:"fileName"`
	SizeHuman    string `json:"sizeHuman"`
}

// fileNoticeText is the text of a file notice message.
func fileNoticeText(name, url, size string) string {
	b, _ := json.Marshal(FileNotice{Event: fileUploadEvent, FileDownload: url, FileName: name, SizeHuman: size})
	return FilePrefix + string(b)
}

// ParseFileNotice returns the notice in a message text that starts with
// FilePrefix.
func ParseFileNotice(text string) (FileNotice, bool) {
	rest, ok := strings.CutPrefix(text, FilePrefix)
	if !ok {
		return FileNotice{}, false
	}
	var n FileNotice
	if err := json.Unmarshal([]byte(rest), &n); err != nil {
		return FileNotice{}, false
	}
	return n, true
}

// sizeHuman renders a byte count as Cention's widget does, roughly.
func sizeHuman(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// human is the HH:MM of sentHuman.
func human(t time.Time) string { return t.Format("15:04") }
