package main

// End-to-end tests of Slack Socket Mode's connection health: the built
// daemon against the fake Slack whose sockets go silent and whose app token
// is refused.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
)

// setSlackKeys adds keys to the world's [channels.slack.support] block, or
// replaces a key that is there already.
func (w *slackWorld) setSlackKeys(keys map[string]string) {
	w.t.Helper()
	b, err := os.ReadFile(w.cfgPath)
	if err != nil {
		w.t.Fatal(err)
	}
	const header = "[channels.slack.support]\n"
	head, block, ok := strings.Cut(string(b), header)
	if !ok {
		w.t.Fatalf("no %q in the configuration", header)
	}
	block, rest, _ := strings.Cut(block, "\n[")
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		key, _, _ := strings.Cut(l, " = ")
		if _, set := keys[key]; !set {
			lines = append(lines, l)
		}
	}
	for k, v := range keys {
		lines = append(lines, fmt.Sprintf("%s = %s", k, v))
	}
	text := head + header + strings.Join(lines, "\n") + "\n\n[" + rest
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// slackHealth is the admin /readyz entry of slack.support, and the status.
func (w *slackWorld) slackHealth() (int, bool, string) {
	var ready struct {
		Adapters map[string]struct {
			Ready  bool   `json:"ready"`
			Detail string `json:"detail"`
		} `json:"adapters"`
	}
	resp, err := http.Get("http://" + w.admin + "/readyz")
	if err != nil {
		return 0, false, err.Error()
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		return resp.StatusCode, false, err.Error()
	}
	a := ready.Adapters["slack.support"]
	return resp.StatusCode, a.Ready, a.Detail
}

// A socket that goes silent while it stays connected (Slack's end quiet, a
// half-open TCP connection) is replaced within socket_silence_timeout: the
// daemon is not ready until the next socket's hello, the message Slack sent
// into the dead socket reaches the agent through the next one, and nothing
// reaches the agent or the thread twice.
func TestSlackSocketSilentReplaced(t *testing.T) {
	w := newSlackWorld(t, echoOperator(), true)
	w.setSlackKeys(map[string]string{
		"socket_silence_timeout": `"2s"`,
		// A reconnect would wait 2.5-5 s: a quicker new socket is a replacement.
		"reconnect_initial": `"5s"`, "reconnect_max": `"5s"`,
	})
	w.start()
	root := w.say("", "before the silence")
	w.waitThread(root.TS, "echo: before the silence")

	// The next socket's apps.connections.open is slow, so that the time the
	// daemon is not ready can be seen.
	w.slack.Fail("apps.connections.open", slacktest.Fault{Delay: time.Second, Times: 1})
	w.say(root.TS, "racing the silence") // its ack may be lost with the socket
	silenced := time.Now()
	w.slack.SilenceSockets()
	lost := w.say(root.TS, "into the dead socket")
	waitUntil(t, "the envelope lost in the silent socket", func() bool { return slices.Contains(w.slack.Lost(), lost.EventID) })

	var notReady string
	waitUntil(t, "/readyz not ready, saying why", func() bool {
		code, ready, detail := w.slackHealth()
		if code == http.StatusServiceUnavailable && !ready && strings.Contains(detail, "socket mode connection dead") {
			notReady = detail
			return true
		}
		return false
	})
	noticed := time.Since(silenced)
	waitUntil(t, "ready again", func() bool { code, ready, _ := w.slackHealth(); return code == http.StatusOK && ready })
	replaced := time.Since(silenced)
	waitUntil(t, "the silent socket closed", func() bool { return w.slack.Sockets() == 1 && w.slack.QuietSockets() == 0 })
	t.Logf("silence noticed after %s (%q); ready on the next socket after %s", noticed, notReady, replaced)
	// Before this rule a silent socket was noticed after 30-40 s: the
	// waits above, 15 s each, fail for that; the times are only logged.
	if n := w.slack.Connections(); n != 2 {
		t.Errorf("%d sockets opened, want 2 (one replacement)", n)
	}

	w.waitThread(root.TS, "echo: before the silence", "echo: racing the silence", "echo: into the dead socket")
	w.say(root.TS, "after")
	w.waitThread(root.TS, "echo: into the dead socket", "echo: after")
	want := []string{"before the silence", "racing the silence", "into the dead socket", "after"}
	if lines := w.visitorLines(len(want)); !slices.Equal(lines, want) {
		t.Errorf("operator saw %q, want %q once each, in order", lines, want)
	}
	replies := texts(w.slack.Replies(slackSupport, root.TS))
	for _, line := range want {
		if n := countValue(replies, "echo: "+line); n != 1 {
			t.Errorf("%q is in the thread %d times: %q", "echo: "+line, n, replies)
		}
	}
	if log := w.proc.log.String(); strings.Contains(log, "connection lost; reconnecting") {
		t.Errorf("the daemon reconnected rather than replacing the socket")
	}
}

