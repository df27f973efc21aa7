// Package systemd holds the connectord systemd unit; its tests check the
// unit's required directives and its hardening score.
package systemd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	unitFile = "connectord.service"
	// maxExposure is the highest acceptable "Overall exposure level" reported
	// by systemd-analyze security (0.0 best, 10.0 worst).
	maxExposure = 2.0
	// shutdownTimeout is the default daemon.shutdown_timeout; TimeoutStopSec
	// must be above it so a drain is never cut short by SIGKILL.
	shutdownTimeout = 20 * time.Second
	// installedBinary is the ExecStart path.
	installedBinary = "/usr/bin/connectord"
	noAnalyze       = "systemd-analyze not found: install the Debian package systemd"
)

// unit is a parsed unit file: section -> key -> every value in file order
// (systemd allows a key several times; an empty value resets a list).
type unit struct {
	sections map[string]map[string][]string
	// commented holds "Key=value" lines that are commented out ("#Key=value"),
	// per section, for documented examples such as LoadCredential=.
	commented map[string]map[string][]string
}

var commentedKeyRE = regexp.MustCompile(`^[#;]\s*([A-Z][A-Za-z]+)=(.*)$`)

func parseUnit(t *testing.T, path string) *unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open unit: %v", err)
	}
	defer f.Close()
	u := &unit{sections: map[string]map[string][]string{}, commented: map[string]map[string][]string{}}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"), strings.HasPrefix(line, ";"):
			if m := commentedKeyRE.FindStringSubmatch(line); m != nil && section != "" {
				add(u.commented, section, m[1], strings.TrimSpace(m[2]))
			}
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			if strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: line continuations are not supported by this parser", path, n)
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			add(u.sections, section, strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read unit: %v", err)
	}
	return u
}

func add(m map[string]map[string][]string, section, key, value string) {
	if m[section] == nil {
		m[section] = map[string][]string{}
	}
	m[section][key] = append(m[section][key], value)
}

