package cobrowser

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// After the login the stream is read without the XMPP library: its session
// keeps an XML decoder and encoder with a 4 KiB buffer each for its whole
// life, and its reader idles deep in them. stanzaReader cuts the transport's
// bytes into top-level elements with frame.go's scanner, in a buffer
// borrowed from the vendor's pool only while an element is being read; an
// idle stream waits for its next byte in a one-byte array. Each element is
// then decoded on its own (stanza.go).

// readChunk is the size of a borrowed read buffer; one grows (doubling) for
// a longer element, up to maxStanza, and is kept for reuse only up to
// maxPooledRead.
const (
	readChunk     = 4 << 10
	maxPooledRead = 64 << 10
)

// readBuffers lends the read buffers of every stream of one vendor.
type readBuffers struct{ pool sync.Pool }

func (p *readBuffers) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, readChunk)
	return &b
}

func (p *readBuffers) put(b *[]byte) {
	if cap(*b) > maxPooledRead {
		return
	}
	*b = (*b)[:0]
	p.pool.Put(b)
}

// Errors of the stream's end, as the reader reports them.
var (
	errServerClosed = errors.New("the server closed the XMPP stream")
	errRestart      = errors.New("xmpp: unexpected stream restart")
)

// stanzaReader reads the top-level elements of a logged-in stream from r:
// the concatenated messages of a WebSocket (each one whole element) or the
// bytes of a TCP stream inside its <stream:stream>. Whitespace between
// elements is skipped; the stream's end tag is errServerClosed; an element
// over maxStanza is errStanzaTooLarge, and anything else malformed between
// elements errScan: the stream is then unusable. One goroutine uses it.
type stanzaReader struct {
	r    io.Reader
	bufs *readBuffers

	scan elementScanner
	one  [1]byte // where an idle stream's next byte arrives
	err  error   // the transport's error, returned once what came with it was read

	// While an element is being read: buf holds the bytes read, of which
	// [start:scanned] are the element's so far and [scanned:] not scanned yet.
	bp      *[]byte
	buf     []byte
	start   int
	scanned int
}

// next returns the next top-level element; its bytes are valid until the
// next call or release.
func (sr *stanzaReader) next() ([]byte, error) {
	for {
		if el, err := sr.scanRead(); el != nil || err != nil {
			return el, err
		}
		if sr.start == len(sr.buf) {
			sr.release() // nothing pending: an idle stream holds no buffer
		}
		if sr.err != nil {
			return nil, sr.err
		}
		sr.fill()
	}
}

// scanRead scans the bytes read and not yet scanned, up to the end of the
// next element.
func (sr *stanzaReader) scanRead() ([]byte, error) {
	for sr.scanned < len(sr.buf) {
		b := sr.buf[sr.scanned]
		if sr.scan.st == stLt && sr.scan.depth == 0 && b == '/' {
			return nil, errServerClosed // </stream:stream>
		}
		ev, err := sr.scan.feed(b)
		if err != nil {
			return nil, err
		}
		sr.scanned++
		switch ev {
		case scanSkip, scanDiscard: // whitespace, or an XML declaration, between elements
			sr.start = sr.scanned
		case scanEnd:
			el := sr.buf[sr.start:sr.scanned]
			sr.start = sr.scanned
			return el, nil
		}
		if sr.scanned-sr.start > maxStanza {
			return nil, errStanzaTooLarge
		}
	}
	return nil, nil
}

// fill reads more: one byte into the stream's own array when no element is
// pending, else into the borrowed buffer, after what is pending.
func (sr *stanzaReader) fill() {
	if sr.bp == nil {
		n, err := sr.r.Read(sr.one[:])
		sr.err = err
		if n > 0 {
			sr.borrow()
			sr.buf = append(sr.buf, sr.one[0])
		}
		return
	}
	if sr.start > 0 { // drop the elements already returned
		n := copy(sr.buf, sr.buf[sr.start:])
		sr.buf, sr.scanned, sr.start = sr.buf[:n], sr.scanned-sr.start, 0
	}
	if len(sr.buf) == cap(sr.buf) {
		sr.buf = slices.Grow(sr.buf, len(sr.buf))
	}
	n, err := sr.r.Read(sr.buf[len(sr.buf):cap(sr.buf)])
	sr.buf, sr.err = sr.buf[:len(sr.buf)+n], err
}

func (sr *stanzaReader) borrow() {
	sr.bp = sr.bufs.get()
	sr.buf, sr.start, sr.scanned = (*sr.bp)[:0], 0, 0
}

// release gives the read buffer back, with whatever it held.
func (sr *stanzaReader) release() {
	if sr.bp == nil {
		return
	}
	*sr.bp = sr.buf
	sr.bufs.put(sr.bp)
	sr.bp, sr.buf, sr.start, sr.scanned = nil, nil, 0, 0
}

// The namespaces of the stream itself: the TCP stream's (whose stream
// prefix, declared in the stream header we no longer read, is "stream") and
// RFC 7395's framing.
const (
	nsStreams      = "http://etherx.jabber.org/streams"
	nsStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
	nsFraming      = "urn:ietf:params:xml:ns:xmpp-framing"
)

// decodeElement reduces one top-level element of the stream: a stanza, the
// server's end of the stream (errServerClosed), a stream error
// (*streamError), or errNotStanza for anything else (read and skipped).
func decodeElement(el []byte) (inbound, error) {
	d := xml.NewDecoder(bytes.NewReader(el))
	start, err := firstStart(d)
	if err != nil {
		return inbound{}, err
	}
	switch {
	case start.Name.Space == nsFraming && start.Name.Local == "close":
		return inbound{}, errServerClosed
	case start.Name.Space == nsFraming && start.Name.Local == "open":
		return inbound{}, errRestart
	case (start.Name.Space == nsStreams || start.Name.Space == "stream") && start.Name.Local == "error":
		return inbound{}, readStreamError(d)
	}
	return decodeStanza(d, start)
}

// streamError is the server ending the stream with a stream error
// (RFC 6120 4.9): "conflict" when another login took the chat's resource.
type streamError struct {
	Condition string
	Text      string
}

func (e *streamError) Error() string {
	if e.Text == "" {
		return "xmpp stream error: " + e.Condition
	}
	return fmt.Sprintf("xmpp stream error: %s (%s)", e.Condition, e.Text)
}

// maxStreamErrorText bounds the server's text kept in a stream error.
const maxStreamErrorText = 200

// readStreamError reads the children of <stream:error>: the condition and
// the text, bounded.
func readStreamError(d *xml.Decoder) error {
	e := &streamError{Condition: "undefined-condition"}
	var text *strings.Builder
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("xmpp stream error unreadable: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Space == nsStreamErrors {
				if t.Name.Local == "text" {
					text = &strings.Builder{}
				} else {
					e.Condition = clip(t.Name.Local, maxStateLen)
				}
			}
		case xml.EndElement:
			if depth == 0 {
				return e
			}
			if depth == 1 && text != nil {
				e.Text, text = strings.TrimSpace(text.String()), nil
			}
			depth--
		case xml.CharData:
			if text != nil && text.Len() < maxStreamErrorText {
				text.WriteString(clip(string(t), maxStreamErrorText-text.Len()))
			}
		}
	}
}
