package customerchannel

import (
	"net/url"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// Config is one [vendors.customerchannel.NAME] block; every key and its
// default is in config.example.toml.
type Config struct {
	// URL is the chat server's base URL, http(s)://host[:port]: REST under
	// /api/customer/, Socket.IO under /socket.io/.
	URL string `toml:"url"`
	// EIO is the server's Engine.IO generation: 3 (Socket.IO 2.x) or 4
	// (Socket.IO 3 and 4). The server does not say which it speaks.
	EIO int `toml:"eio"`
	// ConnectorID, ConnectorName and ConnectorChannel are registerConnector's
	// id, name and channel. The spec wants the id to equal the channel name;
	// ConnectorChannel defaults to ConnectorID.
	ConnectorID      string `toml:"connector_id"`
	ConnectorName    string `toml:"connector_name"`
	ConnectorChannel string `toml:"connector_channel"`
	// DeliverVia is the channel instance ("sms.main") that messages the server
	// starts itself (campaigns) go out on, to the customer its refId names.
	DeliverVia string `toml:"deliver_via"`
	// Subject is the skill group (MRE queue) a new chat asks for.
	Subject string `toml:"subject"`
	// Language is the customer's language when the channel does not know it.
	Language string `toml:"language"`
	// ChannelNames maps a connectord channel kind ("sms", "slack") to the
	// Channel value init sends; a kind not listed is sent as it is.
	ChannelNames map[string]string `toml:"channel_names"`
	// RequestTimeout bounds one REST call.
	RequestTimeout time.Duration `toml:"request_timeout"`
	// HTTPConnections sizes the REST pool (init, transcripts): at most that
	// many connections per host, as many kept idle; calls beyond it wait
	// for one.
	HTTPConnections int `toml:"http_connections"`
	// ConnectTimeout bounds the Socket.IO dial and handshake.
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// ReconnectInitial, ReconnectMax and ReconnectStable are the socket's
	// reconnect policy (connector.Reconnect): the first wait after a drop,
	// the longest, and how long a connection must stay up before the next
	// drop starts from ReconnectInitial again. Three plain fields, not an
	// embedded connector.Reconnect, so that the loader checks each key.
	ReconnectInitial time.Duration `toml:"reconnect_initial"`
	ReconnectMax     time.Duration `toml:"reconnect_max"`
	ReconnectStable  time.Duration `toml:"reconnect_stable"`
	// Transcript, when a conversation ends: "" nothing, "pdf" fetches the PDF
	// and sends it to the customer where they wrote (a file in the Slack
	// thread, an MMS), "email" asks the server to email it when the
	// customer's email is known.
	Transcript string `toml:"transcript"`
	// TranscriptWait is how long the transcript is asked for after the end
	// (the server answers 404 until it has closed the chat).
	TranscriptWait time.Duration `toml:"transcript_wait"`
	// TranscriptMaxBytes bounds the transcript read from the server; a
	// larger one is not sent to the customer.
	TranscriptMaxBytes int64 `toml:"transcript_max_bytes"`
	// SendConfirmTimeout bounds how long Send waits for the server to confirm
	// a customer line (its echo, or the history a rejoin replays) before it
	// returns a retryable error; the core then tries the line again, and it
	// is emitted again only if it is still unconfirmed.
	SendConfirmTimeout time.Duration `toml:"send_confirm_timeout"`
	// LeaveGrace is how long an agent's participantLeft waits for another
	// agent to join (a transfer) before the conversation ends.
	LeaveGrace time.Duration `toml:"leave_grace"`
}

// defaultTranscriptMaxBytes: a chat transcript PDF is tens of kilobytes; 10
// MiB leaves room for long chats with images. (An MMS carries at most 5 MB:
// a larger transcript reaches SMS customers only if the carrier takes it.)
const defaultTranscriptMaxBytes = 10 << 20

func defaultConfig() Config {
	return Config{EIO: 4, Language: "en", RequestTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
		HTTPConnections:  connector.DefaultConnections,
		ReconnectInitial: 250 * time.Millisecond, ReconnectMax: 30 * time.Second, ReconnectStable: 30 * time.Second,
		LeaveGrace: 3 * time.Second, SendConfirmTimeout: 5 * time.Second, TranscriptWait: time.Minute,
		TranscriptMaxBytes: defaultTranscriptMaxBytes}
}

// Defaults returns a *Config holding every default: connector.VendorKind's
// Defaults.
func Defaults() any {
	c := defaultConfig()
	return &c
}

// decodeConfig decodes and checks inst's block with connector.DecodeBlock,
// returning every problem joined, each a *connector.ConfigError naming its
// key: a value that cannot be decoded does not hide the other keys'
// problems.
func decodeConfig(inst connector.Instance) (Config, error) {
	cfg := defaultConfig()
	err := connector.DecodeBlock(inst, &cfg, func(bad func(key, format string, args ...any)) {
		cfg.URL = strings.TrimRight(cfg.URL, "/")
		if cfg.ConnectorChannel == "" {
			cfg.ConnectorChannel = cfg.ConnectorID
		}
		cfg.check(inst, bad)
	})
	return cfg, err
}

// reconnect is the socket's reconnect policy.
func (c Config) reconnect() connector.Reconnect {
	return connector.Reconnect{Initial: c.ReconnectInitial, Max: c.ReconnectMax, Stable: c.ReconnectStable}
}

// check calls bad once per problem of the decoded block.
func (c Config) check(inst connector.Instance, bad func(key, format string, args ...any)) {
	if u, err := url.Parse(c.URL); c.URL == "" {
		bad("url", "is required (the chat server's base URL, like \"https://chat.example.com\")")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "must be an absolute http(s) URL like \"https://chat.example.com\", not %q", connector.RedactURL(c.URL))
	} else if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		// Paths are appended to it: a query would end up in the middle.
		bad("url", "must be a base URL without a query or fragment (like \"https://chat.example.com\"), not %q", connector.RedactURL(c.URL))
	}
	if c.EIO != 3 && c.EIO != 4 {
		bad("eio", "must be 3 (Socket.IO 2.x servers) or 4 (Socket.IO 3/4), not %d", c.EIO)
	}
	if c.ConnectorID == "" {
		bad("connector_id", "is required (registerConnector's id: the channel name, like \"sms\")")
	}
	if c.DeliverVia != "" && !strings.Contains(c.DeliverVia, ".") {
		bad("deliver_via", "must name a channel instance like \"sms.main\", not %q", c.DeliverVia)
	}
	for key, d := range map[string]time.Duration{"request_timeout": c.RequestTimeout, "connect_timeout": c.ConnectTimeout,
		"send_confirm_timeout": c.SendConfirmTimeout} {
		if d < time.Millisecond {
			bad(key, "must be a duration like \"5s\"")
		}
	}
	c.reconnect().CheckKeys(bad)
	connector.CheckConnections(bad, c.HTTPConnections)
	if c.Transcript != "" && c.Transcript != "pdf" && c.Transcript != "email" {
		bad("transcript", "must be \"\", \"pdf\" or \"email\", not %q", c.Transcript)
	}
	if c.TranscriptWait < 0 {
		bad("transcript_wait", "must not be negative")
	}
	if c.TranscriptMaxBytes < 1 {
		bad("transcript_max_bytes", "must be a positive number of bytes, not %d", c.TranscriptMaxBytes)
	}
	if c.LeaveGrace < 0 {
		bad("leave_grace", "must not be negative")
	}
}
