package cobrowser

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxStanza bounds one stanza (one WebSocket message, or the bytes read over
// TCP between two stanzas). ejabberd's own c2s default is 256 KiB less
// framing; a stanza past this ends the stream.
const maxStanza = 512 << 10

// wsFramer carries an XMPP stream over a WebSocket the way RFC 7395 asks:
// every WebSocket message is one whole top-level element (the <open/>, a
// stanza, <close/>), whatever the size, and only text messages. The XMPP
// library writes a stanza in pieces as its buffer fills (at about 4 KiB),
// and a piece per message breaks the peer; Write therefore keeps the bytes
// until the scanner sees the element end, and sends them as one message.
// Reads hand the messages on as one byte stream: each is a whole element,
// so their concatenation is a well-formed sequence of them. Reads watch no
// context: Close ends them.
type wsFramer struct {
	c            *websocket.Conn
	writeTimeout time.Duration

	wmu sync.Mutex
	out elementFramer

	r io.Reader // the message being read; only the reading goroutine uses it
}

func newWSFramer(c *websocket.Conn, writeTimeout time.Duration) *wsFramer {
	c.SetReadLimit(maxStanza)
	return &wsFramer{c: c, writeTimeout: writeTimeout}
}

var errBinaryFrame = errors.New("xmpp websocket: binary message (RFC 7395 allows text only)")

// Read implements io.Reader over the messages received. The library
// answers the server's WebSocket pings while it waits here.
func (f *wsFramer) Read(p []byte) (int, error) {
	for {
		if f.r == nil {
			typ, r, err := f.c.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.TextMessage {
				return 0, errBinaryFrame
			}
			f.r = r
		}
		n, err := f.r.Read(p)
		if errors.Is(err, io.EOF) {
			f.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write takes XML in any pieces and sends each top-level element, once
// complete, as one text message.
func (f *wsFramer) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.out.write(p, f.send)
}

// elementFramer cuts a byte stream of XML into whole top-level elements.
type elementFramer struct {
	scan    elementScanner
	pending []byte
}

// write feeds p, calling emit with each top-level element as it completes
// (the slice is reused afterwards). Whitespace and an XML declaration
// between elements are dropped.
func (f *elementFramer) write(p []byte, emit func([]byte) error) (int, error) {
	for i, b := range p {
		ev, err := f.scan.feed(b)
		if err != nil {
			return i, err
		}
		switch ev {
		case scanByte:
			f.pending = append(f.pending, b)
			if len(f.pending) > maxStanza {
				return i, fmt.Errorf("xmpp websocket: outgoing element over %d bytes", maxStanza)
			}
		case scanEnd:
			f.pending = append(f.pending, b)
			err := emit(f.pending)
			f.pending = nil // an idle stream holds no buffer
			if err != nil {
				return i, err
			}
		case scanDiscard:
			f.pending = f.pending[:0]
		}
	}
	return len(p), nil
}

func (f *wsFramer) send(msg []byte) error {
	if err := f.c.SetWriteDeadline(time.Now().Add(f.writeTimeout)); err != nil {
		return err
	}
	return f.c.WriteMessage(websocket.TextMessage, msg)
}

// Close drops the WebSocket at once (the caller sent <close/> first when it
// could): a graceful close handshake can block for seconds.
func (f *wsFramer) Close() error { return f.c.NetConn().Close() }

// scanEvent says what one byte of XML output is.
type scanEvent int

const (
	scanSkip    scanEvent = iota // between elements: whitespace
	scanByte                     // part of a top-level element (or of a top-level PI)
	scanEnd                      // the last byte of a top-level element
	scanDiscard                  // the last byte of a top-level PI (an XML declaration): drop it all
)

type scanState int

const (
	stText    scanState = iota // character data (or nothing, between elements)
	stLt                       // after '<'
	stTag                      // in a start tag
	stEndTag                   // in an end tag
	stPI                       // in <?...?>
	stBang                     // after "<!"
	stComment                  // in <!-- -->
	stCDATA                    // in <![CDATA[ ]]>
)

// elementScanner finds where top-level elements end in a stream of XML
// bytes. It knows just enough XML for that: tags, quoted attribute values
// (which may hold '>' and '/'), comments, CDATA, processing instructions.
// Character data outside every element may only be whitespace; a comment,
// CDATA or DOCTYPE there is refused.
type elementScanner struct {
	st    scanState
	depth int
	quote byte // the open quote inside a tag, 0 when none
	slash bool // the last non-space byte of the tag so far was '/'
	tail  [2]byte
	open  []byte // what followed "<!" so far
	topPI bool   // the PI being read is at top level
}

// maxDepth bounds element nesting; a legitimate stanza is a few levels deep.
const maxDepth = 256

var errScan = errors.New("xmpp: malformed XML between or inside stanzas")

// feed takes one byte and says what it is.
func (s *elementScanner) feed(b byte) (scanEvent, error) {
	ev, err := s.step(b)
	s.tail = [2]byte{s.tail[1], b}
	return ev, err
}

func (s *elementScanner) step(b byte) (scanEvent, error) {
	switch s.st {
	case stText:
		if b == '<' {
			s.st = stLt
			return scanByte, nil
		}
		if s.depth == 0 {
			if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
				return scanSkip, nil
			}
			return 0, errScan
		}
	case stLt:
		return s.afterLt(b)
	case stTag:
		return s.inTag(b), nil
	case stEndTag:
		if b == '>' {
			s.st = stText
			s.depth--
			if s.depth == 0 {
				return scanEnd, nil
			}
		}
	case stPI:
		if b == '>' && s.tail[1] == '?' {
			s.st = stText
			if s.topPI {
				return scanDiscard, nil
			}
		}
	case stBang:
		return s.bang(b)
	case stComment:
		if b == '>' && s.tail == [2]byte{'-', '-'} {
			s.st = stText
		}
	case stCDATA:
		if b == '>' && s.tail == [2]byte{']', ']'} {
			s.st = stText
		}
	}
	return scanByte, nil
}

// afterLt handles the byte after '<'.
func (s *elementScanner) afterLt(b byte) (scanEvent, error) {
	switch b {
	case '/':
		if s.depth == 0 {
			return 0, errScan
		}
		s.st = stEndTag
	case '?':
		s.st, s.topPI = stPI, s.depth == 0
	case '!':
		if s.depth == 0 {
			return 0, errScan
		}
		s.st, s.open = stBang, s.open[:0]
	case ' ', '\t', '\r', '\n', '>', '=', '"', '\'', '<':
		return 0, errScan
	default:
		s.depth++
		if s.depth > maxDepth {
			return 0, errScan
		}
		s.st, s.quote, s.slash = stTag, 0, false
	}
	return scanByte, nil
}

// bang reads what follows "<!" inside an element: a comment or CDATA.
func (s *elementScanner) bang(b byte) (scanEvent, error) {
	s.open = append(s.open, b)
	switch string(s.open) {
	case "--":
		s.st = stComment
	case "[CDATA[":
		s.st = stCDATA
	default:
		if !strings.HasPrefix("--", string(s.open)) && !strings.HasPrefix("[CDATA[", string(s.open)) {
			return 0, errScan
		}
	}
	return scanByte, nil
}

func (s *elementScanner) inTag(b byte) scanEvent {
	switch {
	case s.quote != 0:
		if b == s.quote {
			s.quote = 0
		}
	case b == '"' || b == '\'':
		s.quote, s.slash = b, false
	case b == '/':
		s.slash = true
	case b == '>':
		s.st = stText
		if s.slash { // self-closing: this element is whole
			s.depth--
			if s.depth == 0 {
				return scanEnd
			}
		}
	case b == ' ' || b == '\t' || b == '\r' || b == '\n':
	default:
		s.slash = false
	}
	return scanByte
}
