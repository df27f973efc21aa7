package connector

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Operator input that used to run check-config out of memory or time is
// refused, each with its key path, without running what it asks for.
func TestConfigBounds(t *testing.T) {
	deep := "x = " + strings.Repeat("{a = ", 8000) + "1" + strings.Repeat("}", 8000) + "\n"
	deepArr := "x = " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n"
	for _, tc := range []struct {
		name, text, path string
	}{
		{"nested inline tables", baseConfig + "[daemon]\n" + deep, "(file)"},
		{"nested arrays", baseConfig + "[daemon]\n" + deepArr, "(file)"},
		{"notice range", baseConfig + "[notices]\nqueued = \"{{range 100000000000}}x{{end}}\"\n", "notices.queued"},
		{"notice printf", baseConfig + "[notices]\nqueued = '{{printf \"%099999999d\" 0}}'\n", "notices.queued"},
		{"notice with", baseConfig + "[notices]\nqueued = \"{{with .Agent}}{{.}}{{end}}\"\n", "notices.queued"},
		{"notice template", baseConfig + "[notices]\nqueued = '{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}'\n", "notices.queued"},
		{"key above the first table", "level = \"debug\"\n" + baseConfig, "level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseAtAll(t, tc.text)
			if !slices.Contains(errs, tc.path) {
				t.Errorf("errors %v, want one at %s", errs, tc.path)
			}
		})
	}
	// Strings and comments may hold any brackets.
	ok := baseConfig + "[notices]\nqueued = \"" + strings.Repeat("[{", 100) + "\"\n# " + strings.Repeat("[", 100) + "\n"
	if _, errs := parse(t, ok, nil); errs != nil {
		t.Errorf("brackets inside a string or comment: %v", errs)
	}
	// The defaults and a template using what is allowed still pass.
	fine := baseConfig + "[notices]\nqueue_position = \"{{if .Position}}#{{.Position}}{{else}}soon{{end}}\"\n"
	if _, errs := parse(t, fine, nil); errs != nil {
		t.Errorf("allowed template refused: %v", errs)
	}
}

// X_file reads only regular files, and only small ones.
func TestSecretFileBounds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 65<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"device": "/dev/zero", "large": big, "directory": dir} {
		t.Run(name, func(t *testing.T) {
			errs := parseAtAll(t, baseConfig+"[store]\ndsn_file = \""+file+"\"\n")
			if !slices.Contains(errs, "store.dsn_file") {
				t.Errorf("errors %v, want store.dsn_file", errs)
			}
		})
	}
	if _, err := LoadConfig("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadConfig(/dev/zero) = %v", err)
	}
}

// parseAtAll is parse, failing the test if ParseConfig does not return at
// all (a template run or a read of /dev/zero would go on for ever): the 30 s
// is a give-up deadline, not a speed claim.
func parseAtAll(t *testing.T, text string) []string {
	t.Helper()
	x := Expander{Getenv: func(string) (string, bool) { return "", false }, CredentialsDir: t.TempDir()}
	got := make(chan []string, 1)
	go func() {
		_, err := ParseConfig([]byte(text), x)
		got <- errorPaths(err)
	}()
	select {
	case errs := <-got:
		return errs
	case <-time.After(30 * time.Second):
		t.Fatal("ParseConfig did not return")
		return nil
	}
}

func TestAdminListenChecks(t *testing.T) {
	withHTTP := func(keys string) string { return strings.Replace(baseConfig, "[http]\n", "[http]\n"+keys, 1) }
	_, errs := parse(t, withHTTP("listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n"), nil)
	if !slices.Contains(errs, "http.admin_listen") {
		t.Errorf("admin_listen = listen: errors %v", errs)
	}
	cfg, errs := parse(t, withHTTP("admin_listen = \"\"\n"), nil)
	if errs != nil || cfg.HTTP.AdminListen != "" {
		t.Errorf("admin_listen = \"\": %v %q", errs, cfg.HTTP.AdminListen)
	}
}

// DecodeBlock reports a bad value at its key and judges the other keys, but
// not the bad one again.
func TestDecodeBlock(t *testing.T) {
	type block struct {
		From string        `toml:"from"`
		Wait time.Duration `toml:"wait"`
	}
	text := strings.Replace(baseConfig, "from = \"+15551230000\"\n", "from = 5\nwait = \"2s\"\n", 1)
	cfg, _ := parse(t, text, nil)
	inst := cfg.Channels[0]
	var b block
	err := DecodeBlock(inst, &b, func(bad func(key, format string, args ...any)) {
		bad("from", "is required")          // already reported as a wrong type
		bad("wait", "too long: %s", b.Wait) // judged on its decoded value
	})
	got := errorPaths(err)
	if strings.Join(got, " ") != "channels.sms.main.from channels.sms.main.wait" {
		t.Errorf("problems at %v", got)
	}
	if !strings.Contains(err.Error(), "too long: 2s") {
		t.Errorf("the good key was not judged on its value: %v", err)
	}
}
