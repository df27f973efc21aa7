package whoson

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func TestDecodeEvent(t *testing.T) {
	for _, tc := range []struct {
		frame    string
		name     string
		uid      string
		text     string
		malforms bool
	}{
		{`{"EventName":"newline","ChatUid":"gq0i7smlen","Data":{"Classname":"lineo","Content":"hi"}}`, "newline", "gq0i7smlen", "", false},
		{`{"EventName":"Accepted","ChatUid":"u1","Data":"Please wait."}`, "accepted", "u1", "Please wait.", false},
		{`{"EventName":"OPERATORJOINED","ChatUid":"u1","Data":{"Name":"A"}}`, "operatorjoined", "u1", "", false},
		{`{"eventname":"queue","chatuid":"u1","data":2}`, "queue", "u1", "2", false},
		{`{"EventName":"error","ChatUid":null,"Data":"Access Denied"}`, "error", "", "Access Denied", false},
		{`{"EventName":"typing","ChatUid":"u1","Data":null}`, "typing", "u1", "", false},
		{`{"EventName":"typing","ChatUid":"u1"}`, "typing", "u1", "", false},
		{`not json`, "", "", "", true},
		{`{"EventName":""}`, "", "", "", true},
		{`{"ChatUid":"u1","Data":"x"}`, "", "", "", true},
		{`["newline"]`, "", "", "", true},
		{`{"EventName":7}`, "", "", "", true},
		{``, "", "", "", true},
	} {
		ev, err := decodeEvent([]byte(tc.frame))
		if tc.malforms {
			if err == nil {
				t.Errorf("%s: decoded as %+v, want an error", tc.frame, ev)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.frame, err)
			continue
		}
		if ev.Name != tc.name || ev.ChatUID != tc.uid || ev.text() != tc.text {
			t.Errorf("%s: got name %q uid %q text %q", tc.frame, ev.Name, ev.ChatUID, ev.text())
		}
	}
}

func TestFlexBool(t *testing.T) {
	for in, want := range map[string]bool{
		`true`: true, `"True"`: true, `"true"`: true, `"TRUE"`: true, `1`: true,
		`false`: false, `"False"`: false, `""`: false, `null`: false, `"maybe"`: false, `0`: false,
	} {
		var d connectedData
		if err := json.Unmarshal([]byte(`{"SessionID":"s","LeaveMessageEnabled":`+in+`}`), &d); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if bool(d.LeaveMessageEnabled) != want {
			t.Errorf("LeaveMessageEnabled %s = %v, want %v", in, d.LeaveMessageEnabled, want)
		}
	}
}

func TestEventObject(t *testing.T) {
	var l lineData
	ev := event{Name: "newline", Data: json.RawMessage(`"{\"Classname\":\"lineo\",\"Content\":\"x\"}"`)}
	if err := ev.object(&l); err != nil || l.Content != "x" {
		t.Errorf("object in a string: %+v, %v", l, err)
	}
	ev.Data = json.RawMessage(`"plain"`)
	if err := ev.object(&l); err == nil {
		t.Error("a plain string decoded as an object")
	}
	ev.Data = nil
	if err := ev.object(&l); err == nil {
		t.Error("no Data decoded as an object")
	}
}

func TestClassify(t *testing.T) {
	for class, want := range map[string]lineKind{
		"lineo": lineOperator, "LineO": lineOperator, "linet": lineTranslation,
		"linev": lineEcho, "linesays": lineSkip, "pagingmessage": lineSkip, "": lineSkip,
		"lineo linewaiting1": lineWaiting, "lineo linewaiting2": lineWaiting,
		"lineo final": lineFinal, "queuemessage": lineQueue, "something new": lineSkip,
	} {
		if got := classify(lineData{Classname: class}); got != want {
			t.Errorf("classify(%q) = %v, want %v", class, got, want)
		}
	}
}

