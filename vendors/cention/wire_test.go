package cention

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/golden")

// The frames we write, byte for byte, as testdata/golden holds them.
func TestGoldenFrames(t *testing.T) {
	s, err := parseConfig(instance(validKeys()))
	if err != nil {
		t.Fatal(err)
	}
	v := &Vendor{cfg: s}
	c := &connector.Conversation{ID: 1, Channel: "sms.main", Customer: "+15551230000",
		Profile: connector.Profile{Name: "Jo Doe", Email: "jo@example.com"}}
	up := json.RawMessage(`{"id":7,"value":"a.png","download":"/Cention/web/chat/client/attachment/7","sizeHuman":"1 KB","size":1024}`)
	frames := map[string]clientFrame{
		"register":          {Type: typeRegister, Data: v.registration(c, false, s.question(c)), ID: 1},
		"register-offline":  {Type: typeRegister, Data: v.registration(c, true, "call me <b>back</b>"), ID: 1},
		"resume":            {Type: typeResume, Data: resumeData{}, ID: 1},
		"chat-message":      {Type: typeMessage, Data: messageData{ID: umidFor(42, 0, 1), Message: "héllo \"there\"", MCount: 3}, ID: 2},
		"chat-message-part": {Type: typeMessage, Data: messageData{ID: umidFor(42, 1, 3), Message: "part two", MCount: 5}, ID: 3},
		"add-attachment":    {Type: typeAttachment, Data: attachmentData{Area: 2, File: up, SessionSecret: "s3cr3t"}, ID: 4},
		"file-message": {Type: typeMessage, Data: messageData{ID: umidFor(43, 1, 2), MCount: 7,
			Message: fileMessage(fileNotice{FileDownload: "/Cention/web/chat/client/attachment/7?t=s3cr3t", FileName: "a.png", SizeHuman: "1 KB"})}, ID: 5},
		"close-chat": {Type: typeClose, ID: 6},
	}
	for name, f := range frames {
		got, err := encodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "golden", name+".json")
		if *update {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)+"\n"); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// The batches both vocabularies send: the SDK's CHAT_NEW_MESSAGE (agent in
// session), the document's chat message object (agent, chat), bare lists.
func TestDecodeBatch(t *testing.T) {
	sdk := `{"event":"CHAT_NEW_MESSAGE","args":[{"sessionId":101,"errandId":5,"session":{"client":"Jo","agent":"Alice"},
	  "messages":[{"id":1005,"umid":"","text":"second","fromClient":false,"sender":"AGENT","agent":"Alice","sent":1700000002},
	              {"id":1004,"umid":"connectord-9","text":"mine","fromClient":true,"sender":"CLIENT","sent":1700000001},
	              {"id":"1006","text":"<b>third</b>","sender":"AGENT","sent":"1700000002"}]}]}`
	f, err := decodeFrame([]byte(sdk))
	if err != nil {
		t.Fatal(err)
	}
	b := decodeBatch(f.Args)
	want := batch{Agent: "Alice", Messages: []chatMsg{
		{ID: "1004", UMID: "connectord-9", Sender: "CLIENT", FromClient: true, Sent: 1700000001, Text: "mine"},
		{ID: "1005", Sender: "AGENT", Agent: "Alice", Sent: 1700000002, Text: "second"},
		{ID: "1006", Sender: "AGENT", Sent: 1700000002, Text: "<b>third</b>"},
	}}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("SDK batch (-want +got):\n%s", diff)
	}
	doc := `{"event":"chat message","args":[{"agent":"Bob","client":"Jo","chat":[{"id":7,"sender":"SYSTEM","text":"{\"event\":\"OWNER_ENDS_CHAT\"}","sent":1}]}]}`
	f, _ = decodeFrame([]byte(doc))
	b = decodeBatch(f.Args)
	if b.Agent != "Bob" || len(b.Messages) != 1 || b.Messages[0].ID != "7" || b.Messages[0].Sender != "SYSTEM" {
		t.Errorf("document batch %+v", b)
	}
	f, _ = decodeFrame([]byte(`{"event":"CHAT_NEW_MESSAGE","args":[[{"id":1,"text":"a"},{"id":0,"text":"b"}],42,"x",null]}`))
	if b := decodeBatch(f.Args); len(b.Messages) != 2 || b.Messages[1].ID != "" {
		t.Errorf("list batch %+v", b)
	}
}

