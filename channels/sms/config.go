package sms

import (
	"net/url"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// DefaultAPIURL is where Twilio's REST API lives.
const DefaultAPIURL = "https://api.twilio.com"

// Config is a [channels.sms.NAME] block.
type Config struct {
	// AccountSID is the Twilio account, "AC" and 32 more letters and digits.
	AccountSID string `toml:"account_sid"`
	// AuthToken authenticates API calls and signs webhooks. Never printed.
	AuthToken connector.Secret `toml:"auth_token"`
	// From is the sending number in E.164 form. Either From or
	// MessagingServiceSID is required; with both, From must belong to the service.
	From string `toml:"from"`
	// MessagingServiceSID ("MG...") sends through a Messaging Service, which
	// picks the sender (short codes, alphanumeric senders, number pools).
	MessagingServiceSID string `toml:"messaging_service_sid"`
	// APIURL replaces the scheme and host of every API request: a fake Twilio
	// or a proxy. Default DefaultAPIURL.
	APIURL string `toml:"api_url"`
	// RequestTimeout bounds one API call. Default 10s.
	RequestTimeout time.Duration `toml:"request_timeout"`
	// HTTPConnections sizes each of the channel's two connection pools, API
	// calls and media downloads: at most that many connections per host,
	// as many kept idle. Sends beyond it wait for a connection. Default
	// connector.DefaultConnections.
	HTTPConnections int `toml:"http_connections"`
	// StatusCallback asks Twilio to report delivery to /sms/NAME/status.
	// Default true.
	StatusCallback bool `toml:"status_callback"`

	// MaxSegments, when above 0, bounds one agent line to that many SMS
	// segments: a longer line is cut and TruncationMark appended. 0 sends
	// everything, up to Twilio's 1600 characters a message, in parts.
	MaxSegments int `toml:"max_segments"`
	// TruncationMark ends a line that max_segments cut. Default " [cut]"; a
	// mark outside GSM-7 makes the whole line UCS-2.
	TruncationMark string `toml:"truncation_mark"`
	// GSMNormalize replaces typographic quotes, dashes, ellipses and spaces
	// with their GSM-7 look-alikes, so that a line pasted from a word
	// processor costs 160 characters a segment instead of 70.
	GSMNormalize bool `toml:"gsm_normalize"`

	// Numbers are more of the account's numbers (E.164) whose webhooks
	// point at this channel. A customer who writes to one of them is
	// answered from it; from is the default sender (campaigns, and customers
	// who wrote to it).
	Numbers []string `toml:"numbers"`

	// MPS is each sender's rate in segments per second (a US long code 1,
	// toll-free 3 or more, a short code 100); 0 leaves pacing to Twilio's
	// queue. SenderMPS overrides it per number or Messaging Service SID.
	MPS       float64            `toml:"mps"`
	SenderMPS map[string]float64 `toml:"sender_mps"`
	// Burst is how many segments a sender's queue at Twilio may hold before
	// connectord waits: what one customer's messages can add to another's
	// wait. Default 4.
	Burst int `toml:"burst"`
	// RecipientLimit messages to one customer, each within RecipientWindow
	// of the one before, are followed by a pause of RecipientWindow:
	// Twilio's loop protection (14107) fails the next ones otherwise.
	// Defaults 30 and 30s, Twilio's figures; 0 turns it off.
	RecipientLimit  int           `toml:"recipient_limit"`
	RecipientWindow time.Duration `toml:"recipient_window"`

	// CatchUp reads the messages Twilio received while connectord was
	// unreachable from its Messages list: at start, when API calls get
	// through again after failing, and every CatchUpInterval (0: only
	// then). Defaults true and 5m.
	CatchUp         bool          `toml:"catch_up"`
	CatchUpInterval time.Duration `toml:"catch_up_interval"`

	// MediaLinkTTL is how long a link to a customer's MMS file, as given
	// to the agent, stays good. Default 168h (a week).
	MediaLinkTTL time.Duration `toml:"media_link_ttl"`
	// FetchTimeout bounds one media download (a link opened). Default 30s.
	FetchTimeout time.Duration `toml:"fetch_timeout"`
	// MaxMedia, MaxMediaBytes and MediaTypes are Twilio's MMS limits an
	// agent's files are held to (10 files, 5 MB in all, the types Twilio
	// accepts; "image/*" covers a family); a file beyond them is left out
	// and the customer reads MediaRefusedNotice ({{.Name}}, {{.Reason}}).
	// MaxMediaBytes also bounds a file served through a link.
	MaxMedia           int      `toml:"max_media"`
	MaxMediaBytes      int64    `toml:"max_media_bytes"`
	MediaTypes         []string `toml:"media_types"`
	MediaRefusedNotice string   `toml:"media_refused_notice"`

	// OptOutKeywords, OptInKeywords and HelpKeywords are the carrier
	// keywords, matched against a message that is one word, in any case,
	// surrounding white space and punctuation ignored. An opt-out keyword
	// records the opt-out and ends the customer's conversation; an opt-in
	// keyword from an opted-out customer lifts it (from anyone else it is a
	// chat line, "yes"); a help keyword is answered with help_reply and
	// relayed.
	OptOutKeywords []string `toml:"opt_out_keywords"`
	OptInKeywords  []string `toml:"opt_in_keywords"`
	HelpKeywords   []string `toml:"help_keywords"`
	// OptOutReplies makes connectord answer the keywords itself (in the
	// webhook's TwiML answer, so exactly once). Set it false when Twilio
	// answers them (its default replies, or Advanced Opt-Out).
	OptOutReplies bool `toml:"opt_out_replies"`
	// OptOutReply, OptInReply and HelpReply are the answers: templates over
	// {{.Number}} (the number the customer wrote to) and {{.Keyword}}.
	OptOutReply string `toml:"opt_out_reply"`
	OptInReply  string `toml:"opt_in_reply"`
	HelpReply   string `toml:"help_reply"`
}

func defaultConfig() Config {
	return Config{APIURL: DefaultAPIURL, RequestTimeout: 10 * time.Second, StatusCallback: true,
		HTTPConnections: connector.DefaultConnections, TruncationMark: " [cut]",
		Numbers:        []string{},
		MPS:            1,
		SenderMPS:      map[string]float64{},
		Burst:          4,
		RecipientLimit: 30, RecipientWindow: 30 * time.Second,
		CatchUp: true, CatchUpInterval: 5 * time.Minute,
		MediaLinkTTL: 7 * 24 * time.Hour, FetchTimeout: 30 * time.Second,
		MaxMedia: 10, MaxMediaBytes: 5 << 20,
		MediaTypes: []string{"image/*", "audio/*", "video/*", "text/plain", "text/vcard", "text/x-vcard",
			"text/calendar", "text/csv", "application/pdf"},
		MediaRefusedNotice: "(Not sent by SMS: {{.Name}}, {{.Reason}}.)",
		OptOutKeywords:     []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"},
		OptInKeywords:      []string{"START", "YES", "UNSTOP"},
		HelpKeywords:       []string{"HELP", "INFO"},
		OptOutReplies:      true,
		OptOutReply:        "You have been unsubscribed and will get no more messages from this number. Reply START to resubscribe.",
		OptInReply:         "You have been resubscribed to messages from this number. Reply HELP for help, STOP to unsubscribe.",
		HelpReply:          "You are writing to our support team; reply with your question and an agent will answer. Reply STOP to unsubscribe.",
	}
}

// Defaults returns a *Config holding every default: connector.ChannelKind's
// Defaults.
func Defaults() any {
	c := defaultConfig()
	return &c
}

// sidShape describes a SID in error messages; %s is its prefix.
const sidShape = `"%s" followed by 32 letters and digits`

// decodeConfig decodes and checks inst's block with connector.DecodeBlock.
// It returns every problem, joined, each a *connector.ConfigError naming its
// key: a value that cannot be decoded does not hide the other keys'
// problems. Error texts never contain the auth token.
func decodeConfig(inst connector.Instance) (Config, error) {
	cfg := defaultConfig()
	err := connector.DecodeBlock(inst, &cfg, func(bad func(key, format string, args ...any)) {
		if cfg.APIURL == "" { // older example configurations shipped api_url = ""
			cfg.APIURL = DefaultAPIURL
		}
		cfg.check(bad)
	})
	return cfg, err
}

// check calls bad once per problem of the decoded block.
func (c Config) check(bad func(key, format string, args ...any)) {
	switch {
	case c.AccountSID == "":
		bad("account_sid", "is required")
	case !validSID(c.AccountSID, "AC"):
		bad("account_sid", "must be "+sidShape+", not %q", "AC", c.AccountSID)
	}
	switch {
	case c.AuthToken.Empty():
		bad("auth_token", "is required")
	case !alnum(c.AuthToken.Reveal()) && !envReference(c.AuthToken.Reveal()):
		// Twilio tokens are hex; anything else is a paste gone wrong.
		bad("auth_token", "must be letters and digits only (check for stray quotes or spaces)")
	}
	if c.From == "" && c.MessagingServiceSID == "" {
		bad("from", "from or messaging_service_sid is required")
	}
	if c.From != "" && !isE164(c.From) {
		bad("from", "must be a phone number in E.164 form like \"+15551230000\", not %q", c.From)
	}
	if c.MessagingServiceSID != "" && !validSID(c.MessagingServiceSID, "MG") {
		bad("messaging_service_sid", "must be "+sidShape+", not %q", "MG", c.MessagingServiceSID)
	}
	if msg := checkAPIURL(c.APIURL); msg != "" {
		bad("api_url", "%s", msg)
	}
	if c.RequestTimeout <= 0 {
		bad("request_timeout", "must be a positive duration like \"10s\"")
	}
	connector.CheckConnections(bad, c.HTTPConnections)
	if c.MaxSegments < 0 || c.MaxSegments > maxSegmentsLimit {
		bad("max_segments", "must be 0 (no limit) to %d, not %d", maxSegmentsLimit, c.MaxSegments)
	}
	if len(c.TruncationMark) > 64 {
		bad("truncation_mark", "must be at most 64 bytes")
	}
	c.checkNumbers(bad)
	c.checkKeywords(bad)
	c.checkPacing(bad)
	if c.CatchUpInterval < 0 {
		bad("catch_up_interval", "must be 0 (off) or a positive duration like \"5m\"")
	}
	c.checkMedia(bad)
}

// checkMedia calls bad for a media limit out of range.
func (c Config) checkMedia(bad func(key, format string, args ...any)) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"media_link_ttl", c.MediaLinkTTL}, {"fetch_timeout", c.FetchTimeout}} {
		if d.v <= 0 {
			bad(d.key, "must be a positive duration like \"30s\"")
		}
	}
	if c.MaxMedia < 0 || c.MaxMedia > maxMedia {
		bad("max_media", "must be 0 to %d (Twilio's limit), not %d", maxMedia, c.MaxMedia)
	}
	if c.MaxMediaBytes <= 0 {
		bad("max_media_bytes", "must be positive, not %d", c.MaxMediaBytes)
	}
	for _, t := range c.MediaTypes {
		if main, sub, ok := strings.Cut(t, "/"); !ok || main == "" || sub == "" || strings.ContainsAny(t, " ;,") {
			bad("media_types", "%q is not a content type like \"image/png\" or \"image/*\"", t)
		}
	}
	if _, err := connector.ParseTemplate("media_refused_notice", c.MediaRefusedNotice, refusedMedia{}); err != nil {
		bad("media_refused_notice", "%v", err)
	}
}