// An app token that apps.connections.open refuses at start stops run with
// the key path and Slack's reason, and never shows the token.
func TestSlackSocketRefusedAppTokenAtStart(t *testing.T) {
	for _, code := range []string{"invalid_auth", "not_allowed_token_type", "not_authed"} {
		t.Run(code, func(t *testing.T) {
			w := newSlackWorld(t, echoOperator(), true)
			token := w.slack.AppToken
			if code == "invalid_auth" {
				token = "xapp-1-A0OTHER-not-this-app"
				w.setSlackKeys(map[string]string{"app_token": fmt.Sprintf("%q", token)})
			} else {
				w.slack.Fail("apps.connections.open", slacktest.Fault{Error: code})
			}
			p := w.launch()
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				t.Fatalf("the daemon still runs 15s after Slack refused its app token\n%s", p.log.String())
			}
			out := p.log.String()
			if c := p.cmd.ProcessState.ExitCode(); c != 1 {
				t.Errorf("exit code %d, want 1", c)
			}
			if !strings.Contains(out, "channels.slack.support.app_token: ") || !strings.Contains(out, code) {
				t.Errorf("the output does not name channels.slack.support.app_token and %s:\n%s", code, out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "connectord: ") {
					t.Logf("%s", l)
				}
			}
			if strings.Contains(out, token) {
				t.Errorf("the output shows the token:\n%s", out)
			}
			if n := w.slack.Connections(); n != 0 {
				t.Errorf("%d sockets opened", n)
			}
		})
	}
}

// An app token revoked while the daemon runs: it stays up, /readyz says
// not ready naming the key, and apps.connections.open is asked again only
// every reconnect_max, not in a storm.
func TestSlackSocketAppTokenRevokedWhileRunning(t *testing.T) {
	w := newSlackWorld(t, echoOperator(), true)
	w.setSlackKeys(map[string]string{"reconnect_initial": `"50ms"`, "reconnect_max": `"1s"`})
	w.start()
	w.slack.RevokeAppToken()
	before := len(w.slack.Calls("apps.connections.open"))
	w.slack.DropSockets()
	var detail string
	waitUntil(t, "/readyz naming the key", func() bool {
		code, ready, d := w.slackHealth()
		detail = d
		return code == http.StatusServiceUnavailable && !ready &&
			strings.Contains(d, "channels.slack.support.app_token: ") && strings.Contains(d, "token_revoked")
	})
	waitUntil(t, "four refused attempts", func() bool { return len(w.slack.Calls("apps.connections.open")) >= before+4 })
	calls := w.slack.Calls("apps.connections.open")[before:]
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Time.Sub(calls[i-1].Time); gap < 950*time.Millisecond {
			t.Errorf("attempt %d came %s after a refusal, want reconnect_max (1s)", i+1, gap)
		}
	}
	t.Logf("/readyz: %q; %d attempts in %s", detail, len(calls), calls[len(calls)-1].Time.Sub(calls[0].Time))
	if resp, err := http.Get("http://" + w.addr + "/livez"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/livez: %v %v, want the daemon up", resp, err)
	} else {
		resp.Body.Close()
	}
	if !strings.Contains(w.proc.log.String(), "channels.slack.support.app_token: ") {
		t.Errorf("the log does not name the key")
	}
	if code, _ := w.signal(15, 10*time.Second); code != 0 {
		t.Errorf("SIGTERM exit code %d, want 0", code)
	}
}