func TestFieldsXML(t *testing.T) {
	got := fieldsXML([]field{{"Phone", "+1555"}, {"Email", ""}, {"Note", `<b>"Tom" & 'Jerry'</b>`}})
	want := `<Fields><Field><Name>Phone</Name><Value>+1555</Value></Field>` +
		`<Field><Name>Note</Name><Value>&lt;b&gt;&#34;Tom&#34; &amp; &#39;Jerry&#39;&lt;/b&gt;</Value></Field></Fields>`
	if got != want {
		t.Errorf("fieldsXML =\n%s\nwant\n%s", got, want)
	}
	var doc struct {
		Fields []struct{ Name, Value string } `xml:"Field"`
	}
	if err := xml.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Fields[1].Value != `<b>"Tom" & 'Jerry'</b>` {
		t.Errorf("round trip = %q", doc.Fields[1].Value)
	}
	if got := fieldsXML(nil); got != "<Fields></Fields>" {
		t.Errorf("empty = %q", got)
	}
}

func TestCommands(t *testing.T) {
	s := &settings{Config: Config{Domain: "www.example.com", AuthString: "auth", APIKey: "key", UserAgent: "ua"}}
	for _, tc := range []struct {
		cmd  command
		want string
	}{
		{connectCmd(s, "ck", ""), `{"Command":"Connect","Parameters":["auth","www.example.com","","ck","ua","","key"]}`},
		{connectCmd(s, "ck", "uid"), `{"Command":"Connect","Parameters":["auth","www.example.com","","ck","ua","","key","uid"]}`},
		{helloCmd(s, helloParams{VisitorName: "Ann", SessionID: "sid", Cookie: "ck", Language: "fr",
			Translation: true, Fields: []field{{"Phone", "+1"}}}),
			`{"Command":"Hello","Parameters":["Ann","www.example.com","","","sid","","ck","fr","true",` +
				`"\u003cFields\u003e\u003cField\u003e\u003cName\u003ePhone\u003c/Name\u003e\u003cValue\u003e+1\u003c/Value\u003e\u003c/Field\u003e\u003c/Fields\u003e"]}`},
		{messageCmd(s, "sid", "hi"), `{"Command":"Message","Parameters":["sid","www.example.com","hi"]}`},
		{typingCmd("sid", true), `{"Command":"StartTyping","Parameters":["sid"]}`},
		{typingCmd("sid", false), `{"Command":"StopTyping","Parameters":["sid"]}`},
		{quitCmd(s, "sid"), `{"Command":"Quit","Parameters":["sid","www.example.com"]}`},
		{leaveMessageCmd(s, leftMessage{ChatUID: "u", SessionID: "sid", Name: "Ann", Email: "a@x", Phone: "+1", Text: "call me"}),
			`{"Command":"LeaveMessage","Parameters":["u","sid","www.example.com","","Ann","","a@x","+1","call me"]}`},
		{command{Command: "GetOperators"}, `{"Command":"GetOperators","Parameters":null}`},
	} {
		b, err := json.Marshal(tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("got  %s\nwant %s", b, tc.want)
		}
	}
}

