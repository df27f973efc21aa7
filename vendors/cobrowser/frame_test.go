package cobrowser

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	gorilla "github.com/gorilla/websocket"
)

// frames runs the element framer over the pieces and returns the elements.
func frames(t *testing.T, pieces ...string) ([]string, error) {
	t.Helper()
	var f elementFramer
	var out []string
	for _, p := range pieces {
		if _, err := f.write([]byte(p), func(b []byte) error { out = append(out, string(b)); return nil }); err != nil {
			return out, err
		}
	}
	return out, nil
}

func TestFramerElements(t *testing.T) {
	big := `<message xmlns="jabber:client" id="x"><body>` + strings.Repeat("é", 5000) + `</body></message>`
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"open self-closed", `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" version='1.0' to='xmpp.test'/>`,
			[]string{`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" version='1.0' to='xmpp.test'/>`}},
		{"declaration dropped", `<?xml version='1.0'?><a/>`, []string{`<a/>`}},
		{"whitespace between", " \n<a/>\t<b></b>\r\n", []string{`<a/>`, `<b></b>`}},
		{"quotes hold > and /", `<a x="1>2" y='/>'><b z="/"/></a><c/>`, []string{`<a x="1>2" y='/>'><b z="/"/></a>`, `<c/>`}},
		{"nested same names", `<a><a><a/></a></a><a/>`, []string{`<a><a><a/></a></a>`, `<a/>`}},
		{"comment and cdata inside", `<a><!-- </a> --><![CDATA[</a>]]></a>`, []string{`<a><!-- </a> --><![CDATA[</a>]]></a>`}},
		{"pi inside kept", `<a><?p </a>?></a>`, []string{`<a><?p </a>?></a>`}},
		{"over 4 KiB", big, []string{big}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, and one byte at a time: the library writes in any pieces.
			whole, err := frames(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, whole); diff != "" {
				t.Errorf("whole (-want +got):\n%s", diff)
			}
			var pieces []string
			for i := range len(tc.in) {
				pieces = append(pieces, tc.in[i:i+1])
			}
			bytewise, err := frames(t, pieces...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, bytewise); diff != "" {
				t.Errorf("byte by byte (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFramerRefuses(t *testing.T) {
	for _, in := range []string{
		"text<a/>", "</a>", "<!-- c --><a/>", "<!DOCTYPE a><a/>", "< a/>", "<a><!x></a>",
		strings.Repeat("<a>", maxDepth+1),
	} {
		if _, err := frames(t, in); err == nil {
			t.Errorf("%.40q: no error", in)
		}
	}
	if _, err := frames(t, "<a>", strings.Repeat("x", maxStanza)); err == nil {
		t.Error("an element over maxStanza: no error")
	}
}

// TestWebSocketOneStanzaPerMessage writes a stanza of 5,000 characters in
// 4 KiB pieces, as the XMPP library's buffer does, and checks the server
// gets it as one WebSocket message (RFC 7395), and that messages read back
// make one byte stream.
func TestWebSocketOneStanzaPerMessage(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"xmpp"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for range 2 {
			typ, b, err := c.Read(r.Context())
			if err != nil || typ != websocket.MessageText {
				return
			}
			got <- string(b)
		}
		for _, m := range []string{"<a>", "x</a>", "<b/>"} { // split on purpose: reads join messages
			if err := c.Write(r.Context(), websocket.MessageText, []byte(m)); err != nil {
				return
			}
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := gorilla.Dialer{Subprotocols: []string{"xmpp"}}
	c, _, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newWSFramer(c, time.Second)
	defer f.Close()
	line := strings.Repeat("ü", 5000)
	stanza := string(chatStanza("connectord-1", "agent@internal.xmpp.test", line))
	for b := []byte(stanza); len(b) > 0; {
		n := min(4096, len(b))
		if _, err := f.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if _, err := f.Write([]byte(`<presence xmlns="jabber:client"/>`)); err != nil {
		t.Fatal(err)
	}
	if first := <-got; first != stanza {
		t.Errorf("first message is %d bytes, want the whole %d-byte stanza", len(first), len(stanza))
	}
	if second := <-got; second != `<presence xmlns="jabber:client"/>` {
		t.Errorf("second message %q", second)
	}
	buf := make([]byte, len("<a>x</a><b/>"))
	if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "<a>x</a><b/>" {
		t.Errorf("read %q, %v", buf, err)
	}
}
