package cention

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame: a server frame's name and argument count stay bounded,
// and every event reader over its arguments keeps within its bounds.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"event":"register","args":[{"sessionId":101,"sessionSecret":"abc"}]}`,
		`{"event":"register","args":[{"error":"no session"}]}`,
		`{"event":"message sent","args":[{"id":"already-seen-connectord-1","umid":"connectord-1"}]}`,
		`{"event":"message acked","args":[{"ids":[1,"2"]}]}`,
		`{"event":"agent preview","args":[{"messageLen":4}]}`,
		`{"event":"queue","args":[3]}`,
		`{"event":"CHAT_NEW_MESSAGE","args":[{"session":{"agent":"A"},"messages":[{"id":1,"text":"x","sent":1}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		if fr.Event == "" || len(fr.Event) > maxEventName || len(fr.Args) > maxArgs {
			t.Fatalf("event of %d bytes, %d args", len(fr.Event), len(fr.Args))
		}
		a := fr.arg0()
		if ans, ok := decodeAnswer(a); ok && (len(ans.SessionID) > maxID || len(ans.Secret) > maxID || len(ans.Error) > maxNotice) {
			t.Fatalf("answer %+v", ans)
		}
		if id, umid, ok := decodeSent(a); ok && (len(id) > maxID+16 || len(umid) > maxID || umid == "") {
			t.Fatalf("sent %q %q", id, umid)
		}
		ids := decodeAcked(a)
		if len(ids) > maxAckedIDs {
			t.Fatalf("%d acked ids", len(ids))
		}
		for _, id := range ids {
			if len(id) > maxID || id == "" {
				t.Fatalf("acked id %q", id)
			}
		}
		if q := decodeQueue(a); q < 0 || q > maxQueueNumber {
			t.Fatalf("queue %d", q)
		}
		_ = decodePreview(a)
		checkBatch(t, decodeBatch(fr.Args), len(b))
	})
}

// FuzzDecodeBatch: whatever the arguments, at most maxBatch messages, each
// field within its bound and the texts together within what JSON can make
// of the input (an invalid byte becomes a 3-byte replacement character).
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`[{"messages":[{"id":1,"umid":"u","text":"hi","fromClient":true,"sender":"CLIENT","agent":"","sent":1}]}]`,
		`[{"agent":"Bob","chat":[{"id":"7","text":"{\"event\":\"OWNER_ENDS_CHAT\"}","sender":"SYSTEM"}]}]`,
		`[[{"id":1,"text":"a"}],[[{"id":2,"text":"b"}]]]`,
		`[{"id":1,"text":null},{"id":{"x":1},"text":"y","sent":"12"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var args []json.RawMessage
		if json.Unmarshal(b, &args) != nil {
			return
		}
		checkBatch(t, decodeBatch(args), len(b))
	})
}

func checkBatch(t *testing.T, bt batch, in int) {
	t.Helper()
	if len(bt.Messages) > maxBatch || len(bt.Agent) > maxAgentName {
		t.Fatalf("%d messages, agent of %d bytes", len(bt.Messages), len(bt.Agent))
	}
	total := 0
	for i, m := range bt.Messages {
		if len(m.ID) > maxID || len(m.UMID) > maxID || len(m.Agent) > maxAgentName || len(m.Sender) > 16 {
			t.Fatalf("message fields out of bounds: %+v", m)
		}
		if i > 0 && m.Sent < bt.Messages[i-1].Sent {
			t.Fatalf("not sorted by sent: %v after %v", m.Sent, bt.Messages[i-1].Sent)
		}
		total += len(m.Text)
	}
	if total > 3*in {
		t.Fatalf("texts of %d bytes from %d of input", total, in)
	}
}

// FuzzSystemText: an event read from a message text has bounded fields;
// a text that is not JSON (and not the file prefix) is never an event.
func FuzzSystemText(f *testing.F) {
	for _, s := range []string{`{"event":"OWNER_ENDS_CHAT"}`, "\u0001JSON{\"event\":\"FILE_UPLOAD\",\"fileDownload\":\"/f\",\"fileName\":\"a\"}",
		"hello", "{not json}", "\u0001JSON"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ev, err := decodeSystemText(text)
		if err != nil {
			return
		}
		if len(ev.Event) > maxEventName || len(ev.File.FileDownload) > maxFileURL || len(ev.File.FileName) > maxFileName ||
			len(ev.File.SizeHuman) > 32 {
			t.Fatalf("event fields out of bounds: %+v", ev)
		}
		if len(ev.Event)+len(ev.File.FileDownload)+len(ev.File.FileName) > 3*len(text) {
			t.Fatalf("event larger than its text")
		}
	})
}

// FuzzHTTPAnswers: canchat, agentlist and upload answers decode within
// their bounds.
func FuzzHTTPAnswers(f *testing.F) {
	for _, s := range []string{`{"chatOpen":true,"agentsAvailable":2}`, `{"error":"invalid area"}`,
		`{"agents":[{"id":1}]}`, `{"value":"a.png","download":"/d/7","sizeHuman":"1 KB"}`, `{"agentsAvailable":1e300}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if cc, err := decodeCanChat(b); err == nil {
			if len(cc.Error) > maxNotice || cc.AgentsAvailable != nil && (*cc.AgentsAvailable < -1 || *cc.AgentsAvailable > 1<<20) {
				t.Fatalf("canchat %+v", cc)
			}
			if why, _ := cc.refusal(); len(why) > maxNotice+32 {
				t.Fatalf("refusal of %d bytes", len(why))
			}
		}
		if n, err := decodeAgentList(b); err == nil && n > len(b) {
			t.Fatalf("%d agents from %d bytes", n, len(b))
		}
		if up, err := decodeUpload(b); err == nil {
			if len(up.Download) > maxFileURL || len(up.Name) > maxFileName || len(up.SizeHuman) > 32 || len(up.Raw) != len(b) {
				t.Fatalf("upload %+v", up)
			}
		}
	})
}

// FuzzStored: a stored session and send-progress records read back within
// their bounds, never with negative counts.
func FuzzStored(f *testing.F) {
	f.Add([]byte(`{"token":"connectord-x","session_id":"101","secret":"s","agent":"A","mcount":3}`))
	f.Add([]byte(`{"token":"t","parts":2,"sent":1,"mcount":4,"upload":{"download":"/d"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := parseSession(b); err == nil {
			if len(st.Token) > maxID || len(st.SessionID) > maxID || len(st.Secret) > maxID || len(st.Agent) > maxAgentName || st.MCount < 0 {
				t.Fatalf("session %+v", st)
			}
		}
		if r, err := decodeRecord(b); err == nil && (r.Sent < 0 || r.Parts < 0 || r.MCount < 0 || len(r.Upload) > len(b)) {
			t.Fatalf("record %+v", r)
		}
	})
}
