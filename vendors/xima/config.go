package xima

import (
	"net/url"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// Config is one [vendors.xima.NAME] block. Every key and its default is in
// config.example.toml.
type Config struct {
	// BaseURL is the Web Chat API, https://mm-v1.ximasoftware.com (a
	// breaking change moves to mm-v2 and so on).
	BaseURL string `toml:"base_url"`
	// InstallationID is Chronicall's "Chat Installation Id".
	InstallationID string `toml:"installation_id"`
	// APIKey is the key Xima issues for POST /chat/apiqueue.
	APIKey connector.Secret `toml:"api_key"`
	// Skill is the skill chats queue for.
	Skill string `toml:"skill"`
	// SQSEndpoint is the SQS endpoint (scheme and host); empty: the scheme
	// and host of each chat's queue URL.
	SQSEndpoint string `toml:"sqs_endpoint"`
	// CustomerName and CustomerEmail are templates over customerData: the
	// ClientChatSessionRequest's name and email. An empty name falls back to
	// the phone number, then the customer's address.
	CustomerName  string `toml:"customer_name"`
	CustomerEmail string `toml:"customer_email"`
	// WaitNotice is a template over {{.Wait}} (ESTIMATED_WAIT_TIME's English
	// text) told to the customer at most once per WaitNoticeInterval; ""
	// tells nothing.
	WaitNotice         string        `toml:"wait_notice"`
	WaitNoticeInterval time.Duration `toml:"wait_notice_interval"`
	// ForceCloseNotice and MultimediaDownNotice are what the customer reads
	// when a chat ends by FORCE_CLOSE or MULTIMEDIA_DOWN; "" uses the core's
	// ended_failed notice.
	ForceCloseNotice     string `toml:"force_close_notice"`
	MultimediaDownNotice string `toml:"multimedia_down_notice"`
	// StillHereInterval and StillHereJitter space each chat's POST
	// /chat/still-here: interval plus a random part of jitter, which must stay
	// under the document's 30 s.
	StillHereInterval time.Duration `toml:"still_here_interval"`
	StillHereJitter   time.Duration `toml:"still_here_jitter"`
	// PollWait is the SQS long-poll wait (whole seconds, 1s to 20s) and
	// PollMaxMessages the batch size (1 to 10).
	PollWait        time.Duration `toml:"poll_wait"`
	PollMaxMessages int           `toml:"poll_max_messages"`
	// MaxPollers bounds the long polls in flight at once: one queue per chat,
	// so past this many chats they take turns with a shorter wait.
	MaxPollers int `toml:"max_pollers"`
	// CredentialsRefresh is how long SQS credentials from /chat/queue/auth
	// are used before they are fetched again (the document gives no expiry).
	CredentialsRefresh time.Duration `toml:"credentials_refresh"`
	// RequestTimeout bounds one REST call, an SQS delete and a credentials fetch.
	RequestTimeout time.Duration `toml:"request_timeout"`
	// HTTPConnections sizes the REST pool: at most that many connections
	// per host, as many kept idle; calls beyond it (sends, still-here
	// calls) wait for one. The SQS pool holds MaxPollers more, one per
	// long poll.
	HTTPConnections int `toml:"http_connections"`
	// HealthInterval is how often the REST API is probed for Health.
	HealthInterval time.Duration `toml:"health_interval"`
	// ReconnectInitial, ReconnectMax and ReconnectStable are the back-off of
	// a chat's queue poll after a failure (connector.Reconnect's policy).
	ReconnectInitial time.Duration `toml:"reconnect_initial"`
	ReconnectMax     time.Duration `toml:"reconnect_max"`
	ReconnectStable  time.Duration `toml:"reconnect_stable"`
}

// DefaultBaseURL is Xima's Web Chat API.
const DefaultBaseURL = "https://mm-v1.ximasoftware.com"

// stillHereDeadline is the document's limit: a chat with no still-here for
// this long dies.
const stillHereDeadline = 30 * time.Second

func defaultConfig() Config {
	return Config{
		BaseURL:              DefaultBaseURL,
		CustomerName:         "{{.Name}}",
		CustomerEmail:        "{{.Email}}",
		WaitNotice:           "Estimated wait: {{.Wait}}.",
		WaitNoticeInterval:   time.Minute,
		ForceCloseNotice:     "The agent was disconnected, so this chat has ended. Write again to start a new one.",
		MultimediaDownNotice: "The chat service went offline, so this chat has ended. Write again later to start a new one.",
		StillHereInterval:    20 * time.Second,
		StillHereJitter:      5 * time.Second,
		PollWait:             20 * time.Second,
		PollMaxMessages:      10,
		MaxPollers:           1000,
		CredentialsRefresh:   10 * time.Minute,
		RequestTimeout:       10 * time.Second,
		HTTPConnections:      connector.DefaultConnections,
		HealthInterval:       30 * time.Second,
		ReconnectInitial:     500 * time.Millisecond,
		ReconnectMax:         30 * time.Second,
		ReconnectStable:      30 * time.Second,
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
	base      *url.URL
	sqsBase   *url.URL // nil: from the queue URL
	nameTmpl  *connector.Template
	emailTmpl *connector.Template
	waitTmpl  *connector.Template // nil: no wait notice
}

// customerData is what the customer_name and customer_email templates see.
type customerData struct {
	Name     string
	Email    string
	Phone    string
	Language string
	Customer string // the address on the channel: a phone number, a Slack user or thread
	Channel  string // "sms.main"
}

// waitData is what the wait_notice template sees.
type waitData struct {
	Wait string
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
	s.base = checkURL("base_url", s.BaseURL, true, bad)
	if s.SQSEndpoint != "" {
		s.sqsBase = checkURL("sqs_endpoint", s.SQSEndpoint, false, bad)
	}
	if strings.TrimSpace(s.InstallationID) == "" {
		bad("installation_id", "is required (Chronicall: System Settings, Multimedia Chat Seat, Chat Installation Id)")
	}
	if s.APIKey.Empty() {
		bad("api_key", "is required (the Web Chat API key Xima issues; not a Service User's key)")
	}
	if strings.TrimSpace(s.Skill) == "" {
		bad("skill", "is required (the skill chats queue for)")
	}
	s.checkTemplates(bad)
	s.checkTimings(bad)
	connector.CheckConnections(bad, s.HTTPConnections)
	s.reconnect().CheckKeys(bad)
}

// checkURL validates an http(s) base URL: https, or http to loopback only
// (a test server). A path is kept for base_url (a proxy's prefix).
func checkURL(key, raw string, keepPath bool, bad func(key, format string, args ...any)) *url.URL {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		bad(key, "is required")
	case err != nil:
		bad(key, "is not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		bad(key, "must be an https:// URL with a host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		bad(key, "must not carry user info, a query or a fragment")
	case u.Scheme == "http" && !connector.IsLoopback(u.Hostname()):
		bad(key, "http:// to %s would carry chats unencrypted; use https://", u.Hostname())
	case !keepPath && strings.Trim(u.Path, "/") != "":
		bad(key, "must be scheme and host only, like \"https://sqs.us-east-1.amazonaws.com\"")
	default:
		u.Path = strings.TrimSuffix(u.Path, "/")
		return u
	}
	return nil
}

func (s *settings) checkTemplates(bad func(key, format string, args ...any)) {
	if t, err := connector.ParseTemplate("customer_name", s.CustomerName, customerData{}); err != nil {
		bad("customer_name", "%v", err)
	} else {
		s.nameTmpl = t
	}
	if t, err := connector.ParseTemplate("customer_email", s.CustomerEmail, customerData{}); err != nil {
		bad("customer_email", "%v", err)
	} else {
		s.emailTmpl = t
	}
	if s.WaitNotice == "" {
		return
	}
	if t, err := connector.ParseTemplate("wait_notice", s.WaitNotice, waitData{}); err != nil {
		bad("wait_notice", "%v", err)
	} else {
		s.waitTmpl = t
	}
}

func (s *settings) checkTimings(bad func(key, format string, args ...any)) {
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"wait_notice_interval", s.WaitNoticeInterval},
		{"still_here_interval", s.StillHereInterval},
		{"credentials_refresh", s.CredentialsRefresh},
		{"request_timeout", s.RequestTimeout},
		{"health_interval", s.HealthInterval},
	} {
		if d.val < time.Millisecond {
			bad(d.key, "must be a duration of at least 1ms, written like \"30s\", not %s", d.val)
		}
	}
	if s.StillHereJitter < 0 {
		bad("still_here_jitter", "must not be negative")
	} else if s.StillHereInterval > 0 && s.StillHereInterval+s.StillHereJitter > stillHereDeadline-2*time.Second {
		bad("still_here_interval", "plus still_here_jitter is %s; it must stay under 28s (Xima ends a chat after 30s without still-here)",
			s.StillHereInterval+s.StillHereJitter)
	}
	if s.PollWait < time.Second || s.PollWait > 20*time.Second || s.PollWait%time.Second != 0 {
		bad("poll_wait", "must be whole seconds from \"1s\" to \"20s\" (SQS long polling), not %s", s.PollWait)
	}
	if s.PollMaxMessages < 1 || s.PollMaxMessages > 10 {
		bad("poll_max_messages", "must be 1 to 10 (SQS's limit), not %d", s.PollMaxMessages)
	}
	if s.MaxPollers < 1 || s.MaxPollers > 100000 {
		bad("max_pollers", "must be 1 to 100000, not %d", s.MaxPollers)
	}
}