// checkPacing calls bad for a rate, burst or loop limit out of range.
func (c Config) checkPacing(bad func(key, format string, args ...any)) {
	const maxMPS = 10000
	if c.MPS < 0 || c.MPS > maxMPS {
		bad("mps", "must be 0 (unpaced) to %d segments a second, not %g", maxMPS, c.MPS)
	}
	for sender, r := range c.SenderMPS {
		switch {
		case !isE164(sender) && !validSID(sender, "MG"):
			bad("sender_mps", "%q is neither a number in E.164 form nor a Messaging Service SID", sender)
		case r < 0 || r > maxMPS:
			bad("sender_mps", "%s: must be 0 (unpaced) to %d segments a second, not %g", sender, maxMPS, r)
		}
	}
	if c.Burst < 1 || c.Burst > 1000 {
		bad("burst", "must be 1 to 1000 segments, not %d", c.Burst)
	}
	if c.RecipientLimit < 0 {
		bad("recipient_limit", "must be 0 (off) or more, not %d", c.RecipientLimit)
	}
	if c.RecipientWindow <= 0 {
		bad("recipient_window", "must be a positive duration like \"30s\"")
	}
}

// checkNumbers calls bad for a number that is not E.164 or is listed twice.
func (c Config) checkNumbers(bad func(key, format string, args ...any)) {
	seen := map[string]bool{c.From: c.From != ""}
	for _, n := range c.Numbers {
		switch {
		case !isE164(n):
			bad("numbers", "%q is not a phone number in E.164 form like \"+15551230001\"", n)
		case seen[n]:
			bad("numbers", "%q is listed twice (or is also from)", n)
		}
		seen[n] = true
	}
	if len(c.Numbers) > 0 && c.From == "" {
		bad("from", "is required with numbers: it is the default sender")
	}
}

