package xima

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON compares got with a golden file, both compacted.
func sameJSON(t *testing.T, name string, got []byte) {
	t.Helper()
	var want, have bytes.Buffer
	if err := json.Compact(&want, golden(t, name)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Compact(&have, got); err != nil {
		t.Fatalf("%s: sent %q: %v", name, got, err)
	}
	if want.String() != have.String() {
		t.Errorf("%s:\n got %s\nwant %s", name, have.String(), want.String())
	}
}

// The document's own ChatSession example has trailing commas and a //
// comment: it is read all the same.
func TestDecodeChatSessionDocumentExample(t *testing.T) {
	cs, err := decodeChatSession(golden(t, "chat-session.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := chatSession{ID: "9c108bb3-8924-4234-a53c-be9ab284d4e3", Agent: "Agent Name",
		Queue: "https://sqs.us-east-1.amazonaws.com/775407092955/mm-queue-054d867a-76da-44f3-b63a-1ca187398f6d"}
	if diff := cmp.Diff(want, cs, cmp.AllowUnexported(chatSession{})); diff != "" {
		t.Error(diff)
	}
}

func TestDecodeChatSessionShapes(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		ok        bool
	}{
		{"top level", `{"id":"a","serverToClientQueue":{"url":"https://q/1"}}`, true},
		{"no queue", `{"sessionDetails":{"id":"a"}}`, false},
		{"no id", `{"sessionDetails":{"serverToClientQueue":{"url":"https://q/1"}}}`, false},
		{"null details", `{"sessionDetails":null,"id":"a","serverToClientQueue":{"url":"https://q/1"}}`, true},
		{"not json", `<html>`, false},
		{"empty", ``, false},
		{"wrong types", `{"sessionDetails":{"id":5,"serverToClientQueue":"x"}}`, false},
	} {
		_, err := decodeChatSession([]byte(tc.raw))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v is not errMalformed", tc.name, err)
		}
	}
}