func TestDecodeEvents(t *testing.T) {
	for _, tc := range []struct {
		arg      string
		id, umid string
		ok       bool
	}{
		{`{"id":"1004","umid":"connectord-1","sent":1}`, "1004", "connectord-1", true},
		{`{"id":"already-seen-connectord-1","umid":"connectord-1"}`, "already-seen-connectord-1", "connectord-1", true},
		{`{"id":"already-seen-connectord-2"}`, "already-seen-connectord-2", "connectord-2", true},
		{`{"id":1004}`, "", "", false},
		{`[]`, "", "", false},
	} {
		id, umid, ok := decodeSent(json.RawMessage(tc.arg))
		if id != tc.id || umid != tc.umid || ok != tc.ok {
			t.Errorf("sent %s: %q %q %v", tc.arg, id, umid, ok)
		}
	}
	if got := decodeAcked(json.RawMessage(`{"ids":[1004,"1005",null]}`)); !cmp.Equal(got, []string{"1004", "1005"}) {
		t.Errorf("acked %q", got)
	}
	for arg, want := range map[string]int{`3`: 3, `"4"`: 4, `{"queue":5}`: 5, `{"position":6}`: 6, `0`: 0, `-2`: 0,
		`2.5`: 0, `1e9`: 0, `"x"`: 0, `null`: 0} {
		if got := decodeQueue(json.RawMessage(arg)); got != want {
			t.Errorf("queue %s: %d, want %d", arg, got, want)
		}
	}
	for arg, want := range map[string]bool{`{"messageLen":3}`: true, `{"messageLen":0}`: false, `{}`: false, `"x"`: true} {
		if got := decodePreview(json.RawMessage(arg)); got != want {
			t.Errorf("preview %s: %v", arg, got)
		}
	}
	for arg, want := range map[string]registerAnswer{
		`{"sessionId":101,"sessionSecret":"abc","areaId":2}`: {SessionID: "101", Secret: "abc"},
		`{"error":"no session"}`:                             {Error: "no session"},
	} {
		if got, ok := decodeAnswer(json.RawMessage(arg)); !ok || got != want {
			t.Errorf("answer %s: %+v %v", arg, got, ok)
		}
	}
	if _, ok := decodeAnswer(json.RawMessage(`{"areaId":2}`)); ok {
		t.Error("an answer with neither session nor error")
	}
	for _, bad := range []string{`{}`, `{"event":""}`, `not json`, `{"event":"` + string(make([]byte, 65)) + `"}`} {
		if _, err := decodeFrame([]byte(bad)); err == nil {
			t.Errorf("frame %q decoded", bad)
		}
	}
}

// System events inside a message text are events; words are words.
func TestDecodeSystemText(t *testing.T) {
	for text, want := range map[string]string{
		`{"event":"OWNER_ENDS_CHAT"}`:  "OWNER_ENDS_CHAT",
		` {"event":"CHAT_EXPIRED"} `:   "CHAT_EXPIRED",
		`{"event":"CLIENT_ENDS_CHAT"}`: "CLIENT_ENDS_CHAT",
		"\u0001JSON{\"event\":\"FILE_UPLOAD\",\"fileDownload\":\"/f/1\",\"fileName\":\"a.png\",\"sizeHuman\":\"1 KB\"}": "FILE_UPLOAD",
		"\u0001JSON{broken":         "",
		`{"event":"SOMETHING_NEW"}`: "SOMETHING_NEW",
	} {
		ev, err := decodeSystemText(text)
		if err != nil || ev.Event != want {
			t.Errorf("%q: %+v %v, want event %q", text, ev, err, want)
		}
	}
	ev, _ := decodeSystemText("\u0001JSON{\"event\":\"FILE_UPLOAD\",\"fileDownload\":\"/f/1\",\"fileName\":\"a.png\"}")
	if ev.File.FileDownload != "/f/1" || ev.File.FileName != "a.png" {
		t.Errorf("file %+v", ev.File)
	}
	for _, words := range []string{"hello", "{braces are words}", `{"no":"event"}`, "", "<p>{x}</p>"} {
		if _, err := decodeSystemText(words); err != errNotEvent {
			t.Errorf("%q taken as an event (%v)", words, err)
		}
	}
}

