package cobrowser

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// The namespaces of the stanzas CoBrowser's chat uses.
const (
	nsClient     = "jabber:client"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsPing       = "urn:xmpp:ping"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsXHTMLIM    = "http://jabber.org/protocol/xhtml-im"
	nsXHTML      = "http://www.w3.org/1999/xhtml"
	nsNick       = "http://jabber.org/protocol/nick"
	// nsForward is the transfer's internal element; its body is CoBrowser's
	// own placeholder ("visitor_forward_message"), never for the customer.
	nsForward = "http://cobrowser.io/protocol/chatsession#forward"
)

// Chat states (XEP-0085) plus CoBrowser's own two, which it puts in the same
// namespace: closed (either side ended the chat) and blocked (the agent
// blocked the visitor).
const (
	stateActive    = "active"
	stateComposing = "composing"
	statePaused    = "paused"
	stateInactive  = "inactive"
	stateGone      = "gone"
	stateClosed    = "closed"
	stateBlocked   = "blocked"
)

// ---- what we send -------------------------------------------------------
//
// Every stanza is written whole, as bytes, in one call: over WebSocket each
// becomes one message, and each carries xmlns="jabber:client" because RFC
// 7395 makes every message a document of its own. Every one has an id.

// attr appends ` name="value"` with the value escaped; nothing for "".
func attr(b *bytes.Buffer, name, value string) {
	if value == "" {
		return
	}
	b.WriteString(" " + name + `="`)
	escape(b, value)
	b.WriteByte('"')
}

// escape writes s as XML text. xml.EscapeText also turns characters XML
// cannot carry (controls, broken UTF-8) into U+FFFD, so that a customer's
// stray byte never makes the server close the stream as not well-formed.
func escape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}

func openStanza(b *bytes.Buffer, name, id, to, typ string) {
	b.WriteString("<" + name + ` xmlns="` + nsClient + `"`)
	attr(b, "id", id)
	attr(b, "to", to)
	attr(b, "type", typ)
}

// presenceStanza is a presence of type typ ("" for available) to to ("" for
// the server: our own presence).
func presenceStanza(id, to, typ string) []byte {
	var b bytes.Buffer
	openStanza(&b, "presence", id, to, typ)
	b.WriteString("/>")
	return b.Bytes()
}

// availableStanza tells the agent the visitor is there to chat, as the
// document's third presence does.
func availableStanza(id, to string) []byte {
	var b bytes.Buffer
	openStanza(&b, "presence", id, to, "")
	b.WriteString("><show>chat</show><status>available</status></presence>")
	return b.Bytes()
}

// chatStateStanza is a message holding only a chat state (active, composing,
// paused) or CoBrowser's closed.
func chatStateStanza(id, to, state string) []byte {
	var b bytes.Buffer
	openStanza(&b, "message", id, to, "chat")
	b.WriteString("><" + state + ` xmlns="` + nsChatStates + `"/></message>`)
	return b.Bytes()
}

// chatStanza is a customer line: a chat message with its body and the
// active state, as a chat client sends it.
func chatStanza(id, to, body string) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + 200)
	openStanza(&b, "message", id, to, "chat")
	b.WriteString("><body>")
	escape(&b, body)
	b.WriteString(`</body><active xmlns="` + nsChatStates + `"/></message>`)
	return b.Bytes()
}

// pingStanza asks the server (to, our domain) for a pong (XEP-0199). The
// server reads a stream in order, so its answer also says every stanza
// written before the ping was taken.
func pingStanza(id, to string) []byte {
	var b bytes.Buffer
	openStanza(&b, "iq", id, to, "get")
	b.WriteString(`><ping xmlns="` + nsPing + `"/></iq>`)
	return b.Bytes()
}

// iqResultStanza answers an iq get (a ping) with an empty result.
func iqResultStanza(id, to string) []byte {
	var b bytes.Buffer
	openStanza(&b, "iq", id, to, "result")
	b.WriteString("/>")
	return b.Bytes()
}

// iqErrorStanza refuses an iq we do not serve, as RFC 6120 requires an
// answer to every get and set.
func iqErrorStanza(id, to string) []byte {
	var b bytes.Buffer
	openStanza(&b, "iq", id, to, "error")
	b.WriteString(`><error type="cancel"><service-unavailable xmlns="` + nsStanzas + `"/></error></iq>`)
	return b.Bytes()
}

