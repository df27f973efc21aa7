package slack

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/connectord/connectord/connector"
)

func decodeTOML(t *testing.T, text string) (Config, error) {
	t.Helper()
	inst := connector.NewInstance("channels.slack.test", "slack", "test", func(v any) error {
		_, err := toml.Decode(text, v)
		return err
	})
	return decodeConfig(inst)
}

const goodConfig = `
bot_token = "xoxb-1-2-abc"
signing_secret = "s3cret"
channels = ["C0123456789", "G0PRIVATE1"]
`

func TestConfigDefaults(t *testing.T) {
	cfg, err := decodeTOML(t, goodConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SocketMode() || cfg.APIURL != DefaultAPIURL || cfg.EndKeyword != "end chat" || !cfg.CatchUp ||
		cfg.Reactions.Ended != "white_check_mark" || cfg.PostInterval.Seconds() != 1 || cfg.HTTPConnections != 32 {
		t.Errorf("defaults = %+v", cfg)
	}
	if cfg.Reconnect() != connector.DefaultReconnect() {
		t.Errorf("reconnect defaults = %+v, want the core's %+v", cfg.Reconnect(), connector.DefaultReconnect())
	}
	cfg, err = decodeTOML(t, goodConfig+`app_token = "xapp-1-A1-2-abc"
api_url = "http://127.0.0.1:9/api"
reconnect_initial = "2s"
reconnect_max = "5m"
reconnect_stable = "1m"`)
	if err != nil || !cfg.SocketMode() || cfg.APIURL != "http://127.0.0.1:9/api/" {
		t.Errorf("socket mode config = %+v, %v", cfg, err)
	}
	if want := (connector.Reconnect{Initial: 2 * time.Second, Max: 5 * time.Minute, Stable: time.Minute}); cfg.Reconnect() != want {
		t.Errorf("reconnect = %+v, want %+v", cfg.Reconnect(), want)
	}
}

// The token goes to files.slack.com and api_url's origin by default; to
// other hosts only when file_hosts names them, scheme and port included.
func TestTokenHosts(t *testing.T) {
	cfg, err := decodeTOML(t, goodConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.fetchAllow) != 0 || cfg.FetchTimeout.Seconds() != 60 {
		t.Errorf("fetch defaults: allow %v, timeout %v", cfg.fetchAllow, cfg.FetchTimeout)
	}
	for raw, want := range map[string]bool{
		"https://files.slack.com/files-pri/T1-F1/a.png":     true,
		"https://FILES.slack.com:443/files-pri/T1-F1/a.png": true,
		"https://slack.com/files-pri/T1-F1/a.png":           true, // api_url's host
		"http://files.slack.com/files-pri/T1-F1/a.png":      false,
		"https://files.slack.com:8443/a.png":                false,
		"https://evil.files.slack.com/a.png":                false,
		"https://files.slack.com.evil.example/a.png":        false,
		"https://user@files.slack.com/a.png":                false,
		"https://docs.google.com/document/d/1":              false,
		"not a url":                                         false,
	} {
		if got := cfg.tokenURL(raw); got != want {
			t.Errorf("tokenURL(%q) = %v, want %v", raw, got, want)
		}
	}
	cfg, err = decodeTOML(t, goodConfig+`file_hosts = ["http://127.0.0.1:8080", "files.slack-gov.com"]
fetch_allow = ["10.20.0.0/16"]`)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080/files-pri/x":   true,
		"http://127.0.0.1:8081/files-pri/x":   false,
		"https://files.slack-gov.com/x":       true,
		"https://files.slack.com/files-pri/x": false, // replaced, not added to
	} {
		if got := cfg.tokenURL(raw); got != want {
			t.Errorf("tokenURL(%q) = %v, want %v", raw, got, want)
		}
	}
	if len(cfg.fetchAllow) != 1 || cfg.fetchAllow[0].String() != "10.20.0.0/16" {
		t.Errorf("fetch_allow = %v", cfg.fetchAllow)
	}
}

