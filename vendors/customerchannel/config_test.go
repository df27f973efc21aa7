package customerchannel

import (
	"slices"
	"strings"
	"testing"

	"github.com/connectord/connectord/connector"
)

// loaded returns block as [vendors.customerchannel.hub] read through the
// daemon's loader, which reports a value it cannot decode at the value's own
// key.
func loaded(t *testing.T, block string) connector.Instance {
	t.Helper()
	unset := func(string) (string, bool) { return "", false }
	cfg, err := connector.ParseConfig([]byte("[vendors.customerchannel.hub]\n"+block), connector.Expander{Getenv: unset})
	if cfg == nil || len(cfg.Vendors) != 1 {
		t.Fatalf("the loader gave no vendor block: %v", err)
	}
	return cfg.Vendors[0]
}

// problems lists err's problems as "path: message" texts.
func problems(err error) []string {
	var out []string
	for _, p := range connector.Problems(err) {
		out = append(out, p.Error())
	}
	return out
}

// TestConfigBadValueAndOtherProblems: values that cannot be decoded are
// reported at their keys, and the other keys are still judged, so that one
// check-config run shows every problem of the block.
func TestConfigBadValueAndOtherProblems(t *testing.T) {
	_, err := decodeConfig(loaded(t, `url = "https://chat.example.com/?token=x"
eio = "four"
leave_grace = 3
transcript = "zip"
reconnect_initial = "5s"
reconnect_max = "1s"
`))
	got := problems(err)
	want := []string{
		"vendors.customerchannel.hub.eio: ",
		"vendors.customerchannel.hub.leave_grace: must be a duration string",
		`vendors.customerchannel.hub.url: must be a base URL without a query or fragment`,
		"vendors.customerchannel.hub.connector_id: is required",
		"vendors.customerchannel.hub.reconnect_max: must not be less than reconnect_initial",
		`vendors.customerchannel.hub.transcript: must be "", "pdf" or "email", not "zip"`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want %d like %q", got, len(want), want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no problem like %q in %q", w, got)
		}
	}
	if strings.Contains(err.Error(), "token=x") {
		t.Errorf("a problem shows the url's query: %v", err)
	}
}

// TestConfigBadValueNotJudgedAgain: a connector_id of the wrong type gets
// that one complaint, not also "is required" for the empty default left in
// its place.
func TestConfigBadValueNotJudgedAgain(t *testing.T) {
	got := problems(func() error {
		_, err := decodeConfig(loaded(t, "url = \"https://chat.example.com\"\nconnector_id = 5\n"))
		return err
	}())
	if len(got) != 1 || !strings.HasPrefix(got[0], "vendors.customerchannel.hub.connector_id: ") ||
		strings.Contains(got[0], "required") {
		t.Errorf("problems = %q, want only the decode error at connector_id", got)
	}
}

// The decoded block keeps its good values and derives the rest: a trailing
// slash is dropped from url, and connector_channel defaults to connector_id.
func TestConfigDerived(t *testing.T) {
	cfg, err := decodeConfig(loaded(t, "url = \"https://chat.example.com/\"\nconnector_id = \"sms\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "https://chat.example.com" || cfg.ConnectorChannel != "sms" || cfg.EIO != 4 {
		t.Errorf("config = %+v", cfg)
	}
}

// TestConfigConnections: http_connections sizes the REST pool, 32 unless
// set, 1 to 1024.
func TestConfigConnections(t *testing.T) {
	const base = "url = \"https://chat.example.com\"\nconnector_id = \"sms\"\n"
	for _, tc := range []struct {
		line string
		want int      // the decoded value when valid
		bad  []string // else the problems
	}{
		{"", 32, nil},
		{"http_connections = 1", 1, nil},
		{"http_connections = 1024", 1024, nil},
		{"http_connections = 0", 0, []string{"vendors.customerchannel.hub.http_connections: must be 1 to 1024 connections per host, not 0"}},
		{"http_connections = 1025", 0, []string{"vendors.customerchannel.hub.http_connections: must be 1 to 1024 connections per host, not 1025"}},
	} {
		cfg, err := decodeConfig(loaded(t, base+tc.line+"\n"))
		if got := problems(err); !slices.Equal(got, tc.bad) {
			t.Errorf("%q: problems %q, want %q", tc.line, got, tc.bad)
		}
		if tc.bad == nil && cfg.HTTPConnections != tc.want {
			t.Errorf("%q: http_connections %d, want %d", tc.line, cfg.HTTPConnections, tc.want)
		}
	}
}
