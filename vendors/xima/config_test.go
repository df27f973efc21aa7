package xima

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

const testKey = "s3cret-xima-api-key"

// load parses a [vendors.xima.test] block made of keys (TOML values as
// written in a file; "" leaves a key out) through the daemon's loader.
func load(keys map[string]string) (connector.Instance, error) {
	var lines []string
	for k, v := range keys {
		if v != "" {
			lines = append(lines, k+" = "+v)
		}
	}
	sort.Strings(lines)
	return loadText("[vendors.xima.test]\n" + strings.Join(lines, "\n") + "\n")
}

func loadText(text string) (connector.Instance, error) {
	cfg, err := connector.ParseConfig([]byte(text), connector.Expander{Getenv: os.LookupEnv})
	if cfg == nil || len(cfg.Vendors) != 1 {
		panic(fmt.Sprintf("loader gave no vendor block: %v", err))
	}
	var mine []error
	for _, e := range connector.Problems(err) {
		var ce *connector.ConfigError
		if errors.As(e, &ce) && strings.HasPrefix(ce.Path, "vendors.xima.") {
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
		"installation_id": `"9c108bb3-8924-4234-a53c-be9ab284d4e3"`,
		"api_key":         `"` + testKey + `"`,
		"skill":           `"Support"`,
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := parseConfig(instance(validKeys()))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.InstallationID, want.APIKey, want.Skill = "9c108bb3-8924-4234-a53c-be9ab284d4e3", testKey, "Support"
	if diff := cmp.Diff(want, s.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if s.base.String() != DefaultBaseURL || s.sqsBase != nil || s.waitTmpl == nil {
		t.Errorf("base %s, sqs %v, wait template %v", s.base, s.sqsBase, s.waitTmpl)
	}
}

// The block shipped in config.example.toml (kept here as
// testdata/example-block.toml) loads with no unknown key and writes every
// default as the code has it.
func TestConfigExampleBlock(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "example-block.toml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XIMA_API_KEY", testKey)
	inst, err := loadText(string(text))
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseConfig(inst)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.InstallationID, want.APIKey, want.Skill = "9c108bb3-8924-4234-a53c-be9ab284d4e3", testKey, "Support"
	if diff := cmp.Diff(want, s.Config); diff != "" {
		t.Errorf("example block (-code's defaults +example):\n%s", diff)
	}
	for _, key := range tomlKeys(Config{}) {
		if !strings.Contains(string(text), "\n"+key+" = ") {
			t.Errorf("example block lacks %s", key)
		}
	}
}

// tomlKeys lists the toml keys of a config struct.
func tomlKeys(v any) []string {
	var out []string
	for _, f := range reflect.VisibleFields(reflect.TypeOf(v)) {
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func TestConfigLoopbackAndEndpoint(t *testing.T) {
	keys := validKeys()
	keys["base_url"] = `"http://127.0.0.1:8080/"`
	keys["sqs_endpoint"] = `"http://127.0.0.1:9324"`
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	if s.base.String() != "http://127.0.0.1:8080" || s.sqsBase.String() != "http://127.0.0.1:9324" {
		t.Errorf("base %s, sqs %s", s.base, s.sqsBase)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"missing installation", map[string]string{"installation_id": ""}, []string{"installation_id"}},
		{"missing key", map[string]string{"api_key": ""}, []string{"api_key"}},
		{"missing skill", map[string]string{"skill": `"  "`}, []string{"skill"}},
		{"base over http", map[string]string{"base_url": `"http://mm-v1.ximasoftware.com"`}, []string{"base_url"}},
		{"base with a query", map[string]string{"base_url": `"https://mm-v1.ximasoftware.com/?x=1"`}, []string{"base_url"}},
		{"base not a url", map[string]string{"base_url": `"mm-v1.ximasoftware.com"`}, []string{"base_url"}},
		{"endpoint with a path", map[string]string{"sqs_endpoint": `"https://sqs.us-east-1.amazonaws.com/123/q"`}, []string{"sqs_endpoint"}},
		{"endpoint over http", map[string]string{"sqs_endpoint": `"http://sqs.example.com"`}, []string{"sqs_endpoint"}},
		{"name template", map[string]string{"customer_name": `"{{.Nickname}}"`}, []string{"customer_name"}},
		{"email template loop", map[string]string{"customer_email": `"{{range 100000000000}}x{{end}}"`}, []string{"customer_email"}},
		{"wait template", map[string]string{"wait_notice": `"{{.Minutes}}"`}, []string{"wait_notice"}},
		{"still-here past the deadline", map[string]string{"still_here_interval": `"25s"`, "still_here_jitter": `"5s"`}, []string{"still_here_interval"}},
		{"negative jitter", map[string]string{"still_here_jitter": `"-1s"`}, []string{"still_here_jitter"}},
		{"zero still-here", map[string]string{"still_here_interval": `"0s"`}, []string{"still_here_interval"}},
		{"poll wait too long", map[string]string{"poll_wait": `"30s"`}, []string{"poll_wait"}},
		{"poll wait not whole", map[string]string{"poll_wait": `"1500ms"`}, []string{"poll_wait"}},
		{"batch too big", map[string]string{"poll_max_messages": "11"}, []string{"poll_max_messages"}},
		{"no pollers", map[string]string{"max_pollers": "0"}, []string{"max_pollers"}},
		{"zero refresh", map[string]string{"credentials_refresh": `"0s"`}, []string{"credentials_refresh"}},
		{"reconnect", map[string]string{"reconnect_initial": `"2m"`}, []string{"reconnect_max"}},
		{"bare number", map[string]string{"request_timeout": "10"}, []string{"request_timeout"}},
		{"no connections", map[string]string{"http_connections": "0"}, []string{"http_connections"}},
		{"too many connections", map[string]string{"http_connections": "2048"}, []string{"http_connections"}},
		{"everything", map[string]string{"installation_id": "", "api_key": "", "skill": "", "health_interval": `"0s"`},
			[]string{"api_key", "health_interval", "installation_id", "skill"}},
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
				want = append(want, "vendors.xima.test."+k)
			}
			if diff := cmp.Diff(want, errorPaths(err)); diff != "" {
				t.Errorf("error paths (-want +got):\n%s\nerror: %v", diff, err)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error shows the API key: %v", err)
			}
		})
	}
}

