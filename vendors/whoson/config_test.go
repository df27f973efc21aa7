package whoson

import (
	"context"
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
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/connector"
)

const (
	testAuth   = "s3cret-auth-value"
	testAPIKey = "s3cret-api-key"
)

// load parses a [vendors.whoson.test] block made of keys (TOML values as
// written in a file; "" leaves a key out) through the daemon's loader, which
// expands ${ENV} and X_file keys. It returns the block's instance and the
// loader's own errors about the block.
func load(keys map[string]string) (connector.Instance, error) {
	var lines []string
	for k, v := range keys {
		if v != "" {
			lines = append(lines, k+" = "+v)
		}
	}
	sort.Strings(lines)
	text := "[vendors.whoson.test]\n" + strings.Join(lines, "\n") + "\n"
	cfg, err := connector.ParseConfig([]byte(text), connector.Expander{Getenv: os.LookupEnv})
	if cfg == nil || len(cfg.Vendors) != 1 {
		panic(fmt.Sprintf("loader gave no vendor block: %v", err))
	}
	var mine []error
	for _, e := range flatten(err) {
		var ce *connector.ConfigError
		if errors.As(e, &ce) && strings.HasPrefix(ce.Path, "vendors.whoson.test") {
			mine = append(mine, e)
		}
	}
	return cfg.Vendors[0], errors.Join(mine...)
}

// instance is load's instance; the loader's errors must be none.
func instance(keys map[string]string) connector.Instance {
	inst, err := load(keys)
	if err != nil {
		panic(err)
	}
	return inst
}

