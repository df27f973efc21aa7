package cobrowsertest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// XMPP namespaces the kit speaks.
const (
	nsClient     = "jabber:client"
	nsStream     = "http://etherx.jabber.org/streams"
	nsFraming    = "urn:ietf:params:xml:ns:xmpp-framing"
	nsTLS        = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL       = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind       = "urn:ietf:params:xml:ns:xmpp-bind"
	nsPing       = "urn:xmpp:ping"
	nsRoster     = "jabber:iq:roster"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsNick       = "http://jabber.org/protocol/nick"
	nsForward    = "http://cobrowser.io/protocol/chatsession#forward"
)

// maxElement bounds one element read from the server (a stanza or a
// WebSocket message): larger than ejabberd's max_stanza_size default.
const maxElement = 1 << 20

// node is a parsed XML element, generic enough for any stanza.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n *node) attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child is the first child element with this local name and namespace
// ("" matches any namespace).
func (n *node) child(space, local string) *node {
	for i := range n.Nodes {
		c := &n.Nodes[i]
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// String renders the element compactly, for logs and recordings.
func (n *node) String() string {
	var b strings.Builder
	n.render(&b, "")
	return b.String()
}

func (n *node) render(b *strings.Builder, parentNS string) {
	b.WriteString("<" + n.XMLName.Local)
	if n.XMLName.Space != parentNS && n.XMLName.Space != "" {
		fmt.Fprintf(b, ` xmlns="%s"`, esc(n.XMLName.Space))
	}
	for _, a := range n.Attrs {
		if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" || a.Name.Space != "" {
			continue
		}
		fmt.Fprintf(b, ` %s="%s"`, a.Name.Local, esc(a.Value))
	}
	if len(n.Nodes) == 0 && n.Text == "" {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	if len(n.Nodes) == 0 {
		b.WriteString(esc(n.Text))
	}
	for i := range n.Nodes {
		n.Nodes[i].render(b, n.XMLName.Space)
	}
	b.WriteString("</" + n.XMLName.Local + ">")
}

// esc escapes text for an attribute value or character data.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// transport carries XML elements: a TCP stream (with STARTTLS), or
// WebSocket messages framed as RFC 7395 says (one element per message).
type transport interface {
	open(ctx context.Context, domain string) error // (re)start the stream
	read(ctx context.Context) (*node, error)       // next top-level element
	write(ctx context.Context, element string) error
	startTLS(ctx context.Context, cfg *tls.Config) error
	closeStream(ctx context.Context) error // polite end of the stream
	close() error
}

type tcpTransport struct {
	conn net.Conn
	dec  *xml.Decoder
}

func (t *tcpTransport) open(ctx context.Context, domain string) error {
	header := fmt.Sprintf(`<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s' version='1.0'>`,
		nsClient, nsStream, esc(domain))
	if err := t.write(ctx, header); err != nil {
		return err
	}
	// A new stream is a new XML document: a new decoder. The server says
	// nothing between <proceed/> or <success/> and our header, so the old
	// decoder holds no unread bytes.
	t.dec = xml.NewDecoder(t.conn)
	for {
		tok, err := t.dec.Token()
		if err != nil {
			return fmt.Errorf("reading the stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "stream" || se.Name.Space != nsStream {
				return fmt.Errorf("expected a stream header, got <%s xmlns=%q>", se.Name.Local, se.Name.Space)
			}
			return nil
		}
	}
}

func (t *tcpTransport) read(ctx context.Context) (*node, error) {
	stop := context.AfterFunc(ctx, func() { t.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		tok, err := t.dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var n node
			if err := t.dec.DecodeElement(&n, &tok); err != nil {
				return nil, err
			}
			return &n, nil
		case xml.EndElement:
			return nil, io.EOF // </stream:stream>
		}
	}
}

func (t *tcpTransport) write(ctx context.Context, element string) error {
	if dl, ok := ctx.Deadline(); ok {
		t.conn.SetWriteDeadline(dl)
		defer t.conn.SetWriteDeadline(time.Time{})
	}
	_, err := io.WriteString(t.conn, element)
	return err
}

func (t *tcpTransport) startTLS(ctx context.Context, cfg *tls.Config) error {
	tc := tls.Client(t.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	t.conn = tc
	return nil
}

func (t *tcpTransport) closeStream(ctx context.Context) error {
	return t.write(ctx, "</stream:stream>")
}

func (t *tcpTransport) close() error { return t.conn.Close() }

type wsTransport struct {
	conn *websocket.Conn
}

func (t *wsTransport) open(ctx context.Context, domain string) error {
	if err := t.write(ctx, fmt.Sprintf(`<open xmlns="%s" to="%s" version="1.0"/>`, nsFraming, esc(domain))); err != nil {
		return err
	}
	n, err := t.read(ctx)
	if err != nil {
		return fmt.Errorf("reading <open/>: %w", err)
	}
	if n.XMLName.Local != "open" || n.XMLName.Space != nsFraming {
		return fmt.Errorf("expected <open/>, got %s", n)
	}
	return nil
}

func (t *wsTransport) read(ctx context.Context) (*node, error) {
	typ, data, err := t.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, errors.New("binary WebSocket message: RFC 7395 allows only text")
	}
	n, err := parseElement(data)
	if err != nil {
		return nil, fmt.Errorf("WebSocket message %.200q: %w", data, err)
	}
	if n.XMLName.Local == "close" && n.XMLName.Space == nsFraming {
		return nil, io.EOF
	}
	return n, nil
}

// parseElement decodes one WebSocket message: a single XML element.
func parseElement(data []byte) (*node, error) {
	var n node
	if err := xml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// size is the number of bytes of names, attribute values and text in the
// tree (namespace URIs excepted: one declaration can name many elements).
// It never exceeds the size of the XML the tree was decoded from.
func (n *node) size() int {
	total := len(n.XMLName.Local) + len(n.Text)
	for _, a := range n.Attrs {
		total += len(a.Name.Local) + len(a.Value)
	}
	for i := range n.Nodes {
		total += n.Nodes[i].size()
	}
	return total
}

func (t *wsTransport) write(ctx context.Context, element string) error {
	return t.conn.Write(ctx, websocket.MessageText, []byte(element))
}

func (t *wsTransport) startTLS(context.Context, *tls.Config) error {
	return errors.New("STARTTLS over a WebSocket: not in RFC 7395")
}

func (t *wsTransport) closeStream(ctx context.Context) error {
	return t.write(ctx, fmt.Sprintf(`<close xmlns="%s"/>`, nsFraming))
}

func (t *wsTransport) close() error { return t.conn.CloseNow() }

// login says how to reach and authenticate: TCPAddr (STARTTLS, required)
// or WSURL (ws:// or wss://).
type login struct {
	TCPAddr  string
	WSURL    string
	TLS      *tls.Config // for STARTTLS and wss://
	Domain   string
	User     string // local part
	Password string
	Resource string
}

// xmppConn is a minimal XMPP client: enough to play CoBrowser's agent and,
// in the kit's own tests, a visitor. It answers the server's pings itself.
type xmppConn struct {
	tr         transport
	JID        string   // bound full JID
	Mechanisms []string // SASL mechanisms the server offered
	wmu        sync.Mutex
	closeOnce  sync.Once
}

// dial connects, negotiates STARTTLS (TCP), authenticates with SASL PLAIN
// and binds the resource.
func dial(ctx context.Context, l login) (*xmppConn, error) {
	var tr transport
	if l.WSURL != "" {
		ws, _, err := websocket.Dial(ctx, l.WSURL, &websocket.DialOptions{
			Subprotocols: []string{"xmpp"},
			HTTPClient:   wsHTTPClient(l.TLS),
		})
		if err != nil {
			return nil, fmt.Errorf("WebSocket %s: %w", l.WSURL, err)
		}
		if ws.Subprotocol() != "xmpp" {
			ws.CloseNow()
			return nil, fmt.Errorf("WebSocket %s: server chose subprotocol %q, not xmpp", l.WSURL, ws.Subprotocol())
		}
		ws.SetReadLimit(maxElement)
		tr = &wsTransport{conn: ws}
	} else {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", l.TCPAddr)
		if err != nil {
			return nil, fmt.Errorf("XMPP %s: %w", l.TCPAddr, err)
		}
		tr = &tcpTransport{conn: conn}
	}
	c := &xmppConn{tr: tr}
	if err := c.negotiate(ctx, l); err != nil {
		tr.close()
		return nil, fmt.Errorf("XMPP login of %s@%s: %w", l.User, l.Domain, err)
	}
	return c, nil
}

// wsHTTPClient trusts cfg's roots for wss:// (nil: the system's).
func wsHTTPClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func (c *xmppConn) negotiate(ctx context.Context, l login) error {
	features, err := c.restart(ctx, l.Domain)
	if err != nil {
		return err
	}
	if _, isTCP := c.tr.(*tcpTransport); isTCP {
		if features.child(nsTLS, "starttls") == nil {
			return fmt.Errorf("no STARTTLS offered: %s", features)
		}
		if err := c.exchange(ctx, fmt.Sprintf(`<starttls xmlns="%s"/>`, nsTLS), "proceed"); err != nil {
			return err
		}
		if err := c.tr.startTLS(ctx, l.TLS); err != nil {
			return err
		}
		if features, err = c.restart(ctx, l.Domain); err != nil {
			return err
		}
	}
	if mechs := features.child(nsSASL, "mechanisms"); mechs != nil {
		for _, m := range mechs.Nodes {
			c.Mechanisms = append(c.Mechanisms, m.Text)
		}
	}
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + l.User + "\x00" + l.Password))
	if err := c.exchange(ctx, fmt.Sprintf(`<auth xmlns="%s" mechanism="PLAIN">%s</auth>`, nsSASL, creds), "success"); err != nil {
		return err
	}
	if _, err := c.restart(ctx, l.Domain); err != nil {
		return err
	}
	bind := fmt.Sprintf(`<iq type="set" id="bind"><bind xmlns="%s"><resource>%s</resource></bind></iq>`, nsBind, esc(l.Resource))
	if err := c.tr.write(ctx, bind); err != nil {
		return err
	}
	res, err := c.tr.read(ctx)
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	b := res.child(nsBind, "bind")
	if res.attr("type") != "result" || b == nil || b.child("", "jid") == nil {
		return fmt.Errorf("bind refused: %s", res)
	}
	c.JID = b.child("", "jid").Text
	return nil
}

// restart opens a stream and returns its features.
func (c *xmppConn) restart(ctx context.Context, domain string) (*node, error) {
	if err := c.tr.open(ctx, domain); err != nil {
		return nil, err
	}
	f, err := c.tr.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading stream features: %w", err)
	}
	if f.XMLName.Local != "features" {
		return nil, fmt.Errorf("expected stream features, got %s", f)
	}
	return f, nil
}

