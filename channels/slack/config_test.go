package slack

import (
	"errors"
	"strings"
	"testing"

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
		cfg.Reactions.Ended != "white_check_mark" || cfg.PostInterval.Seconds() != 1 {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = decodeTOML(t, goodConfig+`app_token = "xapp-1-A1-2-abc"
api_url = "http://127.0.0.1:9/api"`)
	if err != nil || !cfg.SocketMode() || cfg.APIURL != "http://127.0.0.1:9/api/" {
		t.Errorf("socket mode config = %+v, %v", cfg, err)
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