// customerName renders the name Xima shows the agent: the template, else
// the phone number, else the customer's address.
func (s *settings) customerName(c *connector.Conversation) string {
	name := render(s.nameTmpl, dataOf(c))
	if name != "" {
		return clip(name, maxName)
	}
	if p := phoneOf(c); p != "" {
		return p
	}
	return clip(c.Customer, maxName)
}

func (s *settings) customerEmail(c *connector.Conversation) string {
	return clip(render(s.emailTmpl, dataOf(c)), maxName)
}

// waitText is the customer's notice for an estimated wait; "" for none.
func (s *settings) waitText(wait string) string {
	if s.waitTmpl == nil || strings.TrimSpace(wait) == "" {
		return ""
	}
	return render(s.waitTmpl, waitData{Wait: wait})
}

func render(t *connector.Template, data any) string {
	if t == nil {
		return ""
	}
	out, err := t.Render(data)
	if err != nil {
		return "" // the fallbacks apply
	}
	return strings.TrimSpace(out)
}

func dataOf(c *connector.Conversation) customerData {
	return customerData{Name: c.Profile.Name, Email: c.Profile.Email, Phone: c.Profile.Phone,
		Language: c.Profile.Language, Customer: c.Customer, Channel: c.Channel}
}

// phoneOf is the profile's phone number, else the customer's address when
// it is one (an SMS customer; a Slack address is not a phone).
func phoneOf(c *connector.Conversation) string {
	if c.Profile.Phone != "" {
		return clip(c.Profile.Phone, maxName)
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

// maxName bounds the name, email and custom values sent to Xima.
const maxName = 200

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