func TestSplitText(t *testing.T) {
	word := strings.Repeat("a", 9) + " " // 10 runes
	long := strings.Repeat(word, 900)    // 9000 runes
	parts := splitText(long, maxLine)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	for i, p := range parts {
		if n := utf8.RuneCountInString(p); n > maxLine {
			t.Errorf("part %d has %d runes", i, n)
		}
		if strings.HasPrefix(p, " ") || strings.HasSuffix(p, " ") || strings.HasSuffix(p, "a a") {
			t.Errorf("part %d cut badly: ...%q", i, p[len(p)-5:])
		}
		if !strings.HasSuffix(p, "aaaaaaaaa") {
			t.Errorf("part %d not cut at a word boundary: ...%q", i, p[len(p)-12:])
		}
	}
	if got := strings.Join(parts, " "); got != strings.TrimSpace(long) {
		t.Error("parts do not join back to the text")
	}

	// No white space: hard cut, multi-byte runes kept whole.
	emoji := strings.Repeat("é", 4500)
	parts = splitText(emoji, maxLine)
	if len(parts) != 2 || utf8.RuneCountInString(parts[0]) != maxLine || parts[0]+parts[1] != emoji {
		t.Errorf("hard cut gave %d parts", len(parts))
	}
	for _, p := range parts {
		if !utf8.ValidString(p) {
			t.Error("a rune was cut")
		}
	}

	if diff := cmp.Diff([]string{"short"}, splitText("  short \n", maxLine)); diff != "" {
		t.Error(diff)
	}
	if got := splitText(" \n ", maxLine); len(got) != 0 {
		t.Errorf("blank text gave %q", got)
	}
	if got := splitText(strings.Repeat("x", maxLine), maxLine); len(got) != 1 {
		t.Errorf("exactly %d runes gave %d parts", maxLine, len(got))
	}
}

func TestQueuePosition(t *testing.T) {
	for in, want := range map[string]int{
		"2": 2, "Thank you for waiting. You are in position 3 of 10.": 3,
		"In 2 minutes: position 5": 5, "no number": 0, "": 0, "Position: 12": 12,
		"0": 0, "-1": 0, "-7 places": 0, "2.5": 0, "position -3 of 9": 0, "+4": 0,
		"99999999999999999999999": 0, "100001": 0, "100000": 100000, "You are 3rd.": 3,
	} {
		if got := queuePosition(in); got != want {
			t.Errorf("queuePosition(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestLineSourceID(t *testing.T) {
	a := lineSourceID("uid", 4, "hello")
	if a != lineSourceID("uid", 4, "hello") {
		t.Error("not stable")
	}
	for _, b := range []string{lineSourceID("uid", 5, "hello"), lineSourceID("uid", 4, "hello!"), lineSourceID("uid2", 4, "hello")} {
		if a == b {
			t.Errorf("%s collides", b)
		}
	}
	if !strings.HasPrefix(a, "uid:4:") {
		t.Errorf("SourceID %q does not name the chat and line", a)
	}
}

func TestVisitorText(t *testing.T) {
	m := &connector.Message{Text: "see", Attachments: []connector.Attachment{{URL: "https://x/1.png"}, {URL: ""}}}
	if got := visitorText(m); got != "see\nhttps://x/1.png" {
		t.Errorf("visitorText = %q", got)
	}
	m = &connector.Message{Attachments: []connector.Attachment{{URL: "https://x/1.png"}}}
	if got := visitorText(m); got != "https://x/1.png" {
		t.Errorf("visitorText = %q", got)
	}
}

func TestSessionStateRoundTrip(t *testing.T) {
	st := sessionState{ChatUID: "u", Cookie: "c", SessionID: "s", Lines: 7, LeaveMessage: true}
	got, err := parseSession(st.marshal())
	if err != nil || got != st {
		t.Errorf("round trip = %+v, %v", got, err)
	}
	var m map[string]any
	json.Unmarshal(st.marshal(), &m)
	if m["chat_uid"] != "u" || m["cookie"] != "c" {
		t.Errorf("session JSON %v lacks chat_uid/cookie", m)
	}
	if _, err := parseSession(nil); err == nil {
		t.Error("empty session parsed")
	}
	if _, err := parseSession(json.RawMessage(`{`)); err == nil {
		t.Error("broken session parsed")
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"EventName":"newline","ChatUid":"u","Data":{"Classname":"lineo","Content":"x"}}`))
	f.Add([]byte(`{"EventName":"queue","Data":2}`))
	f.Add([]byte(`garbage`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeEvent(b)
		if err != nil {
			return
		}
		var l lineData
		_ = ev.object(&l)
		_ = classify(l)
		_ = queuePosition(ev.text())
	})
}