// api_key_file reads the key from a file (one trailing newline dropped).
func TestConfigKeyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := validKeys()
	keys["api_key"], keys["api_key_file"] = "", fmt.Sprintf("%q", file)
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	if s.APIKey.Reveal() != testKey {
		t.Errorf("api key %q", s.APIKey.Reveal())
	}
}

func TestCustomerName(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		c    connector.Conversation
		want string
	}{
		{"{{.Name}}", connector.Conversation{Customer: "+15551234567", Profile: connector.Profile{Name: "Ann"}}, "Ann"},
		{"{{.Name}}", connector.Conversation{Customer: "+15551234567"}, "+15551234567"},
		{"{{.Name}}", connector.Conversation{Customer: "C2/1700000000.1", Profile: connector.Profile{Phone: "+44"}}, "+44"},
		{"{{.Name}}", connector.Conversation{Customer: "C2/1700000000.1"}, "C2/1700000000.1"},
		{"{{if .Name}}{{.Name}} ({{.Customer}}){{else}}{{.Customer}}{{end}} via {{.Channel}}",
			connector.Conversation{Channel: "slack.support", Customer: "U1", Profile: connector.Profile{Name: "Bo"}}, "Bo (U1) via slack.support"},
		{"{{.Name}}", connector.Conversation{Customer: "+1", Profile: connector.Profile{Name: strings.Repeat("é", 300)}}, strings.Repeat("é", 100)},
	} {
		keys := validKeys()
		keys["customer_name"] = fmt.Sprintf("%q", tc.tmpl)
		s, err := parseConfig(instance(keys))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.customerName(&tc.c); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestWaitText(t *testing.T) {
	s := testSettings(t)
	if got := s.waitText("about 2 minutes"); got != "Estimated wait: about 2 minutes." {
		t.Errorf("wait notice %q", got)
	}
	if got := s.waitText("  "); got != "" {
		t.Errorf("wait notice for no wait: %q", got)
	}
	keys := validKeys()
	keys["wait_notice"] = `""`
	keys["wait_notice_interval"] = `"10s"`
	s2, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.waitText("about 2 minutes"); got != "" || s2.WaitNoticeInterval != 10*time.Second {
		t.Errorf("wait notice turned off: %q", got)
	}
}