// check runs the loader and parseConfig over keys, returning every error.
func check(keys map[string]string) error {
	inst, err := load(keys)
	if err != nil {
		return err
	}
	_, err = parseConfig(inst)
	return err
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// validKeys is a complete, valid block.
func validKeys() map[string]string {
	return map[string]string{
		"url":         `"wss://chat.example.com:8009"`,
		"domain":      `"www.example.com"`,
		"auth_string": `"` + testAuth + `"`,
		"api_key":     `"` + testAPIKey + `"`,
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := parseConfig(instance(validKeys()))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.URL, want.Domain = "wss://chat.example.com:8009", "www.example.com"
	want.AuthString, want.APIKey = testAuth, testAPIKey
	if diff := cmp.Diff(want, s.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if s.ConnectTimeout != 10*time.Second || s.QueueNoticeInterval != time.Minute || s.VisitorName != "{{.Name}}" {
		t.Errorf("defaults differ from config.example.toml: %+v", s.Config)
	}
	if p := s.reconnect(); p != (connector.Reconnect{Initial: 100 * time.Millisecond, Max: time.Minute, Stable: 10 * time.Second}) {
		t.Errorf("reconnect policy %+v, want 100ms, 1m, 10s", p)
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
		want []string // key paths, relative to the block
	}{
		{"missing url", map[string]string{"url": ""}, []string{"url"}},
		{"http url", map[string]string{"url": `"https://chat.example.com"`}, []string{"url"}},
		{"url without host", map[string]string{"url": `"ws://"`}, []string{"url"}},
		{"missing domain", map[string]string{"domain": ""}, []string{"domain"}},
		{"missing auth", map[string]string{"auth_string": ""}, []string{"auth_string"}},
		{"language", map[string]string{"language": `"eng"`}, []string{"language"}},
		{"language digits", map[string]string{"language": `"e1"`}, []string{"language"}},
		{"template syntax", map[string]string{"visitor_name": `"{{.Name"`}, []string{"visitor_name"}},
		{"template field", map[string]string{"visitor_name": `"{{.Nickname}}"`}, []string{"visitor_name"}},
		// Operator templates may not loop or call functions: check-config
		// would run out of time or memory rendering them.
		{"template range", map[string]string{"visitor_name": `"{{range 100000000000}}x{{end}}"`}, []string{"visitor_name"}},
		{"template printf", map[string]string{"visitor_name": `'{{printf "%099999999d" 0}}'`}, []string{"visitor_name"}},
		{"zero timeout", map[string]string{"connect_timeout": `"0s"`}, []string{"connect_timeout"}},
		{"negative accept", map[string]string{"accept_timeout": `"-1s"`}, []string{"accept_timeout"}},
		{"ping", map[string]string{"ping_interval": `"0s"`}, []string{"ping_interval"}},
		{"queue", map[string]string{"queue_notice_interval": `"0s"`}, []string{"queue_notice_interval"}},
		{"reconnect", map[string]string{"reconnect_max": `"0s"`}, []string{"reconnect_max"}},
		{"reconnect initial", map[string]string{"reconnect_initial": `"0s"`}, []string{"reconnect_initial"}},
		{"reconnect stable", map[string]string{"reconnect_stable": `"-1s"`}, []string{"reconnect_stable"}},
		{"reconnect max below initial", map[string]string{"reconnect_initial": `"2m"`}, []string{"reconnect_max"}},
		{"reconnect bare number", map[string]string{"reconnect_stable": "30"}, []string{"reconnect_stable"}},
		{"reconnect wrong type", map[string]string{"reconnect_initial": `"soon"`}, []string{"reconnect_initial"}},
		{"ca missing", map[string]string{"ca_file": `"/nonexistent/ca.pem"`}, []string{"ca_file"}},
		{"ca a device", map[string]string{"ca_file": `"/dev/zero"`}, []string{"ca_file"}},
		{"ca not pem", map[string]string{"ca_file": `"` + pem + `"`}, []string{"ca_file"}},
		{"everything", map[string]string{"url": `"http://x"`, "domain": "", "auth_string": "",
			"language": `"english"`, "ping_interval": `"0s"`},
			[]string{"auth_string", "domain", "language", "ping_interval", "url"}},
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
			got := errorPaths(err)
			want := make([]string, len(tc.want))
			for i, k := range tc.want {
				want[i] = "vendors.whoson.test." + k
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error paths (-want +got):\n%s\nerror: %v", diff, err)
			}
			for _, secret := range []string{testAuth, testAPIKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

// The three reconnect keys make the chat sockets' policy.
func TestConfigReconnectKeys(t *testing.T) {
	keys := validKeys()
	keys["reconnect_initial"], keys["reconnect_max"], keys["reconnect_stable"] = `"2s"`, `"3m"`, `"45s"`
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.reconnect(); p != (connector.Reconnect{Initial: 2 * time.Second, Max: 3 * time.Minute, Stable: 45 * time.Second}) {
		t.Errorf("reconnect policy %+v, want 2s, 3m, 45s", p)
	}
}

func TestConfigWrongType(t *testing.T) {
	keys := validKeys()
	keys["connect_timeout"] = `"soon"`
	keys["translation"] = `"yes"`
	keys["language"] = `"english"`
	want := []string{"vendors.whoson.test.connect_timeout", "vendors.whoson.test.language", "vendors.whoson.test.translation"}
	if diff := cmp.Diff(want, errorPaths(check(keys))); diff != "" {
		t.Errorf("every bad key at once (-want +got):\n%s", diff)
	}
	keys = validKeys()
	keys["connect_timeout"] = "5" // 5ns: surely meant "5s"
	if got := errorPaths(check(keys)); !slices.Equal(got, []string{"vendors.whoson.test.connect_timeout"}) {
		t.Errorf("integer duration: %v", got)
	}
}

// The loader reads ca_file into ca; an empty ca_file is no file.
func TestConfigCAFileThroughLoader(t *testing.T) {
	keys := validKeys()
	keys["ca_file"] = `""`
	if err := check(keys); err != nil {
		t.Errorf("empty ca_file: %v", err)
	}
}

func errorPaths(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *connector.ConfigError
		if errors.As(err, &ce) {
			out = append(out, ce.Path)
		} else {
			out = append(out, "?"+err.Error())
		}
	}
	walk(err)
	slices.Sort(out)
	return slices.Compact(out)
}

func TestVisitorName(t *testing.T) {
	for _, tc := range []struct {
		tmpl    string
		profile connector.Profile
		want    string
	}{
		{"{{.Name}}", connector.Profile{Name: "Ann Lee"}, "Ann Lee"},
		{"{{.Name}}", connector.Profile{}, "+15550001111"},
		{"{{.Name}}", connector.Profile{Phone: "+15559998888"}, "+15559998888"},
		{"SMS {{.Phone}}", connector.Profile{Phone: "+1555"}, "SMS +1555"},
		{"", connector.Profile{Name: "x"}, "+15550001111"},
		{"{{if .Email}}{{.Email}}{{end}}", connector.Profile{}, "+15550001111"},
	} {
		keys := validKeys()
		keys["visitor_name"] = `"` + tc.tmpl + `"`
		s, err := parseConfig(instance(keys))
		if err != nil {
			t.Fatal(err)
		}
		c := &connector.Conversation{Customer: "+15550001111", Profile: tc.profile}
		if got := s.visitorName(c); got != tc.want {
			t.Errorf("%q over %+v = %q, want %q", tc.tmpl, tc.profile, got, tc.want)
		}
	}
}

// A Slack customer's address is no phone number: it is not sent as one, and
// names the visitor only when the profile has no name.
func TestSlackCustomerIsNoPhone(t *testing.T) {
	s, err := parseConfig(instance(validKeys()))
	if err != nil {
		t.Fatal(err)
	}
	c := &connector.Conversation{Customer: "C0SUPPORT1/1763900000.000100"}
	if got := customerPhone(c); got != "" {
		t.Errorf("customerPhone = %q, want none", got)
	}
	if got := s.visitorName(c); got != c.Customer {
		t.Errorf("visitorName without a profile = %q, want the address", got)
	}
	c.Profile.Name = "Ann"
	if got := s.visitorName(c); got != "Ann" {
		t.Errorf("visitorName = %q, want Ann", got)
	}
}

// TestConfigInsecureTransport: ws:// to a host that is not loopback is
// refused at validation, naming url, unless allow_insecure_transport is set;
// then it builds and warns at Start. Loopback ws:// needs nothing.
func TestConfigInsecureTransport(t *testing.T) {
	for _, tc := range []struct {
		url, allow string
		ok         bool
	}{
		{`"ws://chat.example.com:8009"`, "", false},
		{`"ws://10.0.0.5:8009"`, "false", false},
		{`"ws://[2001:db8::1]:8009"`, "", false},
		{`"ws://localhost.example.com:8009"`, "", false},
		{`"ws://chat.example.com:8009"`, "true", true},
		{`"ws://127.0.0.1:8009"`, "", true},
		{`"ws://127.9.9.9:8009"`, "", true},
		{`"ws://[::1]:8009"`, "", true},
		{`"ws://LocalHost:8009"`, "", true},
		{`"wss://chat.example.com:8009"`, "", true},
	} {
		keys := validKeys()
		keys["url"], keys["allow_insecure_transport"] = tc.url, tc.allow
		err := check(keys)
		if tc.ok {
			if err != nil {
				t.Errorf("%s allow=%q: %v", tc.url, tc.allow, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s allow=%q: accepted", tc.url, tc.allow)
			continue
		}
		if got := errorPaths(err); len(got) != 1 || got[0] != "vendors.whoson.test.url" ||
			!strings.Contains(err.Error(), "allow_insecure_transport") {
			t.Errorf("%s allow=%q: %v, want one error on url naming allow_insecure_transport", tc.url, tc.allow, err)
		}
	}

	keys := validKeys()
	keys["url"], keys["allow_insecure_transport"] = `"ws://chat.example.com:8009"`, "true"
	core, logs := observer.New(zapcore.WarnLevel)
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.New(core), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	logs.TakeAll()
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	warned := logs.FilterMessageSnippet("ws://").All()
	if len(warned) != 1 || warned[0].ContextMap()["host"] != "chat.example.com" {
		t.Errorf("warnings at Start: %v", logs.All())
	}
}
