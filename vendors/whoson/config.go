package whoson

import (
	"crypto/tls"
	"net/url"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// Config is one [vendors.whoson.NAME] block. Every key and its default is in
// config.example.toml.
type Config struct {
	// URL is the Chat API WebSocket, ws://host:8009 or wss://host:8009.
	URL string `toml:"url"`
	// Domain is a site domain set up in WhosOn.
	Domain string `toml:"domain"`
	// AuthString is the server's Authentication String.
	AuthString connector.Secret `toml:"auth_string"`
	// APIKey is the key Parker Software issues for the Chat API.
	APIKey connector.Secret `toml:"api_key"`
	// Department routes chats to one department; empty means all.
	Department string `toml:"department"`
	// Language is the visitor's two-letter language code.
	Language string `toml:"language"`
	// Translation asks WhosOn to translate; the translated line (linet) is
	// relayed instead of the operator's own.
	Translation bool `toml:"translation"`
	// VisitorName is a text/template over connector.Profile; an empty result
	// falls back to the customer's phone number or address.
	VisitorName string `toml:"visitor_name"`
	// UserAgent is sent with Connect and on the WebSocket handshake.
	UserAgent string `toml:"user_agent"`
	// ConnectTimeout bounds the dial plus the wait for the connected event.
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// AcceptTimeout bounds the wait for accepted or notaccepted after Hello.
	AcceptTimeout time.Duration `toml:"accept_timeout"`
	// PingInterval is the WebSocket ping keepalive period.
	PingInterval time.Duration `toml:"ping_interval"`
	// QueueNoticeInterval is the least time between two queue notices.
	QueueNoticeInterval time.Duration `toml:"queue_notice_interval"`
	// CAFile is a PEM bundle trusted for a wss:// server (self-signed WhosOn).
	CAFile string `toml:"ca_file"`
	// CA is the PEM text itself. The daemon's config loader turns every
	// "X_file" key into "X" holding the file's content, so a ca_file written in
	// the configuration arrives here; problems are still reported as ca_file.
	CA string `toml:"ca"`
	// InsecureSkipVerify turns certificate checks off; never in production.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// ReconnectInitial, ReconnectMax and ReconnectStable are the reconnect
	// policy of a chat's socket (connector.Reconnect): the first wait after a
	// drop, the longest, and how long a socket must stay up before the next
	// drop starts from ReconnectInitial again. They are three plain fields,
	// not an embedded connector.Reconnect, so that the loader checks each one
	// as it checks every other duration key of the block.
	ReconnectInitial time.Duration `toml:"reconnect_initial"`
	ReconnectMax     time.Duration `toml:"reconnect_max"`
	ReconnectStable  time.Duration `toml:"reconnect_stable"`
	// AllowInsecureTransport permits a ws:// url to a host other than the
	// loopback interface, over which Connect carries auth_string and api_key
	// in clear. Default false: such a url is a configuration error.
	AllowInsecureTransport bool `toml:"allow_insecure_transport"`
}

// defaultConfig is Config with every default of config.example.toml.
func defaultConfig() Config {
	return Config{
		Language:            "en",
		VisitorName:         "{{.Name}}",
		UserAgent:           "connectord",
		ConnectTimeout:      10 * time.Second,
		AcceptTimeout:       30 * time.Second,
		PingInterval:        30 * time.Second,
		QueueNoticeInterval: time.Minute,
		ReconnectInitial:    100 * time.Millisecond,
		ReconnectMax:        time.Minute,
		ReconnectStable:     10 * time.Second,
	}
}

// Defaults returns a *Config holding every default: connector.VendorKind's
// Defaults.
func Defaults() any {
	c := defaultConfig()
	return &c
}

// reconnect is the chat sockets' reconnect policy.
func (c *Config) reconnect() connector.Reconnect {
	return connector.Reconnect{Initial: c.ReconnectInitial, Max: c.ReconnectMax, Stable: c.ReconnectStable}
}

// settings is a validated Config in the form the adapter uses.
type settings struct {
	Config
	nameTmpl *connector.Template
	tls      *tls.Config // nil for ws://
}

// parseConfig decodes and validates inst's block, returning every problem
// joined, each as a connector.ConfigError naming its key. Secret values never
// appear in the errors.
func parseConfig(inst connector.Instance) (*settings, error) {
	s := &settings{Config: defaultConfig()}
	checked := false
	err := connector.DecodeBlock(inst, &s.Config, func(bad func(key, format string, args ...any)) {
		checked = true
		s.check(inst, bad)
	})
	if !checked { // the block could not be decoded at all
		return nil, err
	}
	return s, err
}

// check validates the decoded Config and prepares what the adapter uses.
func (s *settings) check(inst connector.Instance, bad func(key, format string, args ...any)) {
	s.checkURL(bad)
	if strings.TrimSpace(s.Domain) == "" {
		bad("domain", "is required")
	}
	if s.AuthString.Empty() {
		bad("auth_string", "is required")
	}
	if !isLanguage(s.Language) {
		bad("language", "must be a two-letter language code, not %q", s.Language)
	}
	s.Language = strings.ToLower(s.Language)
	if t, err := parseNameTemplate(s.VisitorName); err != nil {
		bad("visitor_name", "%v", err)
	} else {
		s.nameTmpl = t
	}
	s.checkDurations(bad)
	s.reconnect().CheckKeys(bad)
	if err := s.buildTLS(); err != nil {
		bad("ca_file", "%v", err)
	}
}

func (s *settings) checkURL(bad func(key, format string, args ...any)) {
	if s.URL == "" {
		bad("url", "is required (ws://host:port or wss://host:port)")
		return
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		bad("url", "is not a URL: %v", err)
		return
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		bad("url", "must start with ws:// or wss://, not %q", u.Scheme+"://")
	}
	if u.Host == "" {
		bad("url", "has no host")
		return
	}
	if u.Scheme == "ws" && !connector.IsLoopback(u.Hostname()) && !s.AllowInsecureTransport {
		bad("url", "ws:// to %s would send auth_string and api_key unencrypted; use wss://, "+
			"or set allow_insecure_transport = true to accept that", u.Hostname())
	}
}

// insecureTransport reports whether the url sends the credentials in clear
// over a network: ws:// to a host that is not loopback.
func (s *settings) insecureTransport() bool {
	u, err := url.Parse(s.URL)
	return err == nil && u.Scheme == "ws" && !connector.IsLoopback(u.Hostname())
}

func (s *settings) checkDurations(bad func(key, format string, args ...any)) {
	connector.CheckMinDurations(bad, time.Millisecond,
		connector.KeyDuration{Key: "connect_timeout", Val: s.ConnectTimeout},
		connector.KeyDuration{Key: "accept_timeout", Val: s.AcceptTimeout},
		connector.KeyDuration{Key: "ping_interval", Val: s.PingInterval},
		connector.KeyDuration{Key: "queue_notice_interval", Val: s.QueueNoticeInterval})
}

// buildTLS prepares the client TLS settings for a wss:// URL.
func (s *settings) buildTLS() (err error) {
	s.tls, err = connector.ClientTLS(s.CAFile, s.CA, s.InsecureSkipVerify)
	return err
}

// isLanguage reports whether code is two ASCII letters.
func isLanguage(code string) bool {
	if len(code) != 2 {
		return false
	}
	for _, r := range code {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// parseNameTemplate parses the visitor_name template and runs it once over
// every field so a misspelt field fails here rather than at the first chat.
func parseNameTemplate(text string) (*connector.Template, error) {
	return connector.ParseTemplate("visitor_name", text, connector.Profile{Name: "n", Email: "e", Phone: "p", Language: "l"})
}

// visitorName renders the visitor name for c: the template, or the phone
// number (or the customer's address) when the template renders empty.
func (s *settings) visitorName(c *connector.Conversation) string {
	var name string
	if s.nameTmpl != nil {
		name, _ = s.nameTmpl.Render(c.Profile) // an error leaves "": the phone number below
	}
	if name := strings.TrimSpace(name); name != "" {
		return name
	}
	if phone := customerPhone(c); phone != "" {
		return phone
	}
	return c.Customer
}

// language is the visitor language for c: the profile's when it is a
// two-letter code, else the configured one.
func (s *settings) language(c *connector.Conversation) string {
	if isLanguage(c.Profile.Language) {
		return strings.ToLower(c.Profile.Language)
	}
	return s.Language
}

// customerPhone is the profile's phone number, else the customer's address.
func customerPhone(c *connector.Conversation) string {
	if c.Profile.Phone != "" {
		return c.Profile.Phone
	}
	if isPhone(c.Customer) { // an SMS customer; a Slack address is not a phone
		return c.Customer
	}
	return ""
}

// isPhone reports whether s is "+" and digits.
func isPhone(s string) bool {
	if len(s) < 3 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// host is the url's host name, for log lines (never the whole url, which
// may carry credentials).
func (s *settings) host() string {
	u, err := url.Parse(s.URL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
