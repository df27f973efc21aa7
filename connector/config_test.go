package connector

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const baseConfig = `
[http]
public_url = "https://c.example.com"
[channels.sms.main]
from = "+15551230000"
[vendors.whoson.sales]
url = "ws://127.0.0.1:1"
[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`

func parse(t *testing.T, text string, env map[string]string) (*Config, []string) {
	t.Helper()
	x := Expander{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, CredentialsDir: t.TempDir()}
	cfg, err := ParseConfig([]byte(text), x)
	return cfg, errorPaths(err)
}

// errorPaths lists "path: msg" of every ConfigError, sorted.
func errorPaths(err error) []string {
	var out []string
	for _, e := range Problems(err) {
		var ce *ConfigError
		if errors.As(e, &ce) {
			out = append(out, ce.Path)
		} else {
			out = append(out, "?"+e.Error())
		}
	}
	sort.Strings(out)
	return out
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, errs := parse(t, baseConfig, nil)
	if errs != nil {
		t.Fatalf("errors: %v", errs)
	}
	if cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Log.Level != "info" || cfg.Store.Driver != "sqlite" {
		t.Errorf("defaults not applied: %+v %+v %+v", cfg.HTTP, cfg.Log, cfg.Store)
	}
	if cfg.Conversation.InactivityTimeout != 30*time.Minute {
		t.Errorf("inactivity_timeout = %v", cfg.Conversation.InactivityTimeout)
	}
	if v, ok := cfg.VendorFor("sms.main"); !ok || v != "whoson.sales" {
		t.Errorf("VendorFor = %q, %v", v, ok)
	}
	got := []string{cfg.Channels[0].Path, cfg.Vendors[0].Path, cfg.Channels[0].FullName()}
	if diff := cmp.Diff([]string{"channels.sms.main", "vendors.whoson.sales", "sms.main"}, got); diff != "" {
		t.Error(diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		env  map[string]string
		want []string
	}{
		{"wrong type", baseConfig + "[log]\nlevel = 3\n", nil, []string{"log.level"}},
		{"bad level", baseConfig + "[log]\nlevel = \"loud\"\n", nil, []string{"log.level"}},
		{"bad duration", baseConfig + "[conversation]\ninactivity_timeout = \"soon\"\n", nil, []string{"conversation.inactivity_timeout"}},
		{"two bad values in one table", baseConfig + "[conversation]\ninactivity_timeout = \"soon\"\nretry_max = true\n", nil,
			[]string{"conversation.inactivity_timeout", "conversation.retry_max"}},
		{"a bad value does not hide its neighbours", strings.Replace(baseConfig, `public_url = "https://c.example.com"`,
			`public_url = "https://c.example.com"`+"\nmax_body_bytes = \"big\"", 1), nil,
			[]string{"http.max_body_bytes"}},
		{"empty _file key is unset", baseConfig + "[store]\ndsn_file = \"\"\n", nil, nil},
		{"a duration as a bare number", baseConfig + "[conversation]\ninactivity_timeout = 1800\nretry_max = 1.5\n", nil,
			[]string{"conversation.inactivity_timeout", "conversation.retry_max"}},
		{"negative duration", baseConfig + "[conversation]\nretry_initial = \"-1s\"\n", nil, []string{"conversation.retry_initial"}},
		{"route to nothing", baseConfig + "[[routes]]\nchannel = \"sms.other\"\nvendor = \"nobody.x\"\n", nil,
			[]string{"routes[1].channel", "routes[1].vendor"}},
		{"unrouted channel", strings.Replace(baseConfig, `channel = "sms.main"`, `channel = "sms.x"`, 1), nil,
			[]string{"channels.sms.main", "routes[0].channel"}},
		{"missing env", baseConfig + "[store]\ndsn = \"${NOPE}\"\n", nil, []string{"store.dsn"}},
		{"several at once", baseConfig + "[log]\nlevel = \"loud\"\nformat = \"xml\"\n[http]\n", nil,
			[]string{"?"}}, // a duplicate table is a TOML syntax error: reported alone
		{"bad template", baseConfig + "[notices]\nqueued = \"{{.Nope}}\"\n", nil, []string{"notices.queued"}},
		{"no public url", strings.Replace(baseConfig, `public_url = "https://c.example.com"`, ``, 1), nil, []string{"http.public_url"}},
		{"bad listen", baseConfig + "[daemon]\n" + "\n[log]\nformat = \"xml\"\n", nil, []string{"log.format"}},
		{"no webhooks admitted", strings.Replace(baseConfig, `public_url = "https://c.example.com"`,
			`public_url = "https://c.example.com"`+"\nmax_inflight = 0", 1), nil, []string{"http.max_inflight"}},
		{"profiles without an admin listener", strings.Replace(baseConfig, `public_url = "https://c.example.com"`,
			`public_url = "https://c.example.com"`+"\nadmin_listen = \"\"\nadmin_pprof = true", 1), nil, []string{"http.admin_pprof"}},
		{"env ok", baseConfig + "[store]\ndsn = \"${DSN}\"\n", map[string]string{"DSN": "/tmp/x.db"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parse(t, tt.text, tt.env)
			if len(tt.want) == 1 && tt.want[0] == "?" {
				if len(got) != 1 || !strings.HasPrefix(got[0], "(file)") {
					t.Fatalf("want one file-level error, got %v", got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownKeys(t *testing.T) {
	cfg, errs := parse(t, baseConfig+"[daemon]\nbogus = 1\n[extra]\nx = 1\n", nil)
	if errs != nil {
		t.Fatalf("parse: %v", errs)
	}
	var sms struct {
		From string `toml:"from"`
	}
	if err := cfg.Channels[0].Decode(&sms); err != nil || sms.From != "+15551230000" {
		t.Fatalf("decode: %v %+v", err, sms)
	}
	got := errorPaths(errors.Join(cfg.CheckUnknown()...))
	want := []string{"daemon.bogus", "extra.x", "vendors.whoson.sales.url"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unknown keys (-want +got):\n%s", diff)
	}
}

func TestFileKeys(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dsn"), []byte("/var/x.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	x := Expander{Getenv: func(string) (string, bool) { return "", false }, CredentialsDir: dir}
	cfg, err := ParseConfig([]byte(baseConfig+"[store]\ndsn_file = \"dsn\"\n"), x)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Store.DSN.Reveal(); got != "/var/x.db" {
		t.Errorf("dsn = %q, want the file's content without its newline", got)
	}
	_, err = ParseConfig([]byte(baseConfig+"[store]\ndsn_file = \"missing\"\n"), x)
	if diff := cmp.Diff([]string{"store.dsn_file"}, errorPaths(err)); diff != "" {
		t.Error(diff)
	}
	_, err = ParseConfig([]byte(baseConfig+"[store]\ndsn = \"a\"\ndsn_file = \"dsn\"\n"), x)
	if diff := cmp.Diff([]string{"store.dsn_file"}, errorPaths(err)); diff != "" {
		t.Error(diff)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("hunter2")
	for _, got := range []string{s.String(), s.GoString(), fmtAll(s)} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret leaked: %q", got)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal lost the value")
	}
}

func fmtAll(s Secret) string {
	b, _ := s.MarshalText()
	return string(b)
}

// check-config warns about unset variables instead of failing; run fails.
func TestUnsetEnvLenient(t *testing.T) {
	text := baseConfig + "[store]\ndsn = \"${NOT_SET}\"\n"
	if _, errs := parse(t, text, nil); len(errs) != 1 || errs[0] != "store.dsn" {
		t.Fatalf("strict: errors %v, want one about NOT_SET", errs)
	}
	var warned []string
	x := Expander{Getenv: func(string) (string, bool) { return "", false },
		Unset: func(path, name string) { warned = append(warned, path+"="+name) }}
	cfg, err := ParseConfig([]byte(text), x)
	if err != nil {
		t.Fatalf("lenient: %v", err)
	}
	if diff := cmp.Diff([]string{"store.dsn=NOT_SET"}, warned); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got := cfg.Store.DSN.Reveal(); got != "${NOT_SET}" {
		t.Errorf("dsn = %q, want the reference kept", got)
	}
}

func TestNumberDurationMessage(t *testing.T) {
	_, err := ParseConfig([]byte(baseConfig+"[conversation]\nretry_max = 1.5\n"), Expander{Getenv: func(string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), `conversation.retry_max: must be a duration string like "30s"`) {
		t.Errorf("error = %v; want the key and what a duration looks like", err)
	}
	// Adapter blocks are checked the same way, nested tables included.
	cfg, err := ParseConfig([]byte(baseConfig+"[channels.sms.main.deep]\nwait = 3\n"), Expander{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Deep struct {
			Wait time.Duration `toml:"wait"`
		} `toml:"deep"`
	}
	if err := cfg.Channels[0].Decode(&v); err == nil || !strings.Contains(err.Error(), "channels.sms.main.deep.wait: must be a duration string") {
		t.Errorf("adapter decode = %v; want the nested key refused", err)
	}
}
