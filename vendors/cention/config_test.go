package cention

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func validKeys() map[string]string {
	return map[string]string{
		"base_url": `"https://cloud.cention.com/s/demo/"`,
		"area":     "2",
		"origin":   `"https://www.example.com"`,
	}
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

func TestConfigDefaults(t *testing.T) {
	s, err := parseConfig(instance(validKeys()))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.BaseURL, want.Area, want.Origin = "https://cloud.cention.com/s/demo/", 2, "https://www.example.com"
	if diff := cmp.Diff(want, s.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if p := s.reconnect(); p != (connector.Reconnect{Initial: 500 * time.Millisecond, Max: time.Minute, Stable: 30 * time.Second}) {
		t.Errorf("reconnect %+v", p)
	}
	for got, want := range map[string]string{
		s.socketURL("connectord-a b+c"):    "wss://cloud.cention.com/s/demo/external.ws?token=connectord-a+b%2Bc",
		s.apiURL("canchat", nil):           "https://cloud.cention.com/s/demo/socket/external.api/canchat",
		s.uploadURL():                      "https://cloud.cention.com/s/demo/Cention/web/chat/client/uploadAttachment",
		s.fileURL("/s/demo/Cention/x?t=1"): "https://cloud.cention.com/s/demo/Cention/x?t=1",
		s.fileURL("/Cention/x"):            "https://cloud.cention.com/s/demo/Cention/x",
		s.fileURL("https://cdn.example/f"): "https://cdn.example/f",
		s.fileURL("javascript:alert(1)"):   "",
		s.fileURL(""):                      "",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// Every default of the code is what Defaults() gives the example check.
func TestDefaultsMatch(t *testing.T) {
	if diff := cmp.Diff(defaultConfig(), *Defaults().(*Config)); diff != "" {
		t.Error(diff)
	}
}

func TestConfigErrors(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(pem, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit map[string]string
		want []string
	}{
		{"missing required", map[string]string{"base_url": "", "area": "", "origin": ""},
			[]string{"vendors.cention.test.area", "vendors.cention.test.base_url", "vendors.cention.test.origin"}},
		{"http to a remote host", map[string]string{"base_url": `"http://cloud.cention.com/s/demo"`}, []string{"vendors.cention.test.base_url"}},
		{"base with a query", map[string]string{"base_url": `"https://cloud.cention.com/s/demo?x=1"`}, []string{"vendors.cention.test.base_url"}},
		{"ws base", map[string]string{"base_url": `"wss://cloud.cention.com/s/demo"`}, []string{"vendors.cention.test.base_url"}},
		{"origin with a path", map[string]string{"origin": `"https://www.example.com/chat"`}, []string{"vendors.cention.test.origin"}},
		{"origin without scheme", map[string]string{"origin": `"www.example.com"`}, []string{"vendors.cention.test.origin"}},
		{"negative area", map[string]string{"area": "-1"}, []string{"vendors.cention.test.area"}},
		{"area as a string", map[string]string{"area": `"2"`}, []string{"vendors.cention.test.area"}},
		{"bad templates", map[string]string{"customer_name": `"{{.Nope}}"`, "question": `"{{"`},
			[]string{"vendors.cention.test.customer_name", "vendors.cention.test.question"}},
		{"empty expired notice", map[string]string{"expired_notice": `""`}, []string{"vendors.cention.test.expired_notice"}},
		{"durations", map[string]string{"send_timeout": `"0s"`, "ping_interval": `"-1s"`, "reconnect_max": `"1ms"`},
			[]string{"vendors.cention.test.ping_interval", "vendors.cention.test.reconnect_max", "vendors.cention.test.send_timeout"}},
		{"bare number duration", map[string]string{"connect_timeout": "10"}, []string{"vendors.cention.test.connect_timeout"}},
		{"negative attachment size", map[string]string{"max_attachment_size": "-1"}, []string{"vendors.cention.test.max_attachment_size"}},
		{"ca file", map[string]string{"ca_file": `"` + pem + `"`}, []string{"vendors.cention.test.ca_file"}},
		{"no connections", map[string]string{"http_connections": "0"}, []string{"vendors.cention.test.http_connections"}},
		{"too many connections", map[string]string{"http_connections": "1025"}, []string{"vendors.cention.test.http_connections"}},
		{"most connections", map[string]string{"http_connections": "1024"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := validKeys()
			for k, v := range tc.edit {
				keys[k] = v
			}
			if got := errorPaths(check(keys)); !slices.Equal(got, tc.want) {
				t.Errorf("errors at %q, want %q (%v)", got, tc.want, check(keys))
			}
		})
	}
}

// The customer's name: the template, else the phone, else the address.
func TestCustomerName(t *testing.T) {
	keys := validKeys()
	keys["customer_name"] = `"{{.Name}}{{if .Email}} <{{.Email}}>{{end}}"`
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    connector.Conversation
		want string
	}{
		{connector.Conversation{Customer: "+15551230000", Profile: connector.Profile{Name: "Jo", Email: "jo@x.org"}}, "Jo <jo@x.org>"},
		{connector.Conversation{Customer: "+15551230000"}, "+15551230000"},
		{connector.Conversation{Customer: "T1/C2/1700.1", Profile: connector.Profile{Phone: "+4470000"}}, "+4470000"},
		{connector.Conversation{Customer: "T1/C2/1700.1"}, "T1/C2/1700.1"},
	} {
		if got := s.customerName(&tc.c); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
	keys["question"] = `"{{if false}}x{{end}}"`
	s, _ = parseConfig(instance(keys))
	if q := s.question(&connector.Conversation{Channel: "slack.support"}); q != "A customer writes by slack.support." {
		t.Errorf("question fallback %q", q)
	}
}

// The README's configuration block (the one for config.example.toml)
// loads with no error and holds every default, and writes every key.
func TestREADMEBlock(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "```toml\n[vendors.cention.cloud]\n")
	end := strings.Index(text[start+1:], "```\n")
	if start < 0 || end < 0 {
		t.Fatal("no [vendors.cention.cloud] block in README.md")
	}
	block := text[start+len("```toml\n") : start+1+end]
	cfg, err := connector.ParseConfig([]byte(block), connector.Expander{Getenv: os.LookupEnv})
	if err != nil || cfg == nil || len(cfg.Vendors) != 1 {
		t.Fatalf("README block: %v", err)
	}
	s, err := parseConfig(cfg.Vendors[0])
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.BaseURL, want.Area, want.Origin = "https://cloud.cention.com/s/demo", 2, "https://www.example.com"
	if diff := cmp.Diff(want, s.Config); diff != "" {
		t.Errorf("README block is not the defaults (-want +got):\n%s", diff)
	}
	var raw map[string]map[string]map[string]map[string]any
	if _, err := toml.Decode(block, &raw); err != nil {
		t.Fatal(err)
	}
	written := raw["vendors"]["cention"]["cloud"]
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		key := typ.Field(i).Tag.Get("toml")
		if _, ok := written[key]; !ok && key != "ca" {
			t.Errorf("README block lacks %s", key)
		}
	}
}
