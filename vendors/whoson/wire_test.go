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
		// Letters whose lower case is longer in UTF-8: an index into the
		// lowered text must not be used on the original (it panicked).
		strings.Repeat("Ⱥ", 10) + "position": 0, "ȺȺ Position 7": 7, "\xf9\xd7position 5": 5,
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

// FuzzDecodeEvent feeds frames through the event decoder: a decoded event
// has a short lower-case name and a short ChatUid.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"EventName":"newline","ChatUid":"u","Data":{"Classname":"lineo","Content":"x"}}`))
	f.Add([]byte(`{"EventName":"queue","Data":2}`))
	f.Add([]byte(`garbage`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeEvent(b)
		if err != nil {
			return
		}
		if ev.Name == "" || len(ev.Name) > maxEventName || ev.Name != strings.ToLower(ev.Name) ||
			len(ev.ChatUID) > maxChatUID || len(ev.Data) > len(b) {
			t.Fatalf("event out of bounds: name %q, ChatUid %d bytes, Data %d bytes", ev.Name, len(ev.ChatUID), len(ev.Data))
		}
		if len(ev.text()) > len(b) {
			t.Fatalf("text of %d bytes from a %d-byte frame", len(ev.text()), len(b))
		}
	})
}

// FuzzEventData feeds an event's Data through every payload decoder (line,
// operator, survey field, connected, scalar text): what they return stays
// within the bounds the adapter relays and stores.
func FuzzEventData(f *testing.F) {
	f.Add([]byte(`{"Classname":"lineo final","Content":"<b>No agent</b>"}`))
	f.Add([]byte(`"{\"Name\":\"Alice\",\"IsBot\":\"True\"}"`))
	f.Add([]byte(`{"FieldName":"Order","Prompt":"Your order number?"}`))
	f.Add([]byte(`{"SessionID":"s1","LeaveMessageEnabled":"True","Translation":{"Enabled":1}}`))
	f.Add([]byte(`12.5e3`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := event{Name: "x", Data: data}
		if l, err := lineOf(ev); err == nil {
			if len(l.Content) > maxLineText || len(l.Classname) > maxClassname || !utf8.ValidString(l.Content) && utf8.Valid(data) {
				t.Fatalf("line out of bounds: content %d, class %d bytes", len(l.Content), len(l.Classname))
			}
			_ = classify(l)
		}
		if op, err := operatorOf(ev); err == nil && len(op.Name) > maxAgentName {
			t.Fatalf("agent name of %d bytes", len(op.Name))
		}
		if fd, err := fieldOf(ev); err == nil && (len(fd.Prompt) > maxNoticeText || len(fd.FieldName) > maxAgentName) {
			t.Fatalf("field out of bounds: prompt %d, name %d bytes", len(fd.Prompt), len(fd.FieldName))
		}
		if cd, err := connectedOf(ev); err == nil && (cd.SessionID == "" || len(cd.SessionID) > maxSessionID) {
			t.Fatalf("SessionID of %d bytes accepted", len(cd.SessionID))
		}
		if txt := clipText(ev.text(), maxNoticeText); len(txt) > maxNoticeText {
			t.Fatalf("clipped text of %d bytes", len(txt))
		}
		var b flexBool
		if err := b.UnmarshalJSON(data); err != nil {
			t.Fatalf("flexBool: %v", err)
		}
	})
}

// FuzzQueuePosition: a position read from any text is 0 (none) or within
// 1..maxQueuePosition, and a text without digits never gives one.
func FuzzQueuePosition(f *testing.F) {
	f.Add("Thank you for waiting. You are in position 3 of 10.")
	f.Add("-1")
	f.Add("99999999999999999999999")
	f.Add("position 2.5")
	f.Fuzz(func(t *testing.T, s string) {
		n := queuePosition(s)
		if n < 0 || n > maxQueuePosition {
			t.Fatalf("queuePosition(%q) = %d", s, n)
		}
		if n > 0 && !strings.ContainsAny(s, "123456789") {
			t.Fatalf("queuePosition(%q) = %d from no digits", s, n)
		}
	})
}

// FuzzParseSession feeds stored sessions through their decoder: what
// decodes marshals back to the same state.
func FuzzParseSession(f *testing.F) {
	f.Add([]byte(`{"chat_uid":"u","cookie":"connectord-x","session_id":"s","lines":3,"no_agent":true,"leave_message":true}`))
	f.Add([]byte(`{"chat_uid":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, err := parseSession(raw)
		if err != nil {
			return
		}
		again, err := parseSession(st.marshal())
		if err != nil || again != st {
			t.Fatalf("round trip of %+v: %+v, %v", st, again, err)
		}
	})
}
