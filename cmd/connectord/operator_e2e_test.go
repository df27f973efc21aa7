package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

const e2eAdminToken = "e2e-admin-token-0123456789"

// operatorWorld is the SMS world whose admin listener asks for a token,
// read from a file next to the configuration (admin_token_file), as the
// daemon and the operator commands both resolve it.
func operatorWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, echoOperator(), 0)
	text, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const listen = `admin_listen = "${E2E_ADMIN_LISTEN}"`
	withToken := strings.Replace(string(text), listen, listen+"\nadmin_token_file = \"admin-token\"", 1)
	if withToken == string(text) {
		t.Fatal("the e2e configuration has no admin_listen line to add the token to")
	}
	if err := os.WriteFile(w.cfgPath, []byte(withToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "admin-token"), []byte(e2eAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// cli runs an operator command against w's daemon as an operator's shell
// would: with the configuration file and the admin address's variable, but
// none of the adapters' secrets.
func (w *world) cli(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	cmd := exec.Command(binary, append(args, "-config", w.cfgPath)...)
	cmd.Env = append(os.Environ(), "E2E_ADMIN_LISTEN="+w.admin, "E2E_INSTANCE_ID=e2e")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		w.t.Fatalf("run connectord %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// cliOK runs an operator command that must succeed.
func (w *world) cliOK(args ...string) string {
	w.t.Helper()
	out, errOut, code := w.cli(args...)
	if code != 0 {
		w.t.Fatalf("connectord %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func cliJSON[T any](w *world, args ...string) T {
	w.t.Helper()
	var v T
	out := w.cliOK(append(args, "-json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		w.t.Fatalf("connectord %v -json: %v\n%s", args, err, out)
	}
	return v
}

// wants fails the test unless s contains every one of subs.
func wants(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// TestOperatorCommandsEndToEnd runs every operator command against the real
// daemon: status, the listings, one conversation, a retry of a message the
// carrier failed (the customer gets it the second time), the end of a
// conversation (the customer gets the notice, the vendor's chat ends), the
// API's token, and a daemon that is not running.
func TestOperatorCommandsEndToEnd(t *testing.T) {
	w := operatorWorld(t)
	w.start()
	w.sms("hello there")
	w.smsTo("You are now chatting with Alice")
	w.smsTo("echo: hello there")

	status := w.cliOK("status")
	t.Logf("connectord status:\n%s", status)
	wants(t, "status", status, "ready", "yes", "active 1", "sms.main", "whoson.sales", "store")
	st := cliJSON[connector.StatusReport](w, "status")
	if st.Conversations[connector.StateActive] != 1 || st.Instance != "e2e" || st.Build.Version == "" {
		t.Errorf("status -json: %+v", st)
	}
	wants(t, "conversations", w.cliOK("conversations"), customerNumber, "active", "Alice")
	list := cliJSON[connector.ConversationList](w, "conversations", "-state", "active")
	if len(list.Conversations) != 1 {
		t.Fatalf("conversations -state active: %+v", list)
	}
	conv := strconv.FormatInt(list.Conversations[0].ID, 10)
	wants(t, "conversations -stuck", w.cliOK("conversations", "-stuck"), "no conversation matches")

	// The carrier fails the next reply: its message fails, the chat goes on.
	w.twilio.SetUndelivered(customerNumber, 30003)
	w.sms("second")
	failed := w.waitMessage(conv, "echo: second", connector.DeliveryFailed)
	detail := w.cliOK("conversation", conv)
	t.Logf("connectord conversation %s:\n%s", conv, detail)
	wants(t, "conversation", detail, "echo: second", "failed", "hello there")
	wants(t, "conversations -stuck", w.cliOK("conversations", "-stuck"), conv, customerNumber)

	w.twilio.SetUndelivered(customerNumber, 0)
	wants(t, "retry", w.cliOK("retry", failed), "message "+failed, "stored again")
	w.waitMessage(conv, "echo: second", connector.DeliveryDelivered)
	if n := w.sentContaining("echo: second"); n != 2 {
		t.Errorf("the retried reply was sent %d times in all, want 2 (the failed one, the retry)", n)
	}
	_, errOut, code := w.cli("retry", failed)
	if code != 1 || !strings.Contains(errOut, "not failed") || !strings.Contains(errOut, "409") {
		t.Errorf("retry of a delivered message: exit %d, stderr %q; want 1 and the API's 409", code, errOut)
	}

	wants(t, "end", w.cliOK("end", conv), "conversation "+conv+" ended (operator)")
	w.smsTo("This chat was closed by our support team")
	deadline := time.Now().Add(10 * time.Second)
	for chats := w.whoson.Chats(); len(chats) != 1 || !chats[0].Ended; chats = w.whoson.Chats() {
		if time.Now().After(deadline) {
			t.Fatalf("the vendor's chat did not end: %+v", chats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, errOut, code = w.cli("end", conv)
	if code != 1 || !strings.Contains(errOut, "already ended") {
		t.Errorf("end of an ended conversation: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = w.cli("conversation", "999999")
	if code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("conversation 999999: exit %d, stderr %q", code, errOut)
	}

	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong-token-0123456789", 401}, {e2eAdminToken, 200}} {
		req, _ := http.NewRequest("GET", "http://"+w.admin+"/api/v1/status", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("status with token %q: HTTP %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}

	if code, _ := w.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	_, errOut, code = w.cli("status")
	if code != 1 || !strings.Contains(errOut, "not reachable") {
		t.Errorf("status with no daemon: exit %d, stderr %q; want 1 saying it is not reachable", code, errOut)
	}
}

// waitMessage waits until conversation conv has a message whose text
// contains text in state, through the operator command, and returns its id.
func (w *world) waitMessage(conv, text string, state connector.Delivery) string {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last connector.ConversationDetail
	for time.Now().Before(deadline) {
		last = cliJSON[connector.ConversationDetail](w, "conversation", conv)
		for _, m := range last.Messages {
			if strings.Contains(m.Text, text) && m.State == state {
				return strconv.FormatInt(m.ID, 10)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.t.Fatalf("no message %q in state %s in conversation %s: %+v", text, state, conv, last.Messages)
	return ""
}

func (w *world) sentContaining(text string) int {
	n := 0
	for _, s := range w.twilio.Sent() {
		if s.To == customerNumber && strings.Contains(s.Body, text) {
			n++
		}
	}
	return n
}
