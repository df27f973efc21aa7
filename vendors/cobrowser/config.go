package cobrowser

import (
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// Config is one [vendors.cobrowser.NAME] block. Every key and its default is
// in config.example.toml.
type Config struct {
	// APIURL is the Public API base, ending with "/".
	APIURL string `toml:"api_url"`
	// APIToken is sent as X-API-TOKEN on every REST call.
	APIToken connector.Secret `toml:"api_token"`
	// CampaignID is the (token-encoded) chat campaign id of the Public API.
	CampaignID string `toml:"campaign_id"`
	// XMPPWebSocketURL is the RFC 7395 endpoint (wss://...). Exactly one of
	// it and XMPPAddress is set.
	XMPPWebSocketURL string `toml:"xmpp_websocket_url"`
	// XMPPAddress is host:port of the c2s listener, used with STARTTLS.
	XMPPAddress string `toml:"xmpp_address"`
	// TLSServerName is the name the XMPP server's certificate must carry
	// over xmpp_address; empty: the XMPP domain of the chat's credentials.
	TLSServerName string `toml:"tls_server_name"`
	// CAFile is a PEM bundle trusted for the XMPP server (and the REST API).
	CAFile string `toml:"ca_file"`
	// CA is the PEM text itself: the daemon's loader turns "ca_file" into
	// "ca" holding the file's content. Problems are reported as ca_file.
	CA string `toml:"ca"`
	// InsecureSkipVerify turns certificate checks off; never in production.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// VisitorIdentifier is a template over visitorData: the identifier the
	// agent sees. Empty output falls back to the phone number, then the
	// customer's address.
	VisitorIdentifier string `toml:"visitor_identifier"`
	// RequestURL is sent as the chat session's request_url ("" omits it).
	RequestURL string `toml:"request_url"`
	// Survey asks the customer the campaign's survey question after the
	// agent ends the chat, and PATCHes the answer to the chat session.
	Survey bool `toml:"survey"`
	// SurveyWindow is how long an answer to the survey is waited for.
	SurveyWindow time.Duration `toml:"survey_window"`
	// BlockDuration is how long a customer the agent blocked is refused.
	BlockDuration time.Duration `toml:"block_duration"`
	// BlockedNotice is told to a customer the agent blocked, and again when
	// they write while the block lasts.
	BlockedNotice string `toml:"blocked_notice"`
	// AgentAwayNotice and AgentBackNotice are told when the agent's presence
	// stays unavailable (or comes back after that) for PresenceDebounce;
	// "" says nothing.
	AgentAwayNotice  string        `toml:"agent_away_notice"`
	AgentBackNotice  string        `toml:"agent_back_notice"`
	PresenceDebounce time.Duration `toml:"presence_debounce"`
	// RequestTimeout bounds one REST call.
	RequestTimeout time.Duration `toml:"request_timeout"`
	// HTTPConnections sizes the REST pool: at most that many connections
	// per host, as many kept idle; calls beyond it wait for one.
	HTTPConnections int `toml:"http_connections"`
	// ConnectTimeout bounds dial, TLS, login and the presence sequence.
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// SendTimeout bounds the wait for the server's confirmation of a line.
	SendTimeout time.Duration `toml:"send_timeout"`
	// PingInterval is how often an idle stream pings the server (XEP-0199);
	// an unanswered ping within send_timeout drops the stream.
	PingInterval time.Duration `toml:"ping_interval"`
	// HealthInterval is how often the campaign is read for Health.
	HealthInterval time.Duration `toml:"health_interval"`
	// ReconnectInitial, ReconnectMax and ReconnectStable are the reconnect
	// policy of a chat's stream (connector.Reconnect).
	ReconnectInitial time.Duration `toml:"reconnect_initial"`
	ReconnectMax     time.Duration `toml:"reconnect_max"`
	ReconnectStable  time.Duration `toml:"reconnect_stable"`
}

// DefaultAPIURL is the Public API base of CoBrowser's own service.
const DefaultAPIURL = "https://app.cobrowser.com/api/app.php/chatbot/v1/"

func defaultConfig() Config {
	return Config{
		APIURL:            DefaultAPIURL,
		VisitorIdentifier: "{{.Name}}",
		SurveyWindow:      10 * time.Minute,
		BlockDuration:     24 * time.Hour,
		BlockedNotice:     "The agent has closed this chat and will not take new chats from this number for a while.",
		AgentAwayNotice:   "The agent is unavailable at the moment; your messages will wait for them.",
		AgentBackNotice:   "The agent is back.",
		PresenceDebounce:  10 * time.Second,
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
	api       *url.URL
	wsURL     *url.URL // nil over TCP
	identTmpl *connector.Template
	tls       *tls.Config
}

// visitorData is what the visitor_identifier template sees.
type visitorData struct {
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
	s.checkAPI(bad)
	if s.APIToken.Empty() {
		bad("api_token", "is required (the X-API-TOKEN CoBrowser issued)")
	}
	if strings.TrimSpace(s.CampaignID) == "" {
		bad("campaign_id", "is required")
	} else if strings.ContainsAny(s.CampaignID, "/?#% ") {
		bad("campaign_id", "must be a bare id, not %q", s.CampaignID)
	}
	s.checkXMPP(bad)
	if t, err := connector.ParseTemplate("visitor_identifier", s.VisitorIdentifier, visitorData{}); err != nil {
		bad("visitor_identifier", "%v", err)
	} else {
		s.identTmpl = t
	}
	s.checkDurations(bad)
	s.reconnect().CheckKeys(bad)
	if err := s.buildTLS(); err != nil {
		bad("ca_file", "%v", err)
	}
}

func (s *settings) checkAPI(bad func(key, format string, args ...any)) {
	u, err := url.Parse(s.APIURL)
	switch {
	case s.APIURL == "":
		bad("api_url", "is required")
	case err != nil:
		bad("api_url", "is not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		bad("api_url", "must be an https:// URL with a host")
	case u.User != nil || u.RawQuery != "":
		bad("api_url", "must not carry user info or a query")
	case u.Scheme == "http" && !connector.IsLoopback(u.Hostname()):
		bad("api_url", "http:// to %s would send api_token unencrypted; use https://", u.Hostname())
	default:
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		s.api = u
	}
}

func (s *settings) checkXMPP(bad func(key, format string, args ...any)) {
	switch {
	case s.XMPPWebSocketURL == "" && s.XMPPAddress == "":
		bad("xmpp_websocket_url", "one of xmpp_websocket_url (wss://...) and xmpp_address (host:5222) is required")
		return
	case s.XMPPWebSocketURL != "" && s.XMPPAddress != "":
		bad("xmpp_address", "set either xmpp_websocket_url or xmpp_address, not both")
		return
	case s.XMPPAddress != "":
		host, port, err := net.SplitHostPort(s.XMPPAddress)
		if err != nil || host == "" || port == "" {
			bad("xmpp_address", "must be host:port, like \"xmpp.app.cobrowser.com:5222\"")
		}
		return
	}
	u, err := url.Parse(s.XMPPWebSocketURL)
	switch {
	case err != nil:
		bad("xmpp_websocket_url", "is not a URL: %v", err)
	case u.Scheme != "wss" && u.Scheme != "ws", u.Host == "":
		bad("xmpp_websocket_url", "must be a wss:// URL with a host")
	case u.User != nil:
		bad("xmpp_websocket_url", "must not carry user info")
	case u.Scheme == "ws" && !connector.IsLoopback(u.Hostname()):
		bad("xmpp_websocket_url", "ws:// to %s would send the chat's password unencrypted; use wss://", u.Hostname())
	default:
		s.wsURL = u
	}
}

func (s *settings) checkDurations(bad func(key, format string, args ...any)) {
	connector.CheckMinDurations(bad, time.Millisecond,
		connector.KeyDuration{Key: "survey_window", Val: s.SurveyWindow},
		connector.KeyDuration{Key: "presence_debounce", Val: s.PresenceDebounce},
		connector.KeyDuration{Key: "request_timeout", Val: s.RequestTimeout},
		connector.KeyDuration{Key: "connect_timeout", Val: s.ConnectTimeout},
		connector.KeyDuration{Key: "send_timeout", Val: s.SendTimeout},
		connector.KeyDuration{Key: "ping_interval", Val: s.PingInterval},
		connector.KeyDuration{Key: "health_interval", Val: s.HealthInterval})
	if s.BlockDuration < 0 {
		bad("block_duration", "must not be negative (\"0s\" turns blocking off)")
	}
	connector.CheckConnections(bad, s.HTTPConnections)
}

// buildTLS prepares the client TLS settings for the REST API, wss:// and
// STARTTLS.
func (s *settings) buildTLS() (err error) {
	s.tls, err = connector.ClientTLS(s.CAFile, s.CA, s.InsecureSkipVerify)
	return err
}

// visitorIdentifier renders the identifier the agent sees for c: the
// template, else the phone number, else the customer's address.
func (s *settings) visitorIdentifier(c *connector.Conversation) string {
	d := visitorData{Name: c.Profile.Name, Email: c.Profile.Email, Phone: c.Profile.Phone,
		Language: c.Profile.Language, Customer: c.Customer, Channel: c.Channel}
	var id string
	if s.identTmpl != nil {
		id, _ = s.identTmpl.Render(d) // an error leaves "": the fallbacks below
	}
	if id = strings.TrimSpace(id); id != "" {
		return clip(id, maxIdentifier)
	}
	if c.Profile.Phone != "" {
		return clip(c.Profile.Phone, maxIdentifier)
	}
	return clip(c.Customer, maxIdentifier)
}

// maxIdentifier bounds the visitor_identifier sent to CoBrowser.
const maxIdentifier = 200

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// transport names the XMPP transport for logs and health.
func (s *settings) transport() string {
	if s.wsURL != nil {
		return "websocket " + s.wsURL.Host
	}
	return "tcp " + s.XMPPAddress
}