// exchange sends one element and wants an answer named want.
func (c *xmppConn) exchange(ctx context.Context, element, want string) error {
	if err := c.tr.write(ctx, element); err != nil {
		return err
	}
	n, err := c.tr.read(ctx)
	if err != nil {
		return err
	}
	if n.XMLName.Local != want {
		return fmt.Errorf("expected <%s/>, got %s", want, n)
	}
	return nil
}

// Send writes one stanza (serialised: one WebSocket message each).
func (c *xmppConn) Send(stanza string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.tr.write(ctx, stanza)
}

// Run reads stanzas until the stream ends or ctx is done, answers the
// server's and peers' pings, and hands every other stanza to handle (on
// this goroutine: handle must not block for long).
func (c *xmppConn) Run(ctx context.Context, handle func(*node)) error {
	for {
		n, err := c.tr.read(ctx)
		if err != nil {
			return err
		}
		if n.XMLName.Local == "iq" && (n.attr("type") == "get" || n.attr("type") == "set") {
			// Answered here, not in handle: a pong must not wait behind a test.
			if err := c.Send(c.answer(n)); err != nil {
				return err
			}
			if n.child(nsPing, "ping") != nil {
				continue
			}
		}
		handle(n)
	}
}

// answer is the reply every request needs: a result for pings and roster
// pushes, service-unavailable for the rest (RFC 6120 8.4).
func (c *xmppConn) answer(iq *node) string {
	to := ""
	if from := iq.attr("from"); from != "" {
		to = fmt.Sprintf(` to="%s"`, esc(from))
	}
	if iq.child(nsPing, "ping") != nil || iq.child(nsRoster, "query") != nil {
		return fmt.Sprintf(`<iq type="result" id="%s"%s/>`, esc(iq.attr("id")), to)
	}
	return fmt.Sprintf(`<iq type="error" id="%s"%s><error type="cancel"><service-unavailable xmlns="%s"/></error></iq>`,
		esc(iq.attr("id")), to, nsStanzas)
}

// Close ends the stream politely, then the connection.
func (c *xmppConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.wmu.Lock()
		c.tr.closeStream(ctx)
		c.wmu.Unlock()
		err = c.tr.close()
	})
	return err
}
