package xima

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// goldenSeeds adds every golden file of the document's examples.
func goldenSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// FuzzDecodeMessage: whatever a queue delivers, the decoded message stays
// within its bounds and no field is longer than the body.
func FuzzDecodeMessage(f *testing.F) {
	goldenSeeds(f)
	for _, s := range []string{`{"type":"AGENT_TYPING","isTyping":"True"}`, `{"type":"CHAT_TEXT"}`,
		`{"Type":"Notification","MessageId":"m","Message":"{\"type\":\"CHAT_TEXT\",\"text\":\"x\",}"}`, `{"type":"x",}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if m.Type == "" || len(m.Type) > 64 {
			t.Fatalf("type %q", m.Type)
		}
		if len(m.Text) > len(b) {
			t.Fatalf("text of %d bytes from %d", len(m.Text), len(b))
		}
		for _, s := range []string{m.Agent, m.Wait} {
			if len(s) > maxAgent || len(s) > len(b) {
				t.Fatalf("field of %d bytes from %d", len(s), len(b))
			}
		}
		if len(m.ID) > maxID+len("sns:") {
			t.Fatalf("id of %d bytes", len(m.ID))
		}
	})
}

// FuzzDecodeChatSession: a ChatSession answer gives a usable id and queue
// within their bounds, or an error.
func FuzzDecodeChatSession(f *testing.F) {
	goldenSeeds(f)
	f.Add([]byte(`{"id":"a","serverToClientQueue":{"url":"https://q/1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := decodeChatSession(b)
		if err != nil {
			return
		}
		if cs.ID == "" || len(cs.ID) > maxID || cs.Queue == "" || len(cs.Queue) > maxQueueURL || len(cs.Agent) > maxAgent {
			t.Fatalf("chat session out of bounds: %d/%d/%d bytes", len(cs.ID), len(cs.Queue), len(cs.Agent))
		}
		if len(cs.ID)+len(cs.Queue) > len(b) {
			t.Fatalf("fields longer than the answer")
		}
	})
}

// FuzzDecodeCredentials: credentials are usable and bounded, or an error.
func FuzzDecodeCredentials(f *testing.F) {
	goldenSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCredentials(b)
		if err != nil {
			return
		}
		if c.AccessKey == "" || c.SecretKey == "" || len(c.AccessKey) > 256 || len(c.SecretKey) > 1024 || len(c.Region) > 64 {
			t.Fatalf("credentials out of bounds: %d/%d/%d bytes", len(c.AccessKey), len(c.SecretKey), len(c.Region))
		}
	})
}

// FuzzRelaxJSON: the relaxed text is never longer, and valid JSON is left
// as it is.
func FuzzRelaxJSON(f *testing.F) {
	goldenSeeds(f)
	f.Add([]byte(`{"a":"//x",} // c`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, changed := relaxJSON(b)
		if len(out) > len(b) {
			t.Fatalf("relaxed %d bytes into %d", len(b), len(out))
		}
		if json.Valid(b) && (changed || !bytes.Equal(out, b)) {
			t.Fatalf("valid JSON changed: %q -> %q", b, out)
		}
		if !changed && !bytes.Equal(out, b) {
			t.Fatalf("unchanged but different: %q -> %q", b, out)
		}
	})
}

// FuzzParseSession: a stored session is usable within its bounds, and
// stores again as the same value.
func FuzzParseSession(f *testing.F) {
	f.Add([]byte(sessionState{Chat: "c", Queue: "https://sqs.us-east-1.amazonaws.com/1/q",
		Cookies: []cookie{{Name: "JSESSIONID", Value: "v"}}, Seen: []string{"a", "b"}}.marshal()))
	f.Add([]byte(`{"chat":"c","queue":"q","cookies":[{"n":"","v":"x"}],"seen":[""]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseSession(b)
		if err != nil {
			return
		}
		if len(st.Cookies) > maxCookies || len(st.Seen) > maxSeenStored || len(st.Chat) > maxID || len(st.Queue) > maxQueueURL {
			t.Fatalf("session out of bounds: %d cookies, %d ids", len(st.Cookies), len(st.Seen))
		}
		again, err := parseSession(st.marshal())
		if err != nil {
			t.Fatalf("a parsed session does not parse again: %v", err)
		}
		if string(again.marshal()) != string(st.marshal()) {
			t.Fatalf("session changed on a round trip")
		}
		if len(st.marshal()) > maxSession {
			t.Fatalf("session of %d bytes", len(st.marshal()))
		}
	})
}
