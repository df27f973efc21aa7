package centiontest

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame feeds client frames through the decoders the server runs
// on them. Nothing panics, and no decoded string is longer than three times
// its input (JSON decoding only shrinks text, except that each invalid
// UTF-8 byte becomes the 3-byte U+FFFD).
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"register","data":{"area":2,"name":"John","email":"j@x","phone":"","message":"hi","externalData":"","baseURL":"https://x/s/demo","offlineChat":false,"trackClientUrl":true},"id":1}`,
		`{"type":"resume","data":{"href":"","trackClientUrl":true},"id":1}`,
		`{"type":"chat message","data":{"id":"msg_1_2_3","message":"hello","mcount":3},"id":3}`,
		`{"type":"chat message","data":{"id":"c-1","message":"\u0001JSON{\"event\":\"FILE_UPLOAD\",\"fileName\":\"a\"}","mcount":"1"},"id":3}`,
		`{"type":"add attachment","data":{"area":"2","file":{"value":"a"},"sessionSecret":"s"},"id":5}`,
		`{"type":"close chat","id":1}`,
		`{"type":""}`, `[]`, `null`, "{\"type\":\"x\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		bound := 3 * len(p)
		fr, err := decodeFrame(p)
		if err != nil {
			return
		}
		if fr.Type == "" || len(fr.Type)+len(fr.Data)+len(fr.ID) > bound {
			t.Fatalf("frame %q decoded to %d+%d+%d bytes", p, len(fr.Type), len(fr.Data), len(fr.ID))
		}
		var r registerData
		if json.Unmarshal(fr.Data, &r) == nil {
			if n := len(r.Name) + len(r.Email) + len(r.Phone) + len(r.Message) + len(r.BaseURL) + len(r.ExternalData); n > bound {
				t.Fatalf("register data of %d bytes from %d", n, len(p))
			}
			_ = registerOf(r)
		}
		var m messageData
		if json.Unmarshal(fr.Data, &m) == nil {
			if len(m.ID)+len(m.Message) > bound {
				t.Fatalf("message data of %d bytes from %d", len(m.ID)+len(m.Message), len(p))
			}
			if n, ok := ParseFileNotice(m.Message); ok && len(n.FileName)+len(n.FileDownload)+len(n.SizeHuman)+len(n.Event) > 3*len(m.Message) {
				t.Fatalf("file notice larger than its text: %q", m.Message)
			}
		}
		var a attachmentData
		if json.Unmarshal(fr.Data, &a) == nil && len(a.File)+len(a.SessionSecret) > bound {
			t.Fatalf("attachment data of %d bytes from %d", len(a.File)+len(a.SessionSecret), len(p))
		}
	})
}
