package slack

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAddress(t *testing.T) {
	for _, s := range []string{"C0123/1763900000.000100", "D0ANN00001", "G0PRIV0001/1.2"} {
		a, err := parseAddress(s)
		if err != nil || a.String() != s {
			t.Errorf("parseAddress(%q) = %+v, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "+15551230000", "c0123/1", "C0123/1/2", "general/1"} {
		if _, err := parseAddress(s); err == nil {
			t.Errorf("parseAddress(%q) accepted", s)
		}
	}
}

func TestTimestamps(t *testing.T) {
	at := time.Unix(1763900000, 123456000)
	if got := tsOf(at); got != "1763900000.123456" {
		t.Errorf("tsOf = %q", got)
	}
	if got := tsTime("1763900000.000100"); !got.Equal(time.Unix(1763900000, 100000)) {
		t.Errorf("tsTime = %v", got)
	}
	if !tsAfter("1763900000.000200", "1763900000.000100") || tsAfter("1763900000.000100", "1763900000.000100") {
		t.Error("tsAfter is wrong")
	}
	if !tsTime("not a ts").IsZero() {
		t.Error("tsTime of garbage is not zero")
	}
}

// FuzzParseEvent: whatever Slack (or an attacker with the secret) sends,
// decoding neither panics nor invents a message from nothing.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"C1","user":"U1","text":"hi","ts":"1.2","thread_ts":"1.1","files":[{"id":"F1","size":3}]}}`))
	f.Add([]byte(`{"type":"event_callback","event":{"type":"reaction_added"}}`))
	f.Add([]byte(`{"type":"event_callback","event":null}`))
	f.Add([]byte(`{"envelope_id":"e","type":"events_api","payload":{"event":{"type":"message"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var env envelope
		if json.Unmarshal(b, &env) == nil && len(env.Payload) > 0 {
			b = env.Payload
		}
		var cb callback
		if json.Unmarshal(b, &cb) != nil {
			return
		}
		m, err := parseEvent(&cb)
		if err == nil && m != nil {
			if m.Type != "message" {
				t.Errorf("parsed a %q event as a message", m.Type)
			}
			_ = m.address().String()
		}
	})
}
