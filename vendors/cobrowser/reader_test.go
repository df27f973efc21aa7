package cobrowser

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// chunkReader hands its input out at most n bytes per read, then err (EOF
// when nil). check, when set, sees each read's buffer first.
type chunkReader struct {
	s     string
	n     int
	err   error
	check func(p []byte)
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.check != nil {
		r.check(p)
	}
	if r.s == "" {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[n:]
	return n, nil
}

// elements reads every element of in, n bytes per read, and the error that
// ended the reading.
func elements(in string, n int) ([]string, error) {
	sr := &stanzaReader{r: &chunkReader{s: in, n: n}, bufs: &readBuffers{}}
	defer sr.release()
	var out []string
	for {
		el, err := sr.next()
		if err != nil {
			return out, err
		}
		out = append(out, string(el))
	}
}

func TestStanzaReaderElements(t *testing.T) {
	big := `<message><body>` + strings.Repeat("é", 10000) + `</body></message>`
	for _, tc := range []struct {
		name string
		in   string
		want []string
		end  error
	}{
		{"two stanzas, keepalives between", "<a/> \n<b x='>'>t</b>\t", []string{"<a/>", "<b x='>'>t</b>"}, io.EOF},
		{"the stream's end", `<a/></stream:stream>`, []string{"<a/>"}, errServerClosed},
		{"a declaration dropped", `<?xml version='1.0'?><a/>`, []string{"<a/>"}, io.EOF},
		{"longer than a read buffer", big + "<c/>", []string{big, "<c/>"}, io.EOF},
		{"text between stanzas", "<a/>x", []string{"<a/>"}, errScan},
		{"cut off in a stanza", "<a><b/>", nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 3, readChunk, len(tc.in)} {
				got, err := elements(tc.in, n)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%d bytes a read (-want +got):\n%s", n, diff)
				}
				if !errors.Is(err, tc.end) {
					t.Errorf("%d bytes a read: ended with %v, want %v", n, err, tc.end)
				}
			}
		})
	}
}

// A stanza over maxStanza ends the reading with errStanzaTooLarge, before
// more than that is held.
func TestStanzaReaderBound(t *testing.T) {
	in := "<message><body>" + strings.Repeat("x", maxStanza) + "</body></message>"
	sr := &stanzaReader{r: &chunkReader{s: in, n: 1 << 20}, bufs: &readBuffers{}}
	if _, err := sr.next(); !errors.Is(err, errStanzaTooLarge) {
		t.Fatalf("got %v, want errStanzaTooLarge", err)
	}
	if c := cap(sr.buf); c > 2*(maxStanza+1) {
		t.Errorf("the reader's buffer grew to %d bytes", c)
	}
	sr.release()
}

// Between stanzas the reader holds no buffer and waits for one byte at a
// time: an idle stream costs a byte, not a read buffer.
func TestStanzaReaderIdleHoldsNoBuffer(t *testing.T) {
	sr := &stanzaReader{bufs: &readBuffers{}}
	var idleReads, bufferReads int
	cr := &chunkReader{s: "<a><b/></a> <c/>\n<d>x</d>", n: 5, check: func(p []byte) {
		switch {
		case sr.bp == nil && len(p) == 1:
			idleReads++
		case sr.bp != nil:
			bufferReads++
		default:
			t.Errorf("a read of %d bytes with no stanza pending", len(p))
		}
	}}
	sr.r = cr
	for range 3 {
		if _, err := sr.next(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sr.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last stanza: %v", err)
	}
	if sr.bp != nil {
		t.Error("the buffer is still held after the stream ended")
	}
	if idleReads < 3 || bufferReads == 0 {
		t.Errorf("%d idle reads, %d into a buffer", idleReads, bufferReads)
	}
}

func TestDecodeElementStreamLevel(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"websocket close", `<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`, errServerClosed},
		{"websocket open", `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="x"/>`, errRestart},
		{"features", `<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>`, errNotStanza},
		{"other namespace", `<a xmlns="urn:x"/>`, errNotStanza},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeElement([]byte(tc.in)); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	for _, in := range []string{
		// over TCP the prefix is the stream header's; over WebSocket it is declared
		`<stream:error><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">Replaced by new connection</text></stream:error>`,
		`<stream:error xmlns:stream="http://etherx.jabber.org/streams"><text xmlns="urn:ietf:params:xml:ns:xmpp-streams">Replaced by new connection</text><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>`,
	} {
		_, err := decodeElement([]byte(in))
		var se *streamError
		if !errors.As(err, &se) || se.Condition != "conflict" || se.Text != "Replaced by new connection" {
			t.Errorf("%.40s: got %v", in, err)
		}
	}
	in, err := decodeElement([]byte(`<message from="a@b" id="1"><body>hi</body></message>`))
	if err != nil || in.Kind != "message" || in.Body != "hi" || in.From != "a@b" {
		t.Errorf("a stanza without xmlns (TCP: the stream's default): %+v, %v", in, err)
	}
}
