package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func TestCell(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"", 10, "-"},
		{"two\nlines\tand tab", 40, "two lines and tab"},
		{"\x1b]0;owned\x07\x1b[2Jclear", 40, "]0;owned[2Jclear"},
		{"right\u202eto-left", 40, "rightto-left"},
		{"bad \xff byte", 40, "bad ? byte"},
		{"abcdefghij", 4, "abcd…"},
		{"ééééé", 3, "ééé…"},
	} {
		if got := cell(tc.in, tc.n); got != tc.want {
			t.Errorf("cell(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestAdminBase(t *testing.T) {
	for _, tc := range []struct{ listen, want, wantErr string }{
		{"127.0.0.1:9464", "http://127.0.0.1:9464", ""},
		{"0.0.0.0:9464", "http://127.0.0.1:9464", ""},
		{":9464", "http://127.0.0.1:9464", ""},
		{"[::]:9464", "http://[::1]:9464", ""},
		{"[::1]:9464", "http://[::1]:9464", ""},
		{"admin.internal:9464", "http://admin.internal:9464", ""},
		{"", "", "http.admin_listen is empty"},
		{"nonsense", "", "http.admin_listen:"},
	} {
		got, err := adminBase(tc.listen)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("adminBase(%q): error %v, want one starting %q", tc.listen, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("adminBase(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
}

func TestOperatorRequest(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		wantPath     string
		wantMethod   string
		wantPosition []string
	}{
		{[]string{"-json"}, "/api/v1/status", "GET", nil},
		{[]string{"-state", "open", "-stuck", "-older-than", "1h", "-limit", "5"},
			"/api/v1/conversations?limit=5&older_than=1h&state=open&stuck=true", "GET", nil},
		{[]string{"12", "-json"}, "/api/v1/conversations/12", "GET", []string{"12"}},
		{[]string{"-json", "7"}, "/api/v1/conversations/7/end", "POST", []string{"7"}},
		{[]string{"9"}, "/api/v1/messages/9/retry", "POST", []string{"9"}},
	} {
		cmd := map[string]string{"/api/v1/status": "status", "/api/v1/conversations/12": "conversation",
			"/api/v1/conversations/7/end": "end", "/api/v1/messages/9/retry": "retry"}[tc.wantPath]
		if cmd == "" {
			cmd = "conversations"
		}
		f, pos, err := parseOperatorFlags(cmd, tc.args, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s %v: %v", cmd, tc.args, err)
		}
		var id int64
		if len(pos) == 1 {
			id = map[string]int64{"12": 12, "7": 7, "9": 9}[pos[0]]
		}
		path, method := operatorRequest(cmd, id, f.list)
		if path != tc.wantPath || method != tc.wantMethod || !cmp.Equal(pos, tc.wantPosition) {
			t.Errorf("%s %v: %s %s, args %q; want %s %s, %q", cmd, tc.args, method, path, pos, tc.wantMethod, tc.wantPath, tc.wantPosition)
		}
	}
}

// TestRenderSafe: what a customer or a vendor wrote reaches the operator's
// terminal without a control character, whatever the daemon answers.
func TestRenderSafe(t *testing.T) {
	evil := "\x1b[31mred\x1b[0m\nnext line\r\x07"
	now := time.Now()
	detail := connector.ConversationDetail{
		Conversation: connector.ConversationView{ID: 1, Channel: "sms.main", Customer: evil, Vendor: "whoson.sales",
			State: connector.StateEnded, EndReason: evil, Agent: evil, Profile: connector.Profile{Name: evil}, CreatedAt: now},
		Messages: []connector.MessageView{{ID: 2, Direction: connector.ToAgent, Kind: connector.KindText, Text: evil,
			State: connector.DeliveryFailed, Reason: evil, CreatedAt: now}},
	}
	list := connector.ConversationList{Conversations: []connector.ConversationView{detail.Conversation}, NextBefore: 1}
	status := connector.StatusReport{Instance: evil, Build: connector.BuildInfo{Version: evil, Revision: evil},
		Adapters: map[string]connector.Health{evil: {Detail: evil}}, Store: connector.Health{Detail: evil}}
	for cmd, v := range map[string]any{"conversation": detail, "conversations": list, "status": status,
		"end": detail, "retry": connector.MessageDetail{Message: detail.Messages[0]}} {
		body, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := render(cmd, body, &out); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if i := strings.IndexFunc(out.String(), func(r rune) bool { return unicode.IsControl(r) && r != '\n' }); i >= 0 {
			t.Errorf("%s printed a control character at %d:\n%q", cmd, i, out.String())
		}
		if cmd == "conversation" && strings.Count(out.String(), "\n") != 10 {
			t.Errorf("conversation printed %d lines, want 10 (a customer's newline must not add one):\n%s",
				strings.Count(out.String(), "\n"), out.String())
		}
	}
}

// FuzzRender: any answer renders or is refused, and what it prints is
// bounded by what came in (every cell is cut).
func FuzzRender(f *testing.F) {
	f.Add("conversation", `{"conversation":{"id":1,"customer":"+1555"},"messages":[{"id":2,"text":"hi"}]}`)
	f.Add("conversations", `{"conversations":[{"id":1}],"next_before":1}`)
	f.Add("status", `{"adapters":{"a":{"ready":true}},"outbox":{"oldest_at":"2026-01-01T00:00:00Z"}}`)
	f.Fuzz(func(t *testing.T, cmd, body string) {
		var out bytes.Buffer
		if err := render(cmd, []byte(body), &out); err != nil {
			return
		}
		if out.Len() > 64*len(body)+4096 {
			t.Fatalf("%d bytes printed for %d bytes of answer", out.Len(), len(body))
		}
		if strings.ContainsRune(out.String(), '\x1b') {
			t.Fatalf("an escape character was printed: %q", out.String())
		}
	})
}

func TestVersionCommand(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "9.8.7"
	var out bytes.Buffer
	if err := cmdVersion(nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	first, rest, _ := strings.Cut(out.String(), "\n")
	if first != "connectord 9.8.7" || !strings.Contains(rest, "go        go1.") {
		t.Errorf("version printed %q", out.String())
	}
	out.Reset()
	if err := cmdVersion([]string{"-json"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var b connector.BuildInfo
	if err := json.Unmarshal(out.Bytes(), &b); err != nil || b.Version != "9.8.7" || b.GoVersion == "" {
		t.Errorf("version -json: %v, %+v", err, b)
	}
	if err := cmdVersion([]string{"extra"}, &out, &out); err == nil {
		t.Error("version with an argument did not fail")
	}
}

func TestListFlagsAreAPIParameters(t *testing.T) {
	f, _, err := parseOperatorFlags("conversations", []string{"-channel", "sms.main", "-vendor", "x.y", "-newer-than", "2h",
		"-stuck-after", "5m", "-failed-within", "1h", "-before", "40", "-stuck=false"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"channel": {"sms.main"}, "vendor": {"x.y"}, "newer_than": {"2h"}, "stuck_after": {"5m"},
		"failed_within": {"1h"}, "before": {"40"}, "stuck": {"false"}}
	if d := cmp.Diff(want, f.list); d != "" {
		t.Errorf("parameters mismatch (-want +got):\n%s", d)
	}
}