// maxSegmentsLimit is the most segments a 1600-character UCS-2 body takes
// (1600/67 rounded up); a larger max_segments would never cut anything.
const maxSegmentsLimit = 24

// validSID reports whether s is a Twilio SID with the given prefix. Real
// SIDs have 32 hex digits after it; fakes may use other letters.
func validSID(s, prefix string) bool {
	return len(s) == 34 && s[:2] == prefix && alnum(s)
}

// checkAPIURL returns what is wrong with an api_url, or "". Only the scheme
// and host are used, so a path would be silently ignored: refuse it.
func checkAPIURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "must be an http(s) URL: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return "must be an absolute http(s) URL like \"" + DefaultAPIURL + "\", not \"" + s + "\""
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.User != nil:
		return "must be a scheme and host only (requests keep Twilio's paths), not \"" + s + "\""
	}
	return ""
}

// isE164 reports whether s is "+" and 2 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// alnum reports whether s is non-empty ASCII letters and digits.
func alnum(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

// envReference reports whether s is a "${NAME}" that check-config left
// unexpanded because the variable is unset; the loader warns about it.
func envReference(s string) bool {
	return len(s) > 3 && s[:2] == "${" && s[len(s)-1] == '}' && alnum(strings.ReplaceAll(s[2:len(s)-1], "_", "x"))
}
