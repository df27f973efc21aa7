package cobrowser

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

const testToken = "s3cret-api-token"

// load parses a [vendors.cobrowser.test] block made of keys (TOML values as
// written in a file; "" leaves a key out) through the daemon's loader.
func load(keys map[string]string) (connector.Instance, error) {
	var lines []string
	for k, v := range keys {
		if v != "" {
			lines = append(lines, k+" = "+v)
		}
	}
	sort.Strings(lines)
	text := "[vendors.cobrowser.test]\n" + strings.Join(lines, "\n") + "\n"
	cfg, err := connector.ParseConfig([]byte(text), connector.Expander{Getenv: os.LookupEnv})
	if cfg == nil || len(cfg.Vendors) != 1 {
		panic(fmt.Sprintf("loader gave no vendor block: %v", err))
	}
	var mine []error
	for _, e := range connector.Problems(err) {
		var ce *connector.ConfigError
		if errors.As(e, &ce) && strings.HasPrefix(ce.Path, "vendors.cobrowser.test") {
			mine = append(mine, e)
		}
	}
	return cfg.Vendors[0], errors.Join(mine...)
}

func instance(keys map[string]string) connector.Instance {
	inst, err := load(keys)
	if err != nil {
		panic(err)
	}
	return inst
}

func check(keys map[string]string) error {
	inst, err := load(keys)
	if err != nil {
		return err
	}
	_, err = parseConfig(inst)
	return err
}

