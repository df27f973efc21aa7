package cention

import (
	"crypto/tls"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
)

// Config is one [vendors.cention.NAME] block. Every key and its default is in
// config.example.toml.
type Config struct {
	// BaseURL is the workspace URL, https://<cention api domain>/s/<workspace>.
	// The chat socket is BaseURL + "/external.ws", the HTTP calls live under
	// BaseURL + "/socket/external.api/".
	BaseURL string `toml:"base_url"`
	// Area is the Cention chat area id chats are started in.
	Area int `toml:"area"`
	// Origin is sent as the Origin header of every socket and HTTP call: the
	// domain registered with Cention for the Chat API ("https://www.example.com").
	Origin string `toml:"origin"`
	// CustomerName is a template over nameData: the client name the agent
	// sees. Empty output falls back to the phone number, then the address.
	CustomerName string `toml:"customer_name"`
	// Question is a template over nameData: the register frame's message
	// (the client's "initial question"), which the agent sees first. The
	// customer's own lines follow it as chat messages.
	Question string `toml:"question"`
	// OfflineMessages says the area takes offline messages: when the chat
	// is closed or nobody can take it, the customer is asked to leave one,
	// which is registered as an offline chat.
	OfflineMessages bool `toml:"offline_messages"`
	// ClosedNotice is told to the customer, before the core's no-agent
	// notice, when canchat says the area's chat is closed; "" says nothing.
	ClosedNotice string `toml:"closed_notice"`
	// ExpiredNotice is the customer's end notice when Cention expires the
	// chat (CHAT_EXPIRED).
	ExpiredNotice string `toml:"expired_notice"`
	// MaxAttachmentSize bounds a customer file uploaded to Cention; a larger
	// one, or one that cannot be fetched, is sent as its link.
	MaxAttachmentSize int64 `toml:"max_attachment_size"`
	// CAFile is a PEM bundle trusted for the Cention server (on-premises).
	CAFile string `toml:"ca_file"`
	// CA is the PEM text itself: the daemon's loader turns "ca_file" into
	// "ca" holding the file's content. Problems are reported as ca_file.
	CA string `toml:"ca"`
	// RequestTimeout bounds one HTTP call (canchat, agentlist, an upload).
	RequestTimeout time.Duration `toml:"request_timeout"`
	// HTTPConnections sizes the REST pool and the pool that fetches
	// customers' files, each: at most that many connections per host, as
	// many kept idle. A chat's WebSocket dials through the REST pool but
	// leaves it once open.
	HTTPConnections int `toml:"http_connections"`
	// ConnectTimeout bounds the dial plus the answer to register or resume.
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// SendTimeout bounds the wait for the server's confirmation of a line's
	// umid; past it Send fails and the core retries with the same umid.
	SendTimeout time.Duration `toml:"send_timeout"`
	// PingInterval is the WebSocket ping keepalive period; a ping not
	// answered within it drops the socket, which then reconnects.
	PingInterval time.Duration `toml:"ping_interval"`
	// HealthInterval is how often canchat is asked, for Health.
	HealthInterval time.Duration `toml:"health_interval"`
	// ReconnectInitial, ReconnectMax and ReconnectStable are the reconnect
	// policy of a chat's socket (connector.Reconnect).
	ReconnectInitial time.Duration `toml:"reconnect_initial"`
	ReconnectMax     time.Duration `toml:"reconnect_max"`
	ReconnectStable  time.Duration `toml:"reconnect_stable"`
}

func defaultConfig() Config {
	return Config{
		CustomerName:      "{{.Name}}",
		Question:          "{{.Name}} writes by {{.Channel}}.",
		ClosedNotice:      "Our chat is closed at the moment.",
		ExpiredNotice:     "The chat was closed after a period of inactivity. Write again any time to start a new one.",
		MaxAttachmentSize: 10 << 20,
		RequestTimeout:    10 * time.Second,
		HTTPConnections:   connector.DefaultConnections,
		ConnectTimeout:    10 * time.Second,
		SendTimeout:       10 * time.Second,
		PingInterval:      30 * time.Second,
		HealthInterval:    30 * time.Second,
		ReconnectInitial:  500 * time.Millisecond,
		ReconnectMax:      time.Minute,
		ReconnectStable:   30 * time.Second,
	}
}

// Defaults returns a *Config holding every default: connector.VendorKind's
// Defaults.
func Defaults() any {
	c := defaultConfig()
	return &c
}

func (c *Config) reconnect() connector.Reconnect {
	return connector.Reconnect{Initial: c.ReconnectInitial, Max: c.ReconnectMax, Stable: c.ReconnectStable}
}

// settings is a validated Config in the form the adapter uses.
type settings struct {
	Config
	base         *url.URL // no trailing slash
	nameTmpl     *connector.Template
	questionTmpl *connector.Template
	tls          *tls.Config
}

// nameData is what the customer_name and question templates see.
type nameData struct {
	Name     string
	Email    string
	Phone    string
	Language string
	Customer string // the address on the channel: a phone number, a Slack user or thread
	Channel  string // "sms.main"
}

func parseConfig(inst connector.Instance) (*settings, error) {
	s := &settings{Config: defaultConfig()}
	checked := false
	err := connector.DecodeBlock(inst, &s.Config, func(bad func(key, format string, args ...any)) {
		checked = true
		s.check(inst, bad)
	})
	if !checked {
		return nil, err
	}
	return s, err
}

