package connector_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func TestConfigCheckHelpers(t *testing.T) {
	var got []string
	bad := func(key, format string, args ...any) { got = append(got, key+": "+fmt.Sprintf(format, args...)) }
	connector.Reconnect{Initial: time.Second, Max: time.Millisecond}.CheckKeys(bad)
	connector.CheckMinDurations(bad, time.Millisecond,
		connector.KeyDuration{Key: "ok", Val: time.Second}, connector.KeyDuration{Key: "zero", Val: 0})
	want := []string{
		`reconnect_stable: must be a positive duration like "30s"`,
		"reconnect_max: must not be less than reconnect_initial",
		`zero: must be a duration of at least 1ms, written like "30s", not 0s`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "127.0.0.2": true, "::1": true,
		"10.0.0.1": false, "localhost.example.com": false, "": false} {
		if got := connector.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestClientTLS(t *testing.T) {
	if conf, err := connector.ClientTLS("", "", false); err != nil || conf.RootCAs != nil || conf.MinVersion == 0 {
		t.Errorf("no CA: %+v, %v; want the system's roots and a minimum version", conf, err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := connector.ClientTLS(notPEM, "", false); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a file without certificates: %v", err)
	}
	if _, err := connector.ClientTLS(filepath.Join(t.TempDir(), "missing.pem"), "", false); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("a missing file: %v", err)
	}
}

// Chats names the first connection down by conversation id, whatever the
// order they were added in.
func TestChatsHealth(t *testing.T) {
	var c connector.Chats
	c.Add(9, connector.Health{Detail: "nine"})
	c.Add(3, connector.Health{Ready: true})
	c.Add(4, connector.Health{Detail: "four"})
	got := c.Trouble("chat sockets", "reconnecting")
	want := connector.Health{Detail: "2 of 3 chat sockets down, reconnecting (conversation 4: four)"}
	if got != want {
		t.Errorf("Trouble = %+v, want %+v", got, want)
	}
}
