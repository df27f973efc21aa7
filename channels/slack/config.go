package slack

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// DefaultAPIURL is where Slack's Web API lives.
const DefaultAPIURL = "https://slack.com/api/"

// Config is a [channels.slack.NAME] block.
type Config struct {
	// BotToken ("xoxb-...") makes every Web API call. Never printed.
	BotToken connector.Secret `toml:"bot_token"`
	// AppToken ("xapp-...", scope connections:write) selects Socket Mode.
	// Empty: events arrive over HTTP at /slack/NAME/events (Events API).
	AppToken connector.Secret `toml:"app_token"`
	// SigningSecret checks Events API requests; required without AppToken.
	SigningSecret connector.Secret `toml:"signing_secret"`
	// Channels are the channel ids (never names: Slack Connect channels have
	// the same id in both workspaces) where a top-level message starts a
	// conversation. DMs to the app always do.
	Channels []string `toml:"channels"`
	// APIURL is the Web API base; a fake in tests. Default DefaultAPIURL.
	APIURL string `toml:"api_url"`
	// EndKeyword, written alone (any case), ends the conversation. "" turns it off.
	EndKeyword string `toml:"end_keyword"`
	// AllowBots makes other apps' bot messages customer messages too. Our own
	// bot's are always ignored.
	AllowBots bool `toml:"allow_bots"`
	// PostInterval spaces our messages in one Slack channel (Slack allows
	// about one per second per channel).
	PostInterval time.Duration `toml:"post_interval"`
	// RequestTimeout bounds one Web API call.
	RequestTimeout time.Duration `toml:"request_timeout"`
	// HTTPConnections sizes each of the channel's three connection pools
	// (Web API calls, file downloads from Slack, agents' attachments
	// fetched): at most that many connections per host, as many kept idle.
	// Calls beyond it wait for a connection.
	HTTPConnections int `toml:"http_connections"`
	// CatchUp reads, after a start or a reconnect, what customers wrote
	// meanwhile (new threads, open conversations, recently ended threads
	// with new replies, DMs) and relays what was missed; see README.
	CatchUp bool `toml:"catch_up"`
	// CatchUpInterval spaces catch-up's history reads (conversations.replies
	// is a Tier 3 method: about 50 a minute).
	CatchUpInterval time.Duration `toml:"catch_up_interval"`
	// Reactions are the emoji names put on a thread's first message as its
	// conversation moves on; an empty name shows nothing for that state.
	Reactions Reactions `toml:"reactions"`
	// AgentIconEmoji is the icon agent lines are posted with (":headphones:");
	// "" keeps the app's icon. The agent's name is always shown.
	AgentIconEmoji string `toml:"agent_icon_emoji"`
	// FileLinkTTL is how long a link to a customer's file, as given to the
	// agent, keeps working.
	FileLinkTTL time.Duration `toml:"file_link_ttl"`
	// MaxFileBytes bounds a file relayed either way.
	MaxFileBytes int64 `toml:"max_file_bytes"`
	// FileHosts are where Slack serves shared files (url_private): the only
	// hosts, besides api_url's, that ever get the bot token. An entry is a
	// host name (https) or an origin URL ("http://127.0.0.1:8080", a fake).
	// A file elsewhere (an external or remote file) is linked as it is.
	FileHosts []string `toml:"file_hosts"`
	// FetchAllow are CIDR prefixes that agent attachment fetches may reach
	// although they are loopback, private or otherwise internal (an
	// on-premises vendor's file server). Empty: only public addresses.
	FetchAllow []string `toml:"fetch_allow"`
	// FetchTimeout bounds one file download, either way (an agent's
	// attachment, a customer's file streamed through a link).
	FetchTimeout time.Duration `toml:"fetch_timeout"`
	// ReconnectInitial, ReconnectMax and ReconnectStable pace Socket Mode
	// reconnects (connector.Reconnect); the Events API has no connection.
	ReconnectInitial time.Duration `toml:"reconnect_initial"`
	ReconnectMax     time.Duration `toml:"reconnect_max"`
	ReconnectStable  time.Duration `toml:"reconnect_stable"`
	// SocketSilenceTimeout is how long a Socket Mode connection may stay
	// silent (no frame, no ping from Slack, no pong to ours) before it is
	// taken for dead and replaced; we ping every half of it. Slack pings
	// about every 10 s.
	SocketSilenceTimeout time.Duration `toml:"socket_silence_timeout"`

	fetchAllow   []netip.Prefix // FetchAllow, parsed
	tokenOrigins []origin       // FileHosts and api_url's origin, parsed
}

// Reconnect is the Socket Mode reconnect policy the keys give.
func (c Config) Reconnect() connector.Reconnect {
	return connector.Reconnect{Initial: c.ReconnectInitial, Max: c.ReconnectMax, Stable: c.ReconnectStable}
}

// DefaultFileHosts are the hosts Slack serves url_private files from. Older
// file objects name slack.com itself, which is api_url's host by default.
func DefaultFileHosts() []string { return []string{"files.slack.com"} }

// Reactions name the emoji for each conversation state.
type Reactions struct {
	Queued string `toml:"queued"`
	Active string `toml:"active"`
	Ended  string `toml:"ended"`
}