// closeWS and closeTCP end our side of the stream.
var (
	closeWS  = []byte(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
	closeTCP = []byte(`</stream:stream>`)
)

// ---- what we read -------------------------------------------------------

// inbound is one stanza from the server, reduced to what the chat uses.
type inbound struct {
	Kind string // "message", "presence", "iq"; other elements are not stanzas
	From string
	To   string
	ID   string
	Type string

	// message
	UID    string // CoBrowser's uid attribute: the line's id
	Body   string
	HTML   string   // XHTML-IM body, inner XML, when sent
	Nick   string   // XEP-0172 nick
	States []string // chat-state elements, CoBrowser's closed and blocked included
	// Internal is set when the message carries CoBrowser's internal element
	// (a transfer): its body is never relayed.
	Internal      bool
	ForwardFirst  string // the new agent's first name, from the transfer
	ForwardNick   string // and nickname
	ForwardedText string // chat_forwarding, for the log

	// presence
	Show   string
	Status string // the <status> child, or CoBrowser's status attribute

	// iq
	Ping bool // a get holding urn:xmpp:ping
}

// has reports whether the message carries chat state st.
func (in *inbound) has(st string) bool {
	for _, s := range in.States {
		if s == st {
			return true
		}
	}
	return false
}

// Bounds on what a stanza's fields may hold, whatever the server sends.
const (
	maxAttr     = 3072
	maxBody     = 64 << 10 // the core cuts agent lines further
	maxNesting  = 64       // deeper elements are read and ignored
	maxStates   = 8
	maxStateLen = 32
)

var errNotStanza = errors.New("xmpp: not a stanza")

// parseStanza decodes one stanza from b: the fuzz target's way in, and the
// golden tests'.
func parseStanza(b []byte) (inbound, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	start, err := firstStart(d)
	if err != nil {
		return inbound{}, err
	}
	return decodeStanza(d, start)
}

// firstStart returns the first start element d reads; errNotStanza when
// the input ends before one.
func firstStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return xml.StartElement{}, errNotStanza
			}
			return xml.StartElement{}, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return start, nil
		}
	}
}

// decodeStanza reads the element that start opens from r, to its end, and
// reduces it to an inbound. It walks the tokens itself rather than
// unmarshalling into a tree: memory stays bounded by the fields kept,
// however deep or long the element. An element that is not a stanza is
// read whole and reported as errNotStanza; any other error leaves the
// stream at an unknown place.
func decodeStanza(r xml.TokenReader, start xml.StartElement) (inbound, error) {
	in := inbound{Kind: start.Name.Local}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "from":
			in.From = clip(a.Value, maxAttr)
		case "to":
			in.To = clip(a.Value, maxAttr)
		case "id":
			in.ID = clip(a.Value, maxAttr)
		case "type":
			in.Type = clip(a.Value, maxAttr)
		case "uid":
			in.UID = clip(a.Value, maxAttr)
		case "status":
			in.Status = clip(a.Value, maxAttr)
		}
	}
	w := walker{in: &in}
	if err := w.walk(r); err != nil {
		return inbound{}, err
	}
	if in.Kind == "message" && in.Internal {
		in.Body, in.HTML = "", "" // CoBrowser's own text, never for the customer
	}
	switch {
	case start.Name.Space != nsClient && start.Name.Space != "":
		return in, errNotStanza
	case in.Kind == "message", in.Kind == "presence", in.Kind == "iq":
		return in, nil
	}
	return in, errNotStanza
}

// walker collects the fields of one stanza from its tokens.
type walker struct {
	in    *inbound
	path  []xml.Name // open elements inside the stanza, at most maxNesting
	depth int        // open elements inside the stanza, all of them
	text  *strings.Builder
	at0   int // the path length of the element text is collected from
	limit int
	html  *htmlWriter // set while inside an XHTML-IM body
	into  *string     // where text goes when its element ends
}

func (w *walker) walk(r xml.TokenReader) error {
	for {
		tok, err := r.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			w.depth++
			if w.depth <= maxNesting {
				w.path = append(w.path, t.Name)
				w.start(t)
			}
		case xml.EndElement:
			if w.depth == 0 {
				return nil // the stanza's own end
			}
			if w.depth <= maxNesting {
				w.end()
				w.path = w.path[:len(w.path)-1]
			}
			w.depth--
		case xml.CharData:
			w.chars(t)
		}
	}
}