func TestDecodeCredentials(t *testing.T) {
	c, err := decodeCredentials(golden(t, "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKey != "<sqs aws access key>" || c.SecretKey != "<sqs aws secret key>" || c.Region != "<sqs aws region>" {
		t.Errorf("got %+v", c)
	}
	if _, err := decodeCredentials([]byte(`{"sqsAccessKey":"a"}`)); err == nil {
		t.Error("credentials without a secret accepted")
	}
}

// Every message type of the document, from its own examples.
func TestDecodeMessageDocumentExamples(t *testing.T) {
	for _, tc := range []struct {
		file string
		want message
	}{
		{"msg-wait.json", message{Type: msgEstimatedWait, Wait: "about 2 minutes"}},
		{"msg-started.json", message{Type: msgChatStarted, Agent: "Myles"}},
		{"msg-transferred.json", message{Type: msgTransferred, Agent: "Shawn"}},
		{"msg-text.json", message{Type: msgText, Text: "Hello, how can I help you today?"}},
		{"msg-typing.json", message{Type: msgTyping, Typing: true}},
		{"msg-screenshot.json", message{Type: msgScreenshot}},
		{"msg-ended.json", message{Type: msgEnded}},
		{"msg-force-close.json", message{Type: msgForceClose}},
		{"msg-down.json", message{Type: msgDown}},
		{"msg-sns.json", message{Type: msgText, Text: "Inside an envelope", ID: "sns:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"}},
	} {
		got, err := decodeMessage(golden(t, tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: %s", tc.file, diff)
		}
	}
}

func TestDecodeMessageAwkward(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      message
		bad       bool
	}{
		{"typing True", `{"type":"AGENT_TYPING","isTyping":"True"}`, message{Type: msgTyping, Typing: true}, false},
		{"typing json true", `{"type":"AGENT_TYPING","isTyping":true}`, message{Type: msgTyping, Typing: true}, false},
		{"typing False", `{"type":"AGENT_TYPING","isTyping":"False"}`, message{Type: msgTyping}, false},
		{"typing missing", `{"type":"AGENT_TYPING"}`, message{Type: msgTyping}, false},
		{"lower-case type", `{"type":"chat_text","text":"x"}`, message{Type: msgText, Text: "x"}, false},
		{"empty text", `{"type":"CHAT_TEXT","text":""}`, message{Type: msgText}, false},
		{"text missing", `{"type":"CHAT_TEXT"}`, message{}, true},
		{"unknown type", `{"type":"SOMETHING_NEW"}`, message{Type: "SOMETHING_NEW"}, false},
		{"no type", `{"text":"x"}`, message{}, true},
		{"junk", `not json`, message{}, true},
		{"array", `[1,2]`, message{}, true},
		{"sns of junk", `{"Type":"Notification","MessageId":"m","Message":"junk"}`, message{}, true},
		{"sns without id", `{"Type":"Notification","Message":"{\"type\":\"CHAT_ENDED\"}"}`, message{Type: msgEnded}, false},
		{"not an sns notification", `{"Type":"SubscriptionConfirmation","Message":"x","type":"CHAT_ENDED"}`, message{Type: msgEnded}, false},
		{"html in text kept", `{"type":"CHAT_TEXT","text":"<b>hi</b>"}`, message{Type: msgText, Text: "<b>hi</b>"}, false},
	} {
		got, err := decodeMessage([]byte(tc.raw))
		if (err != nil) != tc.bad {
			t.Errorf("%s: err %v, want bad=%v", tc.name, err, tc.bad)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: %s", tc.name, diff)
		}
	}
	if _, err := decodeMessage(bytes.Repeat([]byte(" "), maxBody+1)); err == nil {
		t.Error("a body over SQS's limit accepted")
	}
}

func TestRelaxJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,}`, `{"a":1}`},
		{`[1,2 , ]`, `[1,2  ]`},
		{"{\"a\":\"x\" // c\n}", "{\"a\":\"x\" \n}"},
		{`{"a":"//not a comment,}"}`, `{"a":"//not a comment,}"}`},
		{`{"a":"\",}"}`, `{"a":"\",}"}`},
	} {
		got, _ := relaxJSON([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("relaxJSON(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func testSettings(t *testing.T) *settings {
	t.Helper()
	keys := validKeys()
	keys["installation_id"] = `"inst-1"`
	keys["api_key"] = `"key-1"`
	s, err := parseConfig(instance(keys))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The ClientChatSessionRequest as sent for an SMS and a Slack customer.
func TestRequestGolden(t *testing.T) {
	v := &Vendor{cfg: testSettings(t)}
	sms := &connector.Conversation{Channel: "sms.main", Customer: "+15557654321",
		Profile: connector.Profile{Name: "Ada Lovelace", Email: "ada@example.com"}}
	b, _ := json.Marshal(v.request(sms))
	sameJSON(t, "req-apiqueue.json", b)
	slack := &connector.Conversation{Channel: "slack.support", Customer: "C0001/1700000000.000100"}
	b, _ = json.Marshal(v.request(slack))
	sameJSON(t, "req-apiqueue-slack.json", b)
}

func TestSessionRoundTrip(t *testing.T) {
	st := sessionState{Chat: "c1", Queue: "https://sqs.us-east-1.amazonaws.com/1/q",
		Cookies: []cookie{{Name: "JSESSIONID", Value: "abc"}}}
	for i := range 40 {
		st.Seen = append(st.Seen, "id-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	got, err := parseSession(st.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Seen) != maxSeenStored || got.Seen[maxSeenStored-1] != st.Seen[39] {
		t.Errorf("seen kept %d, newest %q", len(got.Seen), got.Seen[len(got.Seen)-1])
	}
	if got.Chat != "c1" || got.Queue != st.Queue || len(got.Cookies) != 1 {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{`{}`, `{"chat":"c"}`, `{"queue":"q"}`, `null`, `[]`, `{"chat":5}`} {
		if _, err := parseSession(json.RawMessage(bad)); err == nil {
			t.Errorf("session %s accepted", bad)
		}
	}
}

func TestSeenRing(t *testing.T) {
	r := newSeen(nil, 3)
	for _, id := range []string{"a", "b", "a", "c", "d"} {
		r.add(id)
	}
	if diff := cmp.Diff([]string{"b", "c", "d"}, r.ids); diff != "" {
		t.Error(diff)
	}
	if r.has("a") || !r.has("d") {
		t.Error("ring membership wrong")
	}
	if diff := cmp.Diff([]string{"c", "d"}, r.newest(2)); diff != "" {
		t.Error(diff)
	}
}

func TestRegionOf(t *testing.T) {
	for host, want := range map[string]string{
		"sqs.us-east-1.amazonaws.com":   "us-east-1",
		"eu-west-2.queue.amazonaws.com": "eu-west-2",
		"127.0.0.1":                     "",
		"":                              "",
	} {
		if got := regionOf(host); got != want {
			t.Errorf("regionOf(%q) = %q, want %q", host, got, want)
		}
	}
}