// last is the effective value of a single-valued key ("" and false if unset).
func (u *unit) last(section, key string) (string, bool) {
	vs := u.sections[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// words is every whitespace-separated word of every assignment of key.
func (u *unit) words(section, key string) []string {
	var ws []string
	for _, v := range u.sections[section][key] {
		ws = append(ws, strings.Fields(v)...)
	}
	return ws
}

// parseTimespan parses a systemd time span such as "30s", "1min 30s" or "90"
// (bare numbers are seconds).
func parseTimespan(s string) (time.Duration, error) {
	units := map[string]time.Duration{
		"": time.Second, "us": time.Microsecond, "usec": time.Microsecond,
		"ms": time.Millisecond, "msec": time.Millisecond,
		"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	}
	re := regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)`)
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, errors.New("empty time span")
	}
	var total time.Duration
	for rest != "" {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		unit, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("bad unit %q in time span %q", m[2], s)
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, err
		}
		total += time.Duration(f * float64(unit))
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	return total, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestUnitDirectives(t *testing.T) {
	u := parseUnit(t, unitFile)
	const svc = "Service"

	equals := func(key, want string) func(*testing.T) {
		return func(t *testing.T) {
			got, ok := u.last(svc, key)
			if !ok || got != want {
				t.Errorf("%s=%q (set: %v), want %q", key, got, ok, want)
			}
		}
	}
	hasWord := func(key, word string) func(*testing.T) {
		return func(t *testing.T) {
			if ws := u.words(svc, key); !contains(ws, word) {
				t.Errorf("%s does not contain %q; values: %q", key, word, u.sections[svc][key])
			}
		}
	}
	tests := []struct {
		name  string
		check func(*testing.T)
	}{
		{"Type=notify", equals("Type", "notify")},
		{"NotifyAccess=main", equals("NotifyAccess", "main")},
		{"ExecStart runs the daemon", func(t *testing.T) {
			got, _ := u.last(svc, "ExecStart")
			if !strings.HasPrefix(got, installedBinary+" run -config ") {
				t.Errorf("ExecStart=%q, want %s run -config FILE", got, installedBinary)
			}
		}},
		{"ExecReload sends SIGHUP", func(t *testing.T) {
			if v, _ := u.last(svc, "ExecReload"); v != "/bin/kill -HUP $MAINPID" {
				t.Errorf("ExecReload=%q, want /bin/kill -HUP $MAINPID (the daemon re-reads its configuration on SIGHUP)", v)
			}
		}},
		{"WatchdogSec set", func(t *testing.T) {
			v, ok := u.last(svc, "WatchdogSec")
			if !ok {
				t.Fatal("WatchdogSec not set")
			}
			d, err := parseTimespan(v)
			if err != nil || d <= 0 {
				t.Errorf("WatchdogSec=%q: want a positive time span (%v)", v, err)
			}
		}},
		{"Restart=on-failure", equals("Restart", "on-failure")},
		{"memory and task limits", func(t *testing.T) {
			for _, key := range []string{"MemoryHigh", "MemoryMax", "TasksMax"} {
				if v, ok := u.last(svc, key); !ok || v == "" || v == "infinity" {
					t.Errorf("%s=%q: want a limit", key, v)
				}
			}
		}},
		{"link-local denied", hasWord("IPAddressDeny", "169.254.0.0/16")},
		{"link-local denied (IPv6)", hasWord("IPAddressDeny", "fe80::/10")},
		{"TimeoutStopSec above shutdown_timeout", func(t *testing.T) {
			v, ok := u.last(svc, "TimeoutStopSec")
			if !ok {
				t.Fatal("TimeoutStopSec not set")
			}
			d, err := parseTimespan(v)
			if err != nil {
				t.Fatal(err)
			}
			if d <= shutdownTimeout {
				t.Errorf("TimeoutStopSec=%s, want more than daemon.shutdown_timeout %s", d, shutdownTimeout)
			}
		}},
		{"DynamicUser=yes", equals("DynamicUser", "yes")},
		{"StateDirectory=connectord", equals("StateDirectory", "connectord")},
		{"ConfigurationDirectory=connectord", equals("ConfigurationDirectory", "connectord")},
		{"ProtectSystem=strict", equals("ProtectSystem", "strict")},
		{"NoNewPrivileges=yes", equals("NoNewPrivileges", "yes")},
		{"CapabilityBoundingSet empty", func(t *testing.T) {
			vs := u.sections[svc]["CapabilityBoundingSet"]
			if len(vs) == 0 {
				t.Fatal("CapabilityBoundingSet not set (the default keeps every capability)")
			}
			for _, v := range vs {
				if v != "" {
					t.Errorf("CapabilityBoundingSet=%q, want empty", v)
				}
			}
		}},
		{"SystemCallFilter contains @system-service", hasWord("SystemCallFilter", "@system-service")},
		{"AF_UNIX allowed for sd_notify", hasWord("RestrictAddressFamilies", "AF_UNIX")},
		{"no PrivateNetwork", func(t *testing.T) {
			if v, _ := u.last(svc, "PrivateNetwork"); v == "yes" || v == "true" || v == "1" || v == "on" {
				t.Errorf("PrivateNetwork=%s cuts the daemon off from Twilio and the vendors", v)
			}
		}},
		{"LoadCredential example present, commented", func(t *testing.T) {
			found := false
			for _, v := range u.commented[svc]["LoadCredential"] {
				if strings.HasPrefix(v, "twilio-auth-token:") {
					found = true
				}
			}
			if !found {
				t.Error("no commented #LoadCredential=twilio-auth-token:... example")
			}
		}},
		{"no active LoadCredential", func(t *testing.T) {
			// systemd refuses to start the unit when a source file is missing;
			// operators enable credentials in a drop-in.
			if vs := u.sections[svc]["LoadCredential"]; len(vs) > 0 {
				t.Errorf("active LoadCredential=%q would fail every start without the file", vs)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}

// needAnalyze returns the systemd-analyze path, or skips (fails under CI=true).
func needAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(noAnalyze)
		}
		t.Skip(noAnalyze)
	}
	return path
}

// systemdVersion is the number in "systemd 252 (252.38-1~deb12u1)".
func systemdVersion(t *testing.T, analyze string) int {
	t.Helper()
	out, err := exec.Command(analyze, "--version").Output()
	if err != nil {
		t.Fatalf("systemd-analyze --version: %v", err)
	}
	m := regexp.MustCompile(`(?m)^systemd (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze --version: unexpected output %q", out)
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

var (
	exposureRE = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitFile) + `: ([0-9]+(?:\.[0-9]+)?)`)
	ansiRE     = regexp.MustCompile(`\x1b\[[0-9;]*m`)
)

func analyzeEnv() []string {
	return append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0")
}

func TestUnitSecurityExposure(t *testing.T) {
	analyze := needAnalyze(t)
	// --offline (analyse a unit file without a running manager) is new in 250.
	if v := systemdVersion(t, analyze); v < 250 {
		msg := fmt.Sprintf("systemd %d: systemd-analyze security --offline needs systemd 250 or newer", v)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// --threshold=20 (i.e. 2.0 on the printed scale) also makes the command
	// exit non-zero when exceeded; the printed level is what we check.
	cmd := exec.CommandContext(ctx, analyze, "security", "--offline=yes", "--no-pager",
		fmt.Sprintf("--threshold=%d", int(maxExposure*10)), unitFile)
	cmd.Env = analyzeEnv()
	raw, runErr := cmd.CombinedOutput()
	out := ansiRE.ReplaceAllString(string(raw), "")
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no \"Overall exposure level\" line (run error: %v); output:\n%s", runErr, out)
	}
	level, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("exposure %q: %v", m[1], err)
	}
	t.Logf("overall exposure level for %s: %.1f (max %.1f)", unitFile, level, maxExposure)
	if level > maxExposure {
		t.Fatalf("exposure %.1f is above %.1f; full analysis:\n%s", level, maxExposure, out)
	}
	if runErr != nil {
		t.Fatalf("systemd-analyze security: %v; output:\n%s", runErr, out)
	}
}

func TestUnitVerify(t *testing.T) {
	analyze := needAnalyze(t)
	// verify insists that ExecStart's binary exists. It is not installed on a
	// build machine, so verify a copy of the unit that runs a fresh build.
	dir := t.TempDir()
	bin := filepath.Join(dir, "connectord")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/connectord").CombinedOutput(); err != nil {
		t.Fatalf("build connectord: %v\n%s", err, out)
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "ExecStart="+installedBinary+" ") {
		t.Fatalf("ExecStart does not run %s", installedBinary)
	}
	unit := filepath.Join(dir, filepath.Base(unitFile))
	text = []byte(strings.Replace(string(text), "ExecStart="+installedBinary, "ExecStart="+bin, 1))
	if err := os.WriteFile(unit, text, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", unit)
	cmd.Env = analyzeEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		// Warnings may concern other units on the host (dependencies).
		t.Logf("systemd-analyze verify warnings:\n%s", s)
	}
}
