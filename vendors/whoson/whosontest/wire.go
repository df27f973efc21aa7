package whosontest

import (
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// maxFrame is the read limit for one client frame: a Message line is at most
// 4000 characters (up to 16000 bytes of UTF-8), plus JSON overhead.
const maxFrame = 64 << 10

// maxLineChars is the longest Message text the server accepts, in characters.
const maxLineChars = 4000

// Event names sent by the server, as the vendor document spells them.
const (
	evConnected      = "connected"
	evError          = "error"
	evAccepted       = "accepted"
	evNotAccepted    = "notaccepted"
	evNewLine        = "newline"
	evQueue          = "queue"
	evOperatorJoined = "operatorjoined"
	evTyping         = "typing"
	evTypingStop     = "typingstop"
	evQuit           = "quit"
	evAcknowledged   = "acknowledged"
	evOperators      = "operators"
	evImage          = "image"
)

// Classname values of newline events.
const (
	classPaging   = "pagingmessage"
	classQueue    = "queuemessage"
	classSays     = "linesays"
	classVisitor  = "linev"
	classOperator = "lineo"
	classTrans    = "linet"
)

// Texts the server sends.
const (
	pagingText      = "Please wait. An operator will be with you shortly."
	notAcceptedText = "No operators are available at this time. Operators may only be available during office hours."
	leaveText       = " Please leave a message and we will get back to you."
	accessDenied    = "Access Denied"
	badAPIKey       = "The supplied API key is not valid."
	invalidCommand  = "Invalid command. Your IP address has been blacklisted."
	notConnected    = "Not connected. Send Connect first."
	noChat          = "There is no chat session."
	chatEnded       = "The chat session has ended."
	badSession      = "Invalid chat session ID."
	tooFewParams    = "Invalid parameters."
	lineTooLong     = "The line text exceeds 4000 characters."
	badFileType     = "You cannot upload files of this type."
	badSurvey       = "The survey XML is not valid."
	allowedFiles    = "pdf, doc, docx, xls, xlsx, pptx, rtf, txt, jpg, gif, bmp, png, xml"
	openingMessage  = "<h3>Welcome</h3>Please enter your name and click the <b>Start Chat</b> button to begin."
	closingMessage  = "Thank you for chatting to us today."
	serverBuild     = "19.1.385.800"
	// onePixelPNG is a 1x1 transparent PNG, the answer to every GetImage.
	onePixelPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)

// command is one client frame: {"Command": name, "Parameters": [strings] | null}.
type command struct {
	Command    *string  `json:"Command"`
	Parameters []string `json:"Parameters"`
}

// decodeCommand parses a client frame. It fails on anything but a JSON
// object with a string Command and a list of string Parameters (or null).
func decodeCommand(p []byte) (name string, params []string, err error) {
	var c command
	if err := json.Unmarshal(p, &c); err != nil {
		return "", nil, err
	}
	if c.Command == nil || *c.Command == "" {
		return "", nil, errors.New("no Command")
	}
	return *c.Command, c.Parameters, nil
}

// param returns params[i], or "" past the end.
func param(params []string, i int) string {
	if i < len(params) {
		return params[i]
	}
	return ""
}

// event is one server frame. ChatUid is null until the connection has a chat.
type event struct {
	EventName string  `json:"EventName"`
	ChatUid   *string `json:"ChatUid"`
	Data      any     `json:"Data"`
}

// newLine is the Data of a newline event.
type newLine struct {
	Classname string `json:"Classname"`
	Content   string `json:"Content"`
}

// operatorData is the Data of operatorjoined and an element of operators.
type operatorData struct {
	Name   string   `json:"Name"`
	Email  string   `json:"Email"`
	Phone  string   `json:"Phone"`
	Dept   string   `json:"Dept"`
	Skills []string `json:"Skills"`
	IsBot  string   `json:"IsBot"`
	Status string   `json:"Status"`
	Lang   string   `json:"Lang"`
}

// newOperatorData describes op as WhosOn does.
func newOperatorData(op Operator) operatorData {
	status := "Online"
	if op.NotAccepted {
		status = "Away"
	}
	email := strings.ToLower(strings.ReplaceAll(op.Name, " ", ".")) + "@example.com"
	return operatorData{Name: op.Name, Email: email, Skills: []string{"Sales"},
		IsBot: "False", Status: status, Lang: "en"}
}

// SurveyField is a pre-chat, post-chat or dynamic survey field as the vendor
// document describes it. It is the Data of a requestfield event.
type SurveyField struct {
	FieldName        string   `json:"FieldName"`
	FieldType        string   `json:"FieldType"`
	Enabled          bool     `json:"Enabled"`
	Prompt           string   `json:"Prompt"`
	Length           int      `json:"Length"`
	MultiLine        bool     `json:"MultiLine"`
	Lines            int      `json:"Lines"`
	Password         bool     `json:"Password"`
	ChangeCase       int      `json:"ChangeCase"`
	Mask             string   `json:"Mask"`
	DefaultValue     string   `json:"DefaultValue"`
	DefaultDateToday bool     `json:"DefaultDateToday"`
	DefaultTimeToday bool     `json:"DefaultTimeToday"`
	SelectType       string   `json:"SelectType"`
	ValidateLow      int      `json:"ValidateLow"`
	ValidateHigh     int      `json:"ValidateHigh"`
	RequiredField    bool     `json:"RequiredField"`
	SelectOptions    []string `json:"SelectOptions"`
	HTML5Type        string   `json:"HTML5Type"`
}

// textField returns an enabled text field.
func textField(name, typ, prompt string, length int, required bool) SurveyField {
	return SurveyField{FieldName: name, FieldType: typ, Enabled: true, Prompt: prompt,
		Length: length, ValidateLow: -1, ValidateHigh: -1, RequiredField: required,
		SelectOptions: []string{}, HTML5Type: "text"}
}

type survey struct {
	Enabled bool          `json:"Enabled"`
	Fields  []SurveyField `json:"Fields"`
}

type language struct {
	ISO2      string `json:"ISO2"`
	DisplayAs string `json:"DisplayAs"`
	Selected  bool   `json:"Selected"`
}

type translation struct {
	Enabled              bool       `json:"Enabled"`
	DefaultLanguage      string     `json:"DefaultLanguage"`
	Languages            []language `json:"Languages"`
	ShowLanguageSelector bool       `json:"ShowLanguageSelector"`
	ShowAsOverlay        bool       `json:"ShowAsOverlay"`
	ForceTranslation     bool       `json:"ForceTranslation"`
}

type geoIP struct {
	IPAddress    string  `json:"IPAddress"`
	IsProxy      bool    `json:"IsProxy"`
	IsSatellite  bool    `json:"IsSatellite"`
	PostCode     string  `json:"PostCode"`
	Latitude     float64 `json:"Latitude"`
	Longitude    float64 `json:"Longitude"`
	Radius       int     `json:"Radius"`
	ISP          string  `json:"ISP"`
	CountryISO   string  `json:"CountryISO"`
	CountryName  string  `json:"CountryName"`
	City         string  `json:"City"`
	MetroCode    string  `json:"MetroCode"`
	Organization string  `json:"Organization"`
	RegionName   string  `json:"RegionName"`
	RegionISO    string  `json:"RegionISO"`
}

// connectedData is the Data of the connected event.
type connectedData struct {
	SessionID             string      `json:"SessionID"`
	Domain                string      `json:"Domain"`
	SiteName              string      `json:"SiteName"`
	UTCBias               int         `json:"UTCBias"`
	OpeningMessage        string      `json:"OpeningMessage"`
	ClosingMessage        string      `json:"ClosingMessage"`
	ForwardingURL         string      `json:"ForwardingURL"`
	Layout                string      `json:"Layout"`
	Color                 string      `json:"Color"`
	Lang                  string      `json:"Lang"`
	Height                int         `json:"Height"`
	Width                 int         `json:"Width"`
	OperatorPreview       bool        `json:"OperatorPreview"`
	WebServicesURL        string      `json:"WebServicesURL"`
	GeoIP                 geoIP       `json:"GeoIP"`
	AllowedFileTypes      string      `json:"AllowedFileTypes"`
	PreChatSurvey         survey      `json:"PreChatSurvey"`
	PostChatSurvey        survey      `json:"PostChatSurvey"`
	Translation           translation `json:"Translation"`
	CallbackEnabled       bool        `json:"CallbackEnabled"`
	LeaveMessageEnabled   bool        `json:"LeaveMessageEnabled"`
	VisitorSingleUseFiles int         `json:"VisitorSingleUseFiles"`
	ServerBuild           string      `json:"ServerBuild"`
}

// newConnectedData describes the fake's one site to a new session.
func newConnectedData(cfg Config, sessionID, visitorIP string) connectedData {
	return connectedData{
		SessionID: sessionID, Domain: cfg.Domain, SiteName: "Example", OpeningMessage: openingMessage,
		ClosingMessage: closingMessage, Layout: "standard", Color: "office", Lang: "en",
		Height: 550, Width: 470, OperatorPreview: true,
		WebServicesURL: "https://" + cfg.Domain + "/whosoncharts/",
		GeoIP: geoIP{IPAddress: visitorIP, CountryISO: "GB", CountryName: "United Kingdom",
			Radius: 20, City: "Stoke-on-Trent", RegionName: "England", RegionISO: "ENG"},
		AllowedFileTypes: allowedFiles,
		PreChatSurvey: survey{Enabled: true, Fields: []SurveyField{
			textField("VisitorName", "name", "Please enter your name:", 100, true),
			textField("Company", "company", "Please enter your company name:", 200, false),
		}},
		PostChatSurvey: survey{Enabled: true, Fields: []SurveyField{
			textField("transEmail", "text", "Enter your email address to receive a transcript of this chat", 250, false),
		}},
		Translation: translation{Enabled: cfg.Operator.Translate != nil, DefaultLanguage: "en",
			Languages: []language{{ISO2: "en", DisplayAs: "English"}, {ISO2: "fr", DisplayAs: "French"}}},
		CallbackEnabled:     true,
		LeaveMessageEnabled: cfg.Operator.LeaveMessageEnabled,
		ServerBuild:         serverBuild,
	}
}

// imageData is the Data of the image event.
type imageData struct {
	Domain    string `json:"Domain"`
	ImageType int    `json:"ImageType"`
	Language  string `json:"Language"`
	Ext       string `json:"Ext"`
	Base64    string `json:"Base64"`
}

// parseFields parses a survey XML block,
// <Fields><Field><Name>n</Name><Value>v</Value></Field>...</Fields>.
// An empty block yields an empty map.
func parseFields(s string) (map[string]string, error) {
	fields := make(map[string]string)
	if strings.TrimSpace(s) == "" {
		return fields, nil
	}
	var doc struct {
		XMLName xml.Name `xml:"Fields"`
		Fields  []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"Field"`
	}
	if err := xml.Unmarshal([]byte(s), &doc); err != nil {
		return nil, err
	}
	for _, f := range doc.Fields {
		fields[f.Name] = f.Value
	}
	return fields, nil
}

// newUID returns a chat UID shaped like WhosOn's: ten lower-case letters and digits.
func newUID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newSessionID returns a random (version 4) UUID, the shape of a WhosOn SessionID.
func newSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
