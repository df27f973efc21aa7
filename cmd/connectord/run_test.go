package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unset ${NAME} stops run only where the adapter needs the key as
// configured: Slack's signing secret is not used in Socket Mode (a warning),
// but is over the Events API (refused, naming the variable).
func TestUnsetVariableStopsOnlyWhereUsed(t *testing.T) {
	const block = `
[http]
public_url = "https://x.example.com"
[channels.slack.support]
bot_token = "xoxb-1"
%s
signing_secret = "${CONNECTORD_TEST_UNSET_SECRET}"
channels = ["C0123456789"]
[vendors.whoson.sales]
url = "ws://127.0.0.1:1"
domain = "d"
auth_string = "a"
[[routes]]
channel = "slack.support"
vendor = "whoson.sales"
`
	os.Unsetenv("CONNECTORD_TEST_UNSET_SECRET")
	for _, tc := range []struct {
		name, mode string
		ok         bool
		want       string
	}{
		{"socket mode", `app_token = "xapp-1"`, true, "warning: channels.slack.support.signing_secret: environment variable CONNECTORD_TEST_UNSET_SECRET is not set"},
		{"events api", ``, false, "channels.slack.support.signing_secret: environment variable CONNECTORD_TEST_UNSET_SECRET is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(strings.Replace(block, "%s", tc.mode, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cfg, err := loadConfig(path, &stderr)
			if (err == nil) != tc.ok || (cfg != nil) != tc.ok {
				t.Errorf("loadConfig: %v, want ok=%v\n%s", err, tc.ok, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}
