package sio

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// maxClipped is the longest text clip(s, maxErrorText) can return: every
// byte quoted as \xNN, plus the quotes and "...".
const maxClipped = 4*maxErrorText + 5

// maxDecoded bounds an event decoded from frame s: the arguments are parts
// of s, and the name is a decoded JSON string, where each invalid UTF-8 byte
// becomes U+FFFD (3 bytes).
func maxDecoded(s string) int64 { return 3 * int64(len(s)) }

// FuzzDecodeFrame feeds the Engine.IO 3 decoders (engine packet, Socket.IO
// packet with namespace, ack id and binary count, event JSON, error text,
// open packet) one frame. Nothing may panic, and no output is larger than the
// input (errors are clipped), but for an event name's replaced invalid UTF-8
// (maxDecoded).
func FuzzDecodeFrame(f *testing.F) {
	f.Add(`42["messageArrived",{"type":"ChatMessage","text":"hi"}]`)
	f.Add(`0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":5000}`)
	f.Add(`44{"message":"not authorized"}`)
	f.Fuzz(func(t *testing.T, s string) {
		fr := decodeFrame(s)
		if len(fr.payload) > len(s) || len(fr.sio.nsp)+len(fr.sio.id)+len(fr.sio.data) > len(s) {
			t.Fatalf("parts longer than the frame %q: %+v", s, fr.sio)
		}
		if fr.eventOK {
			if !fr.sioOK || fr.sio.typ != '2' {
				t.Fatalf("an event from a packet that is not an event: %+v", fr.sio)
			}
			if eventSize(fr.event) > maxDecoded(s) {
				t.Fatalf("event of %d bytes from a frame of %d", eventSize(fr.event), len(s))
			}
			for _, a := range fr.event.Args {
				if !json.Valid(a) {
					t.Fatalf("argument is not JSON: %q", a)
				}
			}
		}
		if e := errorText(fr.sio.data); len(e) > maxClipped {
			t.Fatalf("error text of %d bytes", len(e))
		}
		if op, err := parseOpen(fr.payload); err == nil {
			if d := op.interval(eio3DefaultPingInterval); d <= 0 || d > maxHeartbeat {
				t.Fatalf("ping interval %v from %q", d, s)
			}
			if d := op.timeout(eio3DefaultPingTimeout); d <= 0 || d > maxHeartbeat {
				t.Fatalf("ping timeout %v from %q", d, s)
			}
		} else if len(err.Error()) > maxClipped+100 {
			t.Fatalf("open error of %d bytes", len(err.Error()))
		}
	})
}

// FuzzClip: the clipped text is bounded, valid UTF-8 and free of control
// characters, whatever the server sent.
func FuzzClip(f *testing.F) {
	f.Add("server says no", 10)
	f.Add("\x1b[31mred\nforged log line", 200)
	f.Add("é日本語", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = min(max(n, 0), 1000)
		c := clip(s, n)
		if len(c) > 4*n+5 {
			t.Fatalf("clip(%q, %d) = %d bytes", s, n, len(c))
		}
		if strings.ContainsAny(c, "\n\r\x1b") || !utf8.ValidString(c) {
			t.Fatalf("clip(%q) = %q is not printable", s, c)
		}
	})
}

// FuzzEIO4Packet decodes one received text frame the way the EIO4 client
// does: the Engine.IO packet; the open packet with its heartbeat and
// maxPayload; the Socket.IO packet, the namespace CONNECT answer and its sid,
// an event, an error text. Nothing may panic, and no output is larger than
// the frame (error texts are clipped), but for an event name's replaced
// invalid UTF-8 (maxDecoded).
func FuzzEIO4Packet(f *testing.F) {
	f.Add(`42["messageArrived",{"type":"ChatMessage","text":"hi"}]`)
	f.Add(`0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
	f.Add(`40{"sid":"Xz2"}`)
	f.Fuzz(func(t *testing.T, s string) {
		fr := decodeFrame(s)
		if fr.engine == '0' {
			if op, err := parseOpen(fr.payload); err == nil {
				for _, d := range []time.Duration{op.interval(eio4DefaultPingInterval), op.timeout(eio4DefaultPingTimeout)} {
					if d <= 0 || d > maxHeartbeat {
						t.Fatalf("heartbeat %v from %q", d, s)
					}
				}
			} else if len(err.Error()) > maxClipped+100 {
				t.Fatalf("open error of %d bytes", len(err.Error()))
			}
		}
		if !fr.sioOK {
			return
		}
		switch fr.sio.typ {
		case '0':
			sid, err := parseConnectAnswer(fr.sio.data)
			// JSON decoding turns each invalid UTF-8 byte into U+FFFD
			// (three bytes), as for event names.
			if err != nil && len(err.Error()) > maxClipped+100 || len(sid) > 3*len(s) {
				t.Fatalf("connect answer of %q: sid %d bytes, error %v", s, len(sid), err)
			}
			if err == nil && sid == "" {
				t.Fatalf("connect answer %q accepted without a sid", s)
			}
		case '2':
			if fr.eventOK && eventSize(fr.event) > maxDecoded(s) {
				t.Fatalf("event of %d bytes from a frame of %d", eventSize(fr.event), len(s))
			}
		case '4':
			if e := errorText(fr.sio.data); len(e) > maxClipped {
				t.Fatalf("error text of %d bytes", len(e))
			}
		}
	})
}