func TestConfigProblems(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string // each a problem's key path and a word of its message
	}{
		{"nothing", ``, []string{"bot_token: is required", "signing_secret: is required when app_token is empty"}},
		{"user token", `bot_token = "xoxp-1"
signing_secret = "s"`, []string{"bot_token: must be a bot token"}},
		{"socket mode needs no secret", `bot_token = "xoxb-1"
app_token = "xapp-1"`, nil},
		{"bad app token", `bot_token = "xoxb-1"
app_token = "xoxb-1"`, []string{"app_token: must be an app-level token"}},
		{"bad values", `bot_token = "xoxb-1"
signing_secret = "s"
channels = ["support"]
api_url = "slack.com"
request_timeout = "0s"
post_interval = "-1s"
max_file_bytes = 0
agent_icon_emoji = "headphones:"
[reactions]
ended = ":white_check_mark:"`, []string{"channels: entry 1 must be a channel id", "api_url: must be an absolute",
			"request_timeout: must be a duration", "post_interval: must not be negative", "max_file_bytes: must be positive",
			"agent_icon_emoji: must be an emoji in colons", "reactions.ended: must be an emoji name without colons"}},
		{"bad network keys", `bot_token = "xoxb-1"
signing_secret = "s"
fetch_allow = ["10.20.0.0/16", "10.20.0.0/33"]
file_hosts = ["files.slack.com", "https://files.slack.com/files-pri/x", "ftp://files.example.com"]
fetch_timeout = "0s"`, []string{`fetch_allow: entry 2, "10.20.0.0/33", is not a CIDR prefix`,
			`file_hosts: entry 2: "https://files.slack.com/files-pri/x" is not a host name or an http(s) origin`,
			`file_hosts: entry 3: "ftp://files.example.com"`, "fetch_timeout: must be a duration"}},
		{"pool sizes", `bot_token = "xoxb-1"
signing_secret = "s"
http_connections = 1024`, nil},
		{"no connections", `bot_token = "xoxb-1"
signing_secret = "s"
http_connections = 0`, []string{"channels.slack.test.http_connections: must be 1 to 1024 connections per host, not 0"}},
		{"too many connections", `bot_token = "xoxb-1"
signing_secret = "s"
http_connections = 5000`, []string{"channels.slack.test.http_connections: must be 1 to 1024 connections per host, not 5000"}},
		{"bad reconnect policy", `bot_token = "xoxb-1"
app_token = "xapp-1"
reconnect_initial = "2s"
reconnect_max = "1s"
reconnect_stable = "0s"`, []string{"reconnect_max: must not be less than reconnect_initial",
			"reconnect_stable: must be a positive duration"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeTOML(t, tc.text)
			var got []string
			for _, p := range connector.Problems(err) {
				var ce *connector.ConfigError
				if !errors.As(p, &ce) || !strings.HasPrefix(ce.Path, "channels.slack.test.") {
					t.Errorf("problem %v is not a ConfigError under the block", p)
				}
				got = append(got, p.Error())
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems = %q, want %d", got, len(tc.want))
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no problem mentions %q in %q", w, got)
				}
			}
			for _, g := range got {
				if strings.Contains(g, "xoxb-1") || strings.Contains(g, "s3cret") {
					t.Errorf("a problem shows a secret: %q", g)
				}
			}
		})
	}
}

// loaded returns block as [channels.slack.test] read through the daemon's
// loader, which reports a value it cannot decode at the value's own key.
func loaded(t *testing.T, block string) connector.Instance {
	t.Helper()
	unset := func(string) (string, bool) { return "", false }
	cfg, err := connector.ParseConfig([]byte("[channels.slack.test]\n"+block), connector.Expander{Getenv: unset})
	if cfg == nil || len(cfg.Channels) != 1 {
		t.Fatalf("the loader gave no channel block: %v", err)
	}
	return cfg.Channels[0]
}

// TestConfigBadValueAndOtherProblems: values that cannot be decoded are
// reported at their keys, and the other keys are still judged, the nested
// reactions table and the network keys included.
func TestConfigBadValueAndOtherProblems(t *testing.T) {
	_, err := decodeConfig(loaded(t, `bot_token = "xoxb-1"
signing_secret = "s"
channels = ["support"]
max_file_bytes = "big"
request_timeout = "soon"
fetch_allow = ["10.20.0.0/33"]
[channels.slack.test.reactions]
ended = ":white_check_mark:"
`))
	var got []string
	for _, p := range connector.Problems(err) {
		got = append(got, p.Error())
	}
	want := []string{
		"channels.slack.test.max_file_bytes: ",
		"channels.slack.test.request_timeout: ",
		"channels.slack.test.channels: entry 1 must be a channel id",
		"channels.slack.test.reactions.ended: must be an emoji name without colons",
		`channels.slack.test.fetch_allow: entry 1, "10.20.0.0/33", is not a CIDR prefix`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want %d like %q", got, len(want), want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no problem like %q in %q", w, got)
		}
	}
}

// TestConfigBadValueNotJudgedAgain: a bot_token of the wrong type gets that
// one complaint, not also "is required" for the empty default left in its
// place.
func TestConfigBadValueNotJudgedAgain(t *testing.T) {
	_, err := decodeConfig(loaded(t, "bot_token = 1\nsigning_secret = \"s\"\n"))
	got := connector.Problems(err)
	if len(got) != 1 || !strings.HasPrefix(got[0].Error(), "channels.slack.test.bot_token: ") ||
		strings.Contains(got[0].Error(), "required") {
		t.Errorf("problems = %q, want only the decode error at bot_token", got)
	}
}