func errorPaths(err error) []string {
	var out []string
	for _, e := range connector.Problems(err) {
		var ce *connector.ConfigError
		if errors.As(e, &ce) {
			out = append(out, ce.Path)
		} else {
			out = append(out, e.Error())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func validKeys() map[string]string {
	return map[string]string{
		"api_token":          `"` + testToken + `"`,
		"campaign_id":        `"Tm1dyqk5Nvq5TibLRSyJUkJX2kawLsHX"`,
		"xmpp_websocket_url": `"wss://app.cobrowser.com/websocket"`,
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := parseConfig(instance(validKeys()))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.APIToken, want.CampaignID = testToken, "Tm1dyqk5Nvq5TibLRSyJUkJX2kawLsHX"
	want.XMPPWebSocketURL = "wss://app.cobrowser.com/websocket"
	if diff := cmp.Diff(want, s.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if s.api.String() != DefaultAPIURL || s.wsURL == nil || s.transport() != "websocket app.cobrowser.com" {
		t.Errorf("api %s, ws %v", s.api, s.wsURL)
	}
	if p := s.reconnect(); p != (connector.Reconnect{Initial: 500 * time.Millisecond, Max: time.Minute, Stable: 30 * time.Second}) {
		t.Errorf("reconnect policy %+v", p)
	}
}

func TestConfigTCP(t *testing.T) {
	keys := validKeys()
	keys["xmpp_websocket_url"], keys["xmpp_address"] = "", `"xmpp.app.cobrowser.com:5222"`
	keys["api_url"] = `"https://app.cobrowser.com/api/app.php/chatbot/v1"` // no trailing slash
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	if s.wsURL != nil || s.transport() != "tcp xmpp.app.cobrowser.com:5222" || s.api.Path != "/api/app.php/chatbot/v1/" {
		t.Errorf("ws %v, transport %s, api %s", s.wsURL, s.transport(), s.api)
	}
}

func TestConfigErrors(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(pem, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"neither xmpp key", map[string]string{"xmpp_websocket_url": ""}, []string{"xmpp_websocket_url"}},
		{"both xmpp keys", map[string]string{"xmpp_address": `"x:5222"`}, []string{"xmpp_address"}},
		{"address without port", map[string]string{"xmpp_websocket_url": "", "xmpp_address": `"xmpp.example.com"`}, []string{"xmpp_address"}},
		{"ws to a remote host", map[string]string{"xmpp_websocket_url": `"ws://app.cobrowser.com/websocket"`}, []string{"xmpp_websocket_url"}},
		{"https websocket", map[string]string{"xmpp_websocket_url": `"https://app.cobrowser.com/websocket"`}, []string{"xmpp_websocket_url"}},
		{"missing token", map[string]string{"api_token": ""}, []string{"api_token"}},
		{"missing campaign", map[string]string{"campaign_id": ""}, []string{"campaign_id"}},
		{"campaign with a slash", map[string]string{"campaign_id": `"a/b"`}, []string{"campaign_id"}},
		{"api over http", map[string]string{"api_url": `"http://app.cobrowser.com/v1/"`}, []string{"api_url"}},
		{"api with a query", map[string]string{"api_url": `"https://app.cobrowser.com/v1/?x=1"`}, []string{"api_url"}},
		{"template", map[string]string{"visitor_identifier": `"{{.Nickname}}"`}, []string{"visitor_identifier"}},
		{"template loop", map[string]string{"visitor_identifier": `"{{range 100000000000}}x{{end}}"`}, []string{"visitor_identifier"}},
		{"zero timeout", map[string]string{"send_timeout": `"0s"`}, []string{"send_timeout"}},
		{"negative block", map[string]string{"block_duration": `"-1h"`}, []string{"block_duration"}},
		{"debounce", map[string]string{"presence_debounce": `"0s"`}, []string{"presence_debounce"}},
		{"reconnect", map[string]string{"reconnect_initial": `"2m"`}, []string{"reconnect_max"}},
		{"bare number", map[string]string{"ping_interval": "30"}, []string{"ping_interval"}},
		{"no connections", map[string]string{"http_connections": "0"}, []string{"http_connections"}},
		{"too many connections", map[string]string{"http_connections": "1025"}, []string{"http_connections"}},
		{"ca not pem", map[string]string{"ca_file": `"` + pem + `"`}, []string{"ca_file"}},
		{"ca missing", map[string]string{"ca_file": `"/nonexistent/ca.pem"`}, []string{"ca_file"}},
		{"everything", map[string]string{"api_token": "", "campaign_id": "", "xmpp_websocket_url": "", "connect_timeout": `"0s"`},
			[]string{"api_token", "campaign_id", "connect_timeout", "xmpp_websocket_url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := validKeys()
			for k, v := range tc.set {
				keys[k] = v
			}
			err := check(keys)
			if err == nil {
				t.Fatal("no error")
			}
			var want []string
			for _, k := range tc.want {
				want = append(want, "vendors.cobrowser.test."+k)
			}
			if diff := cmp.Diff(want, errorPaths(err)); diff != "" {
				t.Errorf("error paths (-want +got):\n%s\nerror: %v", diff, err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

// The ca_file the loader reads arrives as ca; a loopback ws:// is allowed
// (tests).
func TestConfigCAAndLoopback(t *testing.T) {
	keys := validKeys()
	keys["xmpp_websocket_url"] = `"ws://127.0.0.1:5280/websocket"`
	keys["api_url"] = `"http://127.0.0.1:8080/v1/"`
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	if s.tls.RootCAs != nil {
		t.Error("a CA pool without ca_file")
	}
}

func TestVisitorIdentifier(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		c    connector.Conversation
		want string
	}{
		{"{{.Name}}", connector.Conversation{Customer: "+15551234567", Profile: connector.Profile{Name: "Ann"}}, "Ann"},
		{"{{.Name}}", connector.Conversation{Customer: "+15551234567"}, "+15551234567"},
		{"{{.Name}}", connector.Conversation{Customer: "T1/C2/1700000000.1", Profile: connector.Profile{Phone: "+44"}}, "+44"},
		{"{{.Name}}", connector.Conversation{Customer: "T1/C2/1700000000.1"}, "T1/C2/1700000000.1"},
		{"{{if .Name}}{{.Name}} ({{.Customer}}){{else}}{{.Customer}}{{end}} via {{.Channel}}",
			connector.Conversation{Channel: "slack.support", Customer: "U1", Profile: connector.Profile{Name: "Bo"}}, "Bo (U1) via slack.support"},
	} {
		keys := validKeys()
		keys["visitor_identifier"] = fmt.Sprintf("%q", tc.tmpl)
		s, err := parseConfig(instance(keys))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.visitorIdentifier(&tc.c); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}
