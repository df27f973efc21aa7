package sms

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "0123456789abcdef0123456789abcdef"
)

// instance returns the block text as [channels.sms.main].
func instance(block string) connector.Instance {
	return connector.NewInstance("channels.sms.main", "sms", "main", func(v any) error {
		_, err := toml.Decode(block, v)
		return err
	})
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := decodeConfig(instance(`
account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"
api_url = ""
`))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.AccountSID, want.AuthToken, want.From = testSID, testToken, "+15551230000"
	if want.APIURL != "https://api.twilio.com" || want.RequestTimeout != 10*time.Second || !want.StatusCallback ||
		want.HTTPConnections != 32 {
		t.Errorf("defaults changed: %+v", want)
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestConfigAllKeys(t *testing.T) {
	cfg, err := decodeConfig(instance(`
account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"
messaging_service_sid = "MG0123456789abcdef0123456789abcdef"
api_url = "http://127.0.0.1:9999/"
request_timeout = "250ms"
http_connections = 200
status_callback = false
max_segments = 3
truncation_mark = "..."
gsm_normalize = true
numbers = ["+15551230001"]
opt_out_keywords = ["ARRET"]
opt_in_keywords = ["ARRIBA"]
help_keywords = ["AIDE"]
opt_out_replies = false
opt_out_reply = "bye"
opt_in_reply = "hi"
help_reply = "help"
mps = 3.0
sender_mps = { "+15551230001" = 2.0 }
burst = 1
recipient_limit = 5
recipient_window = "5s"
catch_up = false
catch_up_interval = "1m"
media_link_ttl = "1h"
fetch_timeout = "5s"
max_media = 3
max_media_bytes = 1000
media_types = ["image/png"]
media_refused_notice = "no {{.Name}}"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.AccountSID, want.AuthToken, want.From = testSID, testToken, "+15551230000"
	want.MessagingServiceSID, want.APIURL = "MG0123456789abcdef0123456789abcdef", "http://127.0.0.1:9999/"
	want.RequestTimeout, want.StatusCallback, want.HTTPConnections = 250*time.Millisecond, false, 200
	want.MaxSegments, want.TruncationMark, want.GSMNormalize = 3, "...", true
	want.Numbers = []string{"+15551230001"}
	want.OptOutKeywords, want.OptInKeywords, want.HelpKeywords = []string{"ARRET"}, []string{"ARRIBA"}, []string{"AIDE"}
	want.OptOutReplies, want.OptOutReply, want.OptInReply, want.HelpReply = false, "bye", "hi", "help"
	want.MPS, want.SenderMPS, want.Burst = 3, map[string]float64{"+15551230001": 2}, 1
	want.RecipientLimit, want.RecipientWindow = 5, 5*time.Second
	want.CatchUp, want.CatchUpInterval = false, time.Minute
	want.MediaLinkTTL, want.FetchTimeout, want.MaxMedia, want.MaxMediaBytes = time.Hour, 5*time.Second, 3, 1000
	want.MediaTypes, want.MediaRefusedNotice = []string{"image/png"}, "no {{.Name}}"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	const good = `account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"
`
	tests := []struct {
		name  string
		block string
		want  []string // every error, "path: message" prefixes
	}{
		{"empty block", ``, []string{
			"channels.sms.main.account_sid: is required",
			"channels.sms.main.auth_token: is required",
			"channels.sms.main.from: from or messaging_service_sid is required",
		}},
		{"bad sids", `account_sid = "XX0123"
auth_token = "` + testToken + `"
messaging_service_sid = "AC0123456789abcdef0123456789abcdef"`, []string{
			`channels.sms.main.account_sid: must be "AC" followed by 32 letters and digits, not "XX0123"`,
			`channels.sms.main.messaging_service_sid: must be "MG" followed by 32 letters and digits`,
		}},
		{"from not E.164", good + `from = "5551230000"`, []string{
			`channels.sms.main.from: must be a phone number in E.164 form`,
		}},
		{"token with a stray quote", `account_sid = "` + testSID + `"
auth_token = "'sekrit123'"
from = "+15551230000"`, []string{
			"channels.sms.main.auth_token: must be letters and digits only",
		}},
		{"api_url not http", good + `api_url = "ftp://example.com"`, []string{
			`channels.sms.main.api_url: must be an absolute http(s) URL`,
		}},
		{"api_url relative", good + `api_url = "localhost:8080"`, []string{
			`channels.sms.main.api_url: must be an absolute http(s) URL`,
		}},
		{"api_url with path", good + `api_url = "https://proxy.example.com/twilio"`, []string{
			`channels.sms.main.api_url: must be a scheme and host only`,
		}},
		{"timeout zero", good + `request_timeout = "0s"`, []string{
			`channels.sms.main.request_timeout: must be a positive duration`,
		}},
		{"no connections", good + `http_connections = 0`, []string{
			`channels.sms.main.http_connections: must be 1 to 1024 connections per host, not 0`,
		}},
		{"too many connections", good + `http_connections = 1025`, []string{
			`channels.sms.main.http_connections: must be 1 to 1024 connections per host, not 1025`,
		}},
		{"wrong type", good + `status_callback = "yes"`, []string{
			`channels.sms.main: `,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Fix duplicate keys: a test's extra key replaces good's.
			block := dedupe(tt.block)
			_, err := decodeConfig(instance(block))
			if err == nil {
				t.Fatal("no error")
			}
			got := configErrors(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d like %q", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d = %q, want prefix %q", i, got[i], w)
				}
			}
		})
	}
}

// TestConfigUnsetEnv: check-config keeps an unset "${NAME}" as the value and
// warns about it itself.
func TestConfigUnsetEnv(t *testing.T) {
	_, err := decodeConfig(instance(`account_sid = "` + testSID + `"
auth_token = "${TWILIO_AUTH_TOKEN}"
from = "+15551230000"`))
	if err != nil {
		t.Error(err)
	}
}

func TestConfigErrorsHideToken(t *testing.T) {
	const token = "hunter2hunter2"
	_, err := decodeConfig(instance(`account_sid = "bad"
auth_token = "` + token + `-x"
from = "nope"
api_url = "::"`))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error text shows the token: %v", err)
	}
}

func TestKindBuild(t *testing.T) {
	k := Kind()
	if k.Kind != "sms" {
		t.Errorf("Kind = %q", k.Kind)
	}
	ch, err := k.Build(connector.ChannelEnv{Instance: instance(``)})
	if err == nil || ch != nil {
		t.Fatalf("Build of an empty block = %v, %v; want nil channel and errors", ch, err)
	}
	ch, err = k.Build(connector.ChannelEnv{Instance: instance(`account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"`), PublicURL: "https://c.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "sms.main" {
		t.Errorf("Name = %q", ch.Name())
	}
	routes := ch.(connector.HTTPChannel).Routes()
	for _, p := range []string{"POST /sms/main", "POST /sms/main/status"} {
		if routes[p] == nil {
			t.Errorf("no route %q in %v", p, routes)
		}
	}
}

// configErrors returns the messages of a joined error (joins nested at any
// depth), each checked to be a *connector.ConfigError.
func configErrors(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, e := range connector.Problems(err) {
		var ce *connector.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("%v (%T) is not a *connector.ConfigError", e, e)
		}
		out = append(out, e.Error())
	}
	return out
}

// dedupe keeps the last line for each key, so that a test can override one.
func dedupe(block string) string {
	lines := strings.Split(block, "\n")
	last := map[string]int{}
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, "="); ok {
			last[strings.TrimSpace(k)] = i
		}
	}
	var out []string
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, "="); ok && last[strings.TrimSpace(k)] != i {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// loaded returns block as [channels.sms.main] read through the daemon's
// loader, which reports a value it cannot decode at the value's own key.
func loaded(t *testing.T, block string) connector.Instance {
	t.Helper()
	unset := func(string) (string, bool) { return "", false }
	cfg, err := connector.ParseConfig([]byte("[channels.sms.main]\n"+block), connector.Expander{Getenv: unset})
	if cfg == nil || len(cfg.Channels) != 1 {
		t.Fatalf("the loader gave no channel block: %v", err)
	}
	return cfg.Channels[0]
}

// TestConfigBadValueAndOtherProblems: a value that cannot be decoded is
// reported at its key, and the other keys are still judged: the operator
// sees every problem in one check-config run.
func TestConfigBadValueAndOtherProblems(t *testing.T) {
	_, err := decodeConfig(loaded(t, `account_sid = "`+testSID+`"
auth_token = "`+testToken+`"
from = "5551230000"
request_timeout = "soon"
status_callback = "yes"
`))
	got := configErrors(t, err)
	want := []string{
		"channels.sms.main.request_timeout: ",
		"channels.sms.main.status_callback: ",
		`channels.sms.main.from: must be a phone number in E.164 form like "+15551230000", not "5551230000"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors %q, want %d like %q", len(got), got, len(want), want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no error like %q in %q", w, got)
		}
	}
}

// TestConfigBadValueNotJudgedAgain: a key whose value could not be decoded
// gets that one complaint, not also "is required" for the default left in
// its place.
func TestConfigBadValueNotJudgedAgain(t *testing.T) {
	_, err := decodeConfig(loaded(t, `account_sid = 12
auth_token = "`+testToken+`"
from = "+15551230000"
`))
	got := configErrors(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "channels.sms.main.account_sid: ") || strings.Contains(got[0], "required") {
		t.Errorf("errors = %q, want only the decode error at account_sid", got)
	}
}

func TestPacingConfigErrors(t *testing.T) {
	_, err := decodeConfig(instance(`account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"
numbers = ["+15551230000", "555"]
mps = -1.0
sender_mps = { "bogus" = 1.0, "+18005550100" = -2.0 }
burst = 0
recipient_limit = -1
recipient_window = "0s"
`))
	got := strings.Join(configErrors(t, err), "\n")
	for _, want := range []string{
		`numbers: "+15551230000" is listed twice`, `numbers: "555" is not a phone number`,
		"mps: must be 0", `sender_mps: "bogus" is neither`, "sender_mps: +18005550100: must be 0",
		"burst: must be 1", "recipient_limit: must be 0", "recipient_window: must be a positive",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}
