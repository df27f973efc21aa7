package cobrowser

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseStanza: whatever the server sends, the reduced stanza stays
// within the bounds, and no field is longer than the input.
func FuzzParseStanza(f *testing.F) {
	for _, s := range []string{docRegular, docComposing, docClosed, docTransfer, docBlocked,
		`<presence xmlns="jabber:client" from="a@b" type="unavailable"/>`,
		`<iq xmlns="jabber:client" id="p" type="get"><ping xmlns="urn:xmpp:ping"/></iq>`,
		`<message xmlns="jabber:client"><html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml"><p>a&amp;b</p></body></html></message>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := parseStanza(b)
		if err != nil {
			return
		}
		checkInbound(t, in, len(b))
	})
}

// checkInbound fails t when a stanza decoded from n bytes is over a bound.
func checkInbound(t *testing.T, in inbound, n int) {
	t.Helper()
	for _, s := range []string{in.Kind, in.From, in.To, in.ID, in.Type, in.UID, in.Nick, in.Show, in.Status,
		in.ForwardFirst, in.ForwardNick, in.ForwardedText} {
		if len(s) > maxAttr || len(s) > n {
			t.Fatalf("field of %d bytes from %d of input", len(s), n)
		}
	}
	if len(in.Body) > maxBody || len(in.Body) > n {
		t.Fatalf("body of %d bytes from %d", len(in.Body), n)
	}
	if len(in.HTML) > maxBody {
		t.Fatalf("html of %d bytes", len(in.HTML))
	}
	if len(in.States) > maxStates {
		t.Fatalf("%d states", len(in.States))
	}
	if in.Internal && (in.Body != "" || in.HTML != "") {
		t.Fatal("a transfer's body kept")
	}
}

// FuzzStanzaReader: a stream of any bytes, read in pieces of any size, gives
// elements adding up to at most the input, each at most maxStanza, and
// stanzas within the bounds; the reader's buffer stays bounded, and is let
// go once the stream ends.
func FuzzStanzaReader(f *testing.F) {
	for _, s := range []string{docRegular + " " + docClosed + "</stream:stream>",
		`<?xml version='1.0'?><presence from="a@b"/><iq type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>`,
		`<stream:error><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>`,
		`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`, `<a><b>`, "\n<a/>x"} {
		f.Add([]byte(s), 7)
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		chunk = max(1, chunk%(2*readChunk))
		sr := &stanzaReader{r: &chunkReader{s: string(b), n: chunk}, bufs: &readBuffers{}}
		total := 0
		for {
			el, err := sr.next()
			if c := cap(sr.buf); c > 2*(maxStanza+1)+readChunk {
				t.Fatalf("read buffer of %d bytes", c)
			}
			if err != nil {
				break
			}
			total += len(el)
			if len(el) > maxStanza+1 || total > len(b) || el[0] != '<' || el[len(el)-1] != '>' {
				t.Fatalf("element of %d bytes (%d of %d read): %.40q", len(el), total, len(b), el)
			}
			if in, err := decodeElement(el); err == nil {
				checkInbound(t, in, len(el))
			}
		}
		sr.release()
		if sr.bp != nil || sr.buf != nil {
			t.Fatal("the read buffer is still held")
		}
	})
}

// FuzzFramer: the elements framed from any bytes add up to at most the
// input, each one at most maxStanza.
func FuzzFramer(f *testing.F) {
	for _, s := range []string{`<?xml version='1.0'?><a x='>'/><b><![CDATA[<]]></b>`, `<a><!-- x --></a> <c/>`, `</a>`, `<a`} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		var fr elementFramer
		total := 0
		for len(b) > 0 {
			n := min(chunk, len(b))
			if _, err := fr.write(b[:n], func(e []byte) error {
				total += len(e)
				if len(e) > maxStanza+1 || e[0] != '<' || e[len(e)-1] != '>' {
					t.Fatalf("element of %d bytes: %.40q", len(e), e)
				}
				return nil
			}); err != nil {
				return
			}
			b = b[n:]
		}
		if len(fr.pending) > maxStanza+1 {
			t.Fatalf("%d bytes pending", len(fr.pending))
		}
	})
}

// FuzzDecodeREST: campaign, credentials and error bodies of any shape
// decode without panic; the error message is bounded.
func FuzzDecodeREST(f *testing.F) {
	for _, s := range []string{`{"active":true,"available_slots":"∞","survey":{"survey_question":null}}`,
		`{"status":"error","status_code":409,"message":"No Availability"}`, `{"available_slots":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c campaign
		if json.Unmarshal(b, &c) == nil {
			c.open()
			if p, q := surveyOf(&c, time.Time{}); p != nil && (len(q) > 500+maxSurveyOptions*220+20 || len(p.Options) > maxSurveyOptions) {
				t.Fatalf("survey question of %d bytes, %d options", len(q), len(p.Options))
			}
			if c.Slots.N > 1e9 || c.Slots.N < -1e9 {
				t.Fatalf("slots %d", c.Slots.N)
			}
		}
		var cr xmppCredentials
		if json.Unmarshal(b, &cr) == nil {
			if st, err := withCredentials(sessionState{}, &cr); err == nil && len(st.marshal()) > 8*maxAttr+200 {
				t.Fatalf("session of %d bytes", len(st.marshal()))
			}
		}
		if m := errorMessage(b); len(m) > 200 {
			t.Fatalf("message of %d bytes", len(m))
		}
	})
}

// FuzzParseSession: a stored session or send record of any bytes is read
// or refused, never more than its bound.
func FuzzParseSession(f *testing.F) {
	f.Add([]byte(sessionState{ChatSession: "c", User: "u@d", Password: "p", AgentJID: "a@b"}.marshal()))
	f.Add([]byte(`{"chat":"c","parts":2,"sent":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := parseSession(b); err == nil && len(st.marshal()) > 3*len(b)+200 {
			t.Fatalf("session grew from %d to %d bytes", len(b), len(st.marshal()))
		}
		if rec, err := parseSendRecord(b); err == nil && (rec.Sent < 0 || rec.Parts < 0 || len(rec.Chat) > len(b)*3) {
			t.Fatalf("record %+v", rec)
		}
	})
}