func defaultConfig() Config {
	return Config{
		APIURL: DefaultAPIURL, EndKeyword: "end chat", PostInterval: time.Second,
		RequestTimeout: 10 * time.Second, CatchUp: true, CatchUpInterval: 1200 * time.Millisecond, HTTPConnections: connector.DefaultConnections,
		Reactions:   Reactions{Queued: "hourglass_flowing_sand", Active: "speech_balloon", Ended: "white_check_mark"},
		FileLinkTTL: 7 * 24 * time.Hour, MaxFileBytes: 50 << 20,
		FileHosts: DefaultFileHosts(), FetchTimeout: time.Minute,
		ReconnectInitial:     connector.DefaultReconnect().Initial,
		ReconnectMax:         connector.DefaultReconnect().Max,
		ReconnectStable:      connector.DefaultReconnect().Stable,
		SocketSilenceTimeout: 20 * time.Second,
	}
}

// Defaults returns a *Config holding every default: connector.ChannelKind's
// Defaults.
func Defaults() any {
	c := defaultConfig()
	return &c
}

// decodeConfig decodes and checks inst's block with connector.DecodeBlock,
// returning every problem joined, each a *connector.ConfigError: a value
// that cannot be decoded does not hide the other keys' problems. Texts never
// contain a token.
func decodeConfig(inst connector.Instance) (Config, error) {
	cfg := defaultConfig()
	err := connector.DecodeBlock(inst, &cfg, func(bad func(key, format string, args ...any)) {
		cfg.normalize()
		cfg.check(inst, bad)
		for _, err := range cfg.parseNetwork(inst) {
			badAt(inst, bad, err)
		}
	})
	return cfg, err
}

// normalize fills what the decoded keys leave to be derived.
func (c *Config) normalize() {
	if c.APIURL == "" { // older example configurations shipped api_url = ""
		c.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	c.EndKeyword = strings.TrimSpace(c.EndKeyword)
}

// badAt passes err, a ConfigError of inst's block, on to bad, which judges
// whether its key was already reported.
func badAt(inst connector.Instance, bad func(key, format string, args ...any), err error) {
	var ce *connector.ConfigError
	if errors.As(err, &ce) {
		bad(strings.TrimPrefix(ce.Path, inst.Path+"."), "%s", ce.Msg)
	}
}

// SocketMode reports whether events arrive over a Socket Mode WebSocket.
func (c Config) SocketMode() bool { return !c.AppToken.Empty() }

// check calls bad once per problem of the decoded block; the network keys
// are checked apart, by parseNetwork.
func (c Config) check(inst connector.Instance, bad func(key, format string, args ...any)) {
	switch {
	case c.BotToken.Empty():
		bad("bot_token", "is required (the app's Bot User OAuth Token, xoxb-...)")
	case !tokenLike(c.BotToken.Reveal(), "xoxb-"):
		bad("bot_token", "must be a bot token starting with \"xoxb-\"")
	}
	if !c.AppToken.Empty() && !tokenLike(c.AppToken.Reveal(), "xapp-") {
		bad("app_token", "must be an app-level token starting with \"xapp-\" (or empty for the Events API)")
	}
	if c.AppToken.Empty() && c.SigningSecret.Empty() {
		bad("signing_secret", "is required when app_token is empty (events arrive over HTTP and are signed)")
	}
	for i, id := range c.Channels {
		if !channelID(id) {
			bad("channels", "entry %d must be a channel id like \"C0123456789\" (not a name), not %q", i+1, id)
		}
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("api_url", "must be an absolute http(s) URL like %q, not %q", DefaultAPIURL, c.APIURL)
	}
	c.checkDurations(bad)
	connector.CheckConnections(bad, c.HTTPConnections)
	c.Reconnect().CheckKeys(bad)
	if c.MaxFileBytes <= 0 {
		bad("max_file_bytes", "must be positive")
	}
	c.checkEmoji(bad)
}

func (c Config) checkDurations(bad func(key, format string, args ...any)) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"post_interval", c.PostInterval}, {"catch_up_interval", c.CatchUpInterval}} {
		if d.v < 0 {
			bad(d.key, "must not be negative")
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"request_timeout", c.RequestTimeout}, {"file_link_ttl", c.FileLinkTTL}, {"fetch_timeout", c.FetchTimeout}} {
		if d.v < time.Millisecond {
			bad(d.key, "must be a duration like \"10s\"")
		}
	}
	if c.SocketSilenceTimeout < minSilence {
		bad("socket_silence_timeout", "must be at least %s (Slack pings about every 10s; default 20s)", minSilence)
	}
}

// minSilence bounds socket_silence_timeout from below: shorter would replace
// sockets that are only slow.
const minSilence = time.Second

func (c Config) checkEmoji(bad func(key, format string, args ...any)) {
	for key, name := range map[string]string{"reactions.queued": c.Reactions.Queued,
		"reactions.active": c.Reactions.Active, "reactions.ended": c.Reactions.Ended} {
		if strings.ContainsAny(name, ": \t") {
			bad(key, "must be an emoji name without colons, like \"white_check_mark\", not %q", name)
		}
	}
	if strings.HasPrefix(c.AgentIconEmoji, ":") != strings.HasSuffix(c.AgentIconEmoji, ":") || c.AgentIconEmoji == ":" {
		bad("agent_icon_emoji", "must be an emoji in colons like \":headphones:\", not %q", c.AgentIconEmoji)
	}
}

// tokenLike reports whether s looks like a Slack token with the prefix, or is
// an unexpanded "${NAME}" that check-config warns about on its own.
func tokenLike(s, prefix string) bool {
	if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
		return true
	}
	return strings.HasPrefix(s, prefix) && len(s) > len(prefix) && !strings.ContainsAny(s, " \t\n\"'")
}

// channelID reports whether s looks like a conversation id: C (public), G
// (private) or D (DM), then upper-case letters and digits.
func channelID(s string) bool {
	if len(s) < 3 || !strings.ContainsRune("CGD", rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}