func TestDecodeHTTPAnswers(t *testing.T) {
	cc, err := decodeCanChat([]byte(`{"chatOpen":true,"agentsAvailable":2,"feature":{"chat.attachment":true},"resumable":false}`))
	if err != nil || !cc.ChatOpen || cc.AgentsAvailable == nil || *cc.AgentsAvailable != 2 {
		t.Errorf("canchat %+v %v", cc, err)
	}
	if why, closed := cc.refusal(); why != "" || closed {
		t.Errorf("refusal of an open chat %q", why)
	}
	for body, wantClosed := range map[string]bool{`{"chatOpen":false,"agentsAvailable":3}`: true,
		`{"chatOpen":true,"agentsAvailable":0}`: false, `{"error":"invalid area"}`: false} {
		cc, _ := decodeCanChat([]byte(body))
		if why, closed := cc.refusal(); why == "" || closed != wantClosed {
			t.Errorf("%s: refusal %q closed %v", body, why, closed)
		}
	}
	if n, err := decodeAgentList([]byte(`{"agents":[{"id":1,"name":"A"},{"id":2}]}`)); n != 2 || err != nil {
		t.Errorf("agentlist %d %v", n, err)
	}
	up, err := decodeUpload([]byte(`{"id":7,"value":"a.png","download":"/d/7","sizeHuman":"1 KB"}`))
	if err != nil || up.Download != "/d/7" || up.Name != "a.png" || up.SizeHuman != "1 KB" {
		t.Errorf("upload %+v %v", up, err)
	}
	for _, bad := range []string{`{"value":"a"}`, `{"error":"too big","download":"/d"}`, `[`} {
		if _, err := decodeUpload([]byte(bad)); err == nil {
			t.Errorf("upload %s accepted", bad)
		}
	}
}

func TestSplitAndUmid(t *testing.T) {
	if got := splitText("  ", 5); len(got) != 0 {
		t.Errorf("blank: %q", got)
	}
	if got := splitText("aaa bbb ccc", 8); !cmp.Equal(got, []string{"aaa bbb", "ccc"}) {
		t.Errorf("split %q", got)
	}
	if got := splitText("ééééé", 2); !cmp.Equal(got, []string{"éé", "éé", "é"}) {
		t.Errorf("runes %q", got)
	}
	if umidFor(5, 0, 1) != "connectord-5" || umidFor(5, 1, 3) != "connectord-5-2" {
		t.Error("umids")
	}
	m := &connector.Message{Text: "hi", Attachments: []connector.Attachment{{URL: "https://x/a"}, {}}}
	if p := messageParts(m); len(p) != 2 || p[0].text != "hi" || p[1].file == nil {
		t.Errorf("parts %+v", p)
	}
}

// An agent line is HTML when it carries markup or entities.
func TestLooksHTML(t *testing.T) {
	for s, want := range map[string]bool{"<p>hi</p>": true, "a<br/>b": true, "a &amp; b": true, "&#39;": true,
		"a < b > c": false, "Tom & Jerry": false, "1<2": false, `<a href="x">y</a>`: true} {
		if looksHTML(s) != want {
			t.Errorf("%q: %v", s, !want)
		}
	}
}