// at reports whether the open elements are exactly names (local names;
// namespaces are checked where they matter).
func (w *walker) at(names ...string) bool {
	if len(w.path) != len(names) {
		return false
	}
	for i, n := range names {
		if w.path[i].Local != n {
			return false
		}
	}
	return true
}

func (w *walker) collect(into *string, limit int) {
	w.text, w.into, w.limit, w.at0 = &strings.Builder{}, into, limit, len(w.path)
}

func (w *walker) start(t xml.StartElement) {
	in := w.in
	if w.html != nil {
		w.html.start(t)
		return
	}
	switch in.Kind {
	case "message":
		w.startMessage(t)
	case "presence":
		switch {
		case w.at("show"):
			w.collect(&in.Show, maxAttr)
		case w.at("status"):
			w.collect(&in.Status, maxAttr)
		}
	case "iq":
		if len(w.path) == 1 && t.Name.Local == "ping" && t.Name.Space == nsPing && in.Type == "get" {
			in.Ping = true
		}
	}
}

func (w *walker) startMessage(t xml.StartElement) {
	in := w.in
	switch {
	case len(w.path) == 1 && t.Name.Space == nsChatStates:
		if len(in.States) < maxStates {
			in.States = append(in.States, clip(t.Name.Local, maxStateLen))
		}
	case w.at("body") && (t.Name.Space == nsClient || t.Name.Space == "") && in.Body == "":
		w.collect(&in.Body, maxBody)
	case w.at("nick") && t.Name.Space == nsNick:
		w.collect(&in.Nick, maxAttr)
	case w.at("internal"):
		in.Internal = true
	case w.at("internal", "chat_forwarding") && w.path[0].Space == nsForward:
		w.collect(&in.ForwardedText, maxAttr)
	case w.at("internal", "agent", "firstname") && w.path[0].Space == nsForward:
		w.collect(&in.ForwardFirst, maxAttr)
	case w.at("internal", "agent", "nickname") && w.path[0].Space == nsForward:
		w.collect(&in.ForwardNick, maxAttr)
	case w.at("html", "body") && w.path[0].Space == nsXHTMLIM && t.Name.Space == nsXHTML && in.HTML == "":
		w.html = &htmlWriter{depth: len(w.path)}
	}
}

func (w *walker) end() {
	if w.html != nil {
		if len(w.path) == w.html.depth {
			w.in.HTML = strings.TrimSpace(w.html.b.String())
			w.html = nil
			return
		}
		w.html.end(w.path[len(w.path)-1])
		return
	}
	if w.text != nil && len(w.path) == w.at0 {
		s := w.text.String()
		if w.into != &w.in.Body {
			s = strings.TrimSpace(s)
		}
		*w.into = s
		w.text, w.into = nil, nil
	}
}

func (w *walker) chars(t xml.CharData) {
	switch {
	case w.html != nil:
		w.html.text(t)
	case w.text != nil:
		room := w.limit - w.text.Len()
		if room <= 0 {
			return
		}
		w.text.WriteString(clip(string(t), room))
	}
}

// htmlWriter writes the XHTML-IM body back out as HTML, bounded: tags with
// their local names and attributes, text escaped. The channel renders it.
type htmlWriter struct {
	b     bytes.Buffer
	depth int // the path length of the body element
	full  bool
}

func (h *htmlWriter) room(n int) bool {
	if h.full || h.b.Len()+n > maxBody {
		h.full = true
		return false
	}
	return true
}

func (h *htmlWriter) start(t xml.StartElement) {
	if !h.room(len(t.Name.Local) + 2) {
		return
	}
	h.b.WriteString("<" + t.Name.Local)
	for _, a := range t.Attr {
		if a.Name.Space != "" || a.Name.Local == "xmlns" || !h.room(len(a.Name.Local)+len(a.Value)+4) {
			continue
		}
		attr(&h.b, a.Name.Local, a.Value)
	}
	h.b.WriteByte('>')
}

func (h *htmlWriter) end(n xml.Name) {
	if h.room(len(n.Local) + 3) {
		h.b.WriteString("</" + n.Local + ">")
	}
}

func (h *htmlWriter) text(t xml.CharData) {
	var e bytes.Buffer
	escape(&e, string(t))
	if h.room(e.Len()) {
		h.b.Write(e.Bytes())
	}
}