func (s *settings) check(inst connector.Instance, bad func(key, format string, args ...any)) {
	s.checkBase(bad)
	if s.Area <= 0 {
		bad("area", "is required: the Cention chat area id, a positive number")
	}
	s.checkOrigin(bad)
	var err error
	if s.nameTmpl, err = connector.ParseTemplate("customer_name", s.CustomerName, nameData{}); err != nil {
		bad("customer_name", "%v", err)
	}
	if s.questionTmpl, err = connector.ParseTemplate("question", s.Question, nameData{}); err != nil {
		bad("question", "%v", err)
	}
	if len(s.ClosedNotice) > maxNotice {
		bad("closed_notice", "is longer than %d bytes", maxNotice)
	}
	if strings.TrimSpace(s.ExpiredNotice) == "" || len(s.ExpiredNotice) > maxNotice {
		bad("expired_notice", "must be a text of 1 to %d bytes", maxNotice)
	}
	if s.MaxAttachmentSize < 0 {
		bad("max_attachment_size", "must not be negative (0 sends every file as its link)")
	}
	s.checkDurations(bad)
	connector.CheckConnections(bad, s.HTTPConnections)
	s.reconnect().CheckKeys(bad)
	if err := s.buildTLS(); err != nil {
		bad("ca_file", "%v", err)
	}
}

// maxNotice bounds an operator's notice text.
const maxNotice = 1000

func (s *settings) checkBase(bad func(key, format string, args ...any)) {
	u, err := url.Parse(s.BaseURL)
	switch {
	case s.BaseURL == "":
		bad("base_url", "is required: the workspace URL, like \"https://cloud.cention.com/s/demo\"")
	case err != nil:
		bad("base_url", "is not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		bad("base_url", "must be an https:// URL with a host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		bad("base_url", "must not carry user info, a query or a fragment")
	case u.Scheme == "http" && !connector.IsLoopback(u.Hostname()):
		bad("base_url", "http:// to %s would carry every chat unencrypted; use https://", u.Hostname())
	default:
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		s.base = u
	}
}

func (s *settings) checkOrigin(bad func(key, format string, args ...any)) {
	u, err := url.Parse(s.Origin)
	switch {
	case s.Origin == "":
		bad("origin", "is required: the site domain registered with Cention, like \"https://www.example.com\"")
	case err != nil:
		bad("origin", "is not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		bad("origin", "must be scheme://host, like \"https://www.example.com\"")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		bad("origin", "must be scheme://host only, with no path, like \"https://www.example.com\"")
	default:
		s.Origin = u.Scheme + "://" + u.Host
	}
}

func (s *settings) checkDurations(bad func(key, format string, args ...any)) {
	connector.CheckMinDurations(bad, time.Millisecond,
		connector.KeyDuration{Key: "request_timeout", Val: s.RequestTimeout},
		connector.KeyDuration{Key: "connect_timeout", Val: s.ConnectTimeout},
		connector.KeyDuration{Key: "send_timeout", Val: s.SendTimeout},
		connector.KeyDuration{Key: "ping_interval", Val: s.PingInterval},
		connector.KeyDuration{Key: "health_interval", Val: s.HealthInterval})
}

func (s *settings) buildTLS() (err error) {
	s.tls, err = connector.ClientTLS(s.CAFile, s.CA, false)
	return err
}

// socketURL is the chat socket for token: base_url + /external.ws?token=.
func (s *settings) socketURL(token string) string {
	u := *s.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += "/external.ws"
	u.RawQuery = "token=" + url.QueryEscape(token)
	return u.String()
}

// apiURL is base_url + /socket/external.api/<call>?<query>.
func (s *settings) apiURL(call string, q url.Values) string {
	u := *s.base
	u.Path += "/socket/external.api/" + call
	u.RawQuery = q.Encode()
	return u.String()
}

// uploadURL is where a customer's file is posted (multipart).
func (s *settings) uploadURL() string {
	u := *s.base
	u.Path += uploadPath
	return u.String()
}

// uploadPath is the upload call under base_url, as Cention's own mobile SDK
// posts it.
const uploadPath = "/Cention/web/chat/client/uploadAttachment"

// host is the server's host name, for log lines.
func (s *settings) host() string { return s.base.Hostname() }

func (s *settings) data(c *connector.Conversation) nameData {
	return nameData{Name: c.Profile.Name, Email: c.Profile.Email, Phone: c.Profile.Phone,
		Language: c.Profile.Language, Customer: c.Customer, Channel: c.Channel}
}

// customerName is the client name the agent sees for c: the template, else
// the phone number, else the customer's address.
func (s *settings) customerName(c *connector.Conversation) string {
	var name string
	if s.nameTmpl != nil {
		name, _ = s.nameTmpl.Render(s.data(c)) // an error leaves "": the fallbacks below
	}
	if name = strings.TrimSpace(name); name != "" {
		return clip(name, maxName)
	}
	if p := customerPhone(c); p != "" {
		return p
	}
	return clip(c.Customer, maxName)
}

// question is the register frame's message for c; never empty.
func (s *settings) question(c *connector.Conversation) string {
	var q string
	if s.questionTmpl != nil {
		q, _ = s.questionTmpl.Render(s.data(c))
	}
	if q = strings.TrimSpace(q); q != "" {
		return clip(q, maxName*4)
	}
	return "A customer writes by " + c.Channel + "."
}

// maxName bounds the client name sent to Cention.
const maxName = 200

// customerPhone is the profile's phone number, else the address when it is
// one (an SMS customer; a Slack address is not a phone).
func customerPhone(c *connector.Conversation) string {
	if c.Profile.Phone != "" {
		return clip(c.Profile.Phone, 40)
	}
	if isPhone(c.Customer) {
		return c.Customer
	}
	return ""
}

func isPhone(s string) bool {
	if len(s) < 3 || len(s) > 20 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
