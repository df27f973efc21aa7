package cobrowser

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	mws "mellium.im/xmpp/websocket"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
)

// login is what a stream logs in with: the chat's XMPP credentials.
type login struct {
	Local    string // the local part of credentials.user
	Domain   string
	Resource string
	Password string
}

// loginOf makes the login from stored credentials: SASL PLAIN takes the
// local part of user; the domain is the credentials' domain, else user's.
func loginOf(st sessionState) (login, error) {
	local, userDomain, _ := strings.Cut(st.User, "@")
	userDomain, _, _ = strings.Cut(userDomain, "/")
	domain := st.Domain
	if domain == "" {
		domain = userDomain
	}
	if local == "" || domain == "" || st.Password == "" {
		return login{}, errors.New("cobrowser xmppcredentials lack user, domain or password")
	}
	return login{Local: local, Domain: domain, Resource: st.Resource, Password: st.Password}, nil
}

// errRefused is the server refusing the chat's credentials: the chat is
// gone for good (its account was removed when it closed).
var errRefused = errors.New("the XMPP server refused the chat's credentials")

// stream is one logged-in XMPP stream of a chat, over WebSocket or TCP.
// Reading is the job of one goroutine (read); writes come from anywhere,
// one whole stanza per write. The XMPP library's session is let go once
// logged in (reader.go says why): the stream reads and writes the
// transport itself.
type stream struct {
	in     io.Reader    // the transport: the WebSocket's messages, or TLS
	out    io.Writer    // where stanzas are written
	conn   net.Conn     // TCP: the TLS connection, for write deadlines; nil over WebSocket
	bufs   *readBuffers // the vendor's, lent to read while a stanza arrives
	closer io.Closer    // drops the transport
	ws     bool
	bound  *boundedConn // TCP only: bytes read since the last stanza
	domain string
	self   jid.JID // our bare JID: presence echoes from it are ignored
	log    *zap.Logger

	writeTimeout time.Duration
	wmu          sync.Mutex

	nonce string
	seq   atomic.Uint64

	pmu     sync.Mutex
	waiters map[string]chan error // our pings and their answers, by id

	iqs atomic.Int32 // requests of the server being answered

	done      chan struct{} // closed by close
	closeOnce sync.Once
}

// dial connects and logs in with l, within connect_timeout: TCP with
// STARTTLS (certificate checked) or RFC 7395 WebSocket; SASL PLAIN only
// (ejabberd offers SCRAM-*-PLUS and then fails it); the resource bound as
// the credentials ask.
func (v *Vendor) dial(ctx context.Context, l login, log *zap.Logger) (*stream, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ConnectTimeout)
	defer cancel()
	origin, err := jid.New(l.Local, l.Domain, l.Resource)
	if err != nil {
		return nil, fmt.Errorf("cobrowser xmppcredentials: %w", err)
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", l.Password, sasl.Plain), bindResource(l.Resource)}
	st := &stream{domain: origin.Domainpart(), self: origin.Bare(), log: log, writeTimeout: v.cfg.SendTimeout,
		bufs: &v.reads, nonce: rand.Text()[:8], waiters: map[string]chan error{}, done: make(chan struct{})}
	if v.cfg.wsURL != nil {
		err = v.dialWS(ctx, st, origin, features)
	} else {
		err = v.dialTCP(ctx, st, origin, features)
	}
	if err != nil {
		if c := saslCondition(err); c != "" && c != "temporary-auth-failure" && c != "aborted" {
			return nil, fmt.Errorf("%w (%s)", errRefused, c)
		}
		return nil, fmt.Errorf("xmpp login over %s: %w", v.cfg.transport(), connector.Redacted(err))
	}
	return st, nil
}

// WebSocket buffers: a read buffer of wsReadBuffer per socket for its
// life (enough for a frame header or a control frame; the XMPP decoder
// reads message data straight into its own buffer), and a write buffer
// borrowed from the vendor's pool for the time of one message.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 16 << 10
)

func (v *Vendor) dialWS(ctx context.Context, st *stream, origin jid.JID, features []xmpp.StreamFeature) error {
	d := websocket.Dialer{NetDialContext: v.dialer.DialContext, Proxy: http.ProxyFromEnvironment, TLSClientConfig: v.cfg.tls.Clone(),
		HandshakeTimeout: v.cfg.ConnectTimeout, Subprotocols: []string{"xmpp"},
		ReadBufferSize: wsReadBuffer, WriteBufferSize: wsWriteBuffer, WriteBufferPool: v.wsPool}
	c, resp, err := d.DialContext(ctx, v.cfg.wsURL.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return err
	}
	if c.Subprotocol() != "xmpp" {
		c.NetConn().Close()
		return errors.New("the WebSocket server did not agree to the xmpp subprotocol (RFC 7395)")
	}
	f := newWSFramer(c, v.cfg.SendTimeout)
	st.ws, st.closer = true, f
	stop := context.AfterFunc(ctx, func() { f.Close() }) // the handshake's deadline
	// wss:// is TLS; ws:// is only allowed to loopback (tests): either way
	// the stream counts as secure, which SASL PLAIN requires.
	_, err = xmpp.NewSession(ctx, origin.Domain(), origin, trickle{f}, xmpp.Secure,
		mws.Negotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if !stop() || err != nil {
		st.close()
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	st.in, st.out = f, f
	return nil
}

func (v *Vendor) dialTCP(ctx context.Context, st *stream, origin jid.JID, features []xmpp.StreamFeature) error {
	nc, err := v.dialer.DialContext(ctx, "tcp", v.cfg.XMPPAddress)
	if err != nil {
		return err
	}
	bc := &boundedConn{Conn: nc}
	st.bound, st.closer = bc, bc
	tlsConf := v.cfg.tls.Clone()
	tlsConf.ServerName = v.cfg.TLSServerName
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = origin.Domainpart()
	}
	var tc *tls.Conn
	features = append([]xmpp.StreamFeature{startTLS(tlsConf, &tc)}, features...)
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, bc, 0,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		st.close()
		return err
	}
	if sess.State()&xmpp.Secure == 0 || tc == nil {
		st.close()
		return errors.New("the XMPP server did not secure the stream with STARTTLS")
	}
	st.in, st.out, st.conn = tc, tc, tc
	return nil
}

// startTLS is the library's STARTTLS feature, which also hands over the
// TLS connection (the stream reads and writes it after the login) and
// gives the login the trickling view of it.
func startTLS(cfg *tls.Config, got **tls.Conn) xmpp.StreamFeature {
	f := xmpp.StartTLS(cfg)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if tc, ok := rw.(*tls.Conn); ok && err == nil {
			*got = tc
			return mask, tlsTrickle{tc}, nil
		}
		return mask, rw, err
	}
	return f
}

// trickle gives the login's XML decoder one byte per read, so that its
// buffer never holds bytes past the login's last element: the stream's own
// reader takes the transport over at exactly that point, and the server may
// send a stanza (its ping) right after the bind result. tlsTrickle is the
// same over TLS, keeping the connection's methods (deadlines, TLS state).
type trickle struct{ io.ReadWriter }

func (t trickle) Read(p []byte) (int, error) { return t.ReadWriter.Read(p[:min(len(p), 1)]) }

type tlsTrickle struct{ *tls.Conn }

func (t tlsTrickle) Read(p []byte) (int, error) { return t.Conn.Read(p[:min(len(p), 1)]) }

// saslCondition digs the SASL failure condition ("not-authorized") out of a
// login error, "" when it is not one. The library keeps its SASL error type
// internal; it is a struct with a Condition field that prints as the
// condition's name.
func saslCondition(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		rv := reflect.ValueOf(e)
		if rv.Kind() != reflect.Struct || !strings.HasSuffix(rv.Type().PkgPath(), "saslerr") {
			continue
		}
		if f := rv.FieldByName("Condition"); f.IsValid() {
			if s, ok := f.Interface().(fmt.Stringer); ok {
				return s.String()
			}
		}
	}
	return ""
}

// boundedConn counts the bytes read since the last stanza ended, under TLS:
// a server streaming one endless stanza is cut off at a bound.
type boundedConn struct {
	net.Conn
	n atomic.Int64
}

var errStanzaTooLarge = fmt.Errorf("xmpp: a stanza over %d bytes", maxStanza)

func (c *boundedConn) Read(p []byte) (int, error) {
	if c.n.Load() > 2*maxStanza {
		return 0, errStanzaTooLarge
	}
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *boundedConn) reset() { c.n.Store(0) }

// nextID is a fresh stanza id for what is not a customer line.
func (st *stream) nextID() string {
	return fmt.Sprintf("cd-%s-%d", st.nonce, st.seq.Add(1))
}

// write sends one whole stanza. A failed or timed-out write leaves the
// transport unusable (TLS state, a half frame): the stream is closed.
func (st *stream) write(b []byte) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	select {
	case <-st.done:
		return errStreamClosed
	default:
	}
	if st.conn != nil {
		_ = st.conn.SetWriteDeadline(time.Now().Add(st.writeTimeout))
	}
	if _, err := st.out.Write(b); err != nil {
		st.close()
		return fmt.Errorf("xmpp write: %w", err)
	}
	return nil
}

var errStreamClosed = errors.New("xmpp stream closed")

// confirm pings the server and waits for its answer: the server handles a
// stream in order, so the answer says every stanza written before the ping
// was taken (routed to the agent, or stored for them).
func (st *stream) confirm(ctx context.Context, timeout time.Duration) error {
	id := st.nextID()
	ch := make(chan error, 1)
	st.pmu.Lock()
	st.waiters[id] = ch
	st.pmu.Unlock()
	defer func() {
		st.pmu.Lock()
		delete(st.waiters, id)
		st.pmu.Unlock()
	}()
	if err := st.write(pingStanza(id, st.domain)); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-st.done:
		return errStreamClosed
	case <-t.C:
		return fmt.Errorf("the XMPP server did not answer a ping within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answered settles a ping of ours; false when id is not one.
func (st *stream) answered(in inbound) bool {
	st.pmu.Lock()
	ch, ok := st.waiters[in.ID]
	st.pmu.Unlock()
	if !ok {
		return false
	}
	// An error answer (a server without XEP-0199) says the same: everything
	// before the ping was read.
	select {
	case ch <- nil:
	default:
	}
	return true
}

// read decodes stanzas until the stream ends, calling handle for each in
// order. It runs on one goroutine; handle must not write to the stream.
func (st *stream) read(handle func(inbound) bool) error {
	sr := &stanzaReader{r: st.in, bufs: st.bufs}
	defer sr.release()
	for {
		el, err := sr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errServerClosed
			}
			return err
		}
		if more, err := st.dispatch(el, handle); !more || err != nil {
			return err
		}
	}
}

// dispatch decodes one element and hands a stanza to handle; false when
// the reading is over.
func (st *stream) dispatch(el []byte, handle func(inbound) bool) (bool, error) {
	in, err := decodeElement(el)
	if st.bound != nil {
		st.bound.reset()
	}
	if errors.Is(err, errNotStanza) {
		st.log.Debug("xmpp: element that is not a stanza skipped", zap.String("element", in.Kind))
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return handle(in), nil
}

func (st *stream) isClosed() bool {
	select {
	case <-st.done:
		return true
	default:
		return false
	}
}

// close drops the transport; every waiter and the reader give up.
func (st *stream) close() {
	st.closeOnce.Do(func() {
		close(st.done)
		if st.closer != nil {
			st.closer.Close()
		}
	})
}

// hangUp ends our side of the stream (<close/> or </stream:stream>) and
// drops the transport.
func (st *stream) hangUp() {
	end := closeTCP
	if st.ws {
		end = closeWS
	}
	if err := st.write(end); err != nil {
		st.log.Debug("xmpp stream end not written", zap.Error(err))
	}
	st.close()
}

const nsBind = "urn:ietf:params:xml:ns:xmpp-bind"

// bindResource binds the resource CoBrowser's credentials name. The
// library's own bind asks for the resource of the JID the server's stream
// header names, which ejabberd sends without one, and so binds a random
// resource instead.
func bindResource(resource string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			id := "bind-" + rand.Text()[:8]
			if _, err := s.Conn().Write(bindStanza(id, resource)); err != nil {
				return 0, nil, err
			}
			r := s.TokenReader()
			defer r.Close()
			bound, err := readBind(xml.NewTokenDecoder(r), id)
			if err != nil {
				return 0, nil, err
			}
			s.UpdateAddr(bound)
			return xmpp.Ready, nil, nil
		},
	}
}

func bindStanza(id, resource string) []byte {
	var b bytes.Buffer
	openStanza(&b, "iq", id, "", "set")
	b.WriteString(`><bind xmlns="` + nsBind + `">`)
	if resource != "" {
		b.WriteString("<resource>")
		escape(&b, resource)
		b.WriteString("</resource>")
	}
	b.WriteString("</bind></iq>")
	return b.Bytes()
}

// readBind reads the answer to our bind iq: the bound JID, or why not.
func readBind(d *xml.Decoder, id string) (jid.JID, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return jid.JID{}, err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		var resp struct {
			ID   string `xml:"id,attr"`
			Type string `xml:"type,attr"`
			JID  string `xml:"bind>jid"`
			Err  struct {
				Inner string `xml:",innerxml"`
			} `xml:"error"`
		}
		if err := d.DecodeElement(&resp, &start); err != nil {
			return jid.JID{}, err
		}
		switch {
		case start.Name.Local != "iq" || resp.ID != id:
			return jid.JID{}, fmt.Errorf("xmpp bind: unexpected %s", start.Name.Local)
		case resp.Type == "result":
			return jid.Parse(resp.JID)
		default:
			return jid.JID{}, fmt.Errorf("xmpp bind refused: %.200s", resp.Err.Inner)
		}
	}
}

var _ keepalive.Socket = (*stream)(nil)

// Ping implements keepalive.Socket with an XEP-0199 ping (confirm).
func (st *stream) Ping(ctx context.Context) error {
	timeout := time.Minute
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	return st.confirm(ctx, timeout)
}

// Reads implements keepalive.Socket. The server's answer to our ping is
// taken by the stream's reader, which is not counted: it is taken as always
// waiting in its read, so that an unanswered ping always drops the stream
// (the chat then logs in again).
func (st *stream) Reads() uint64 { return 1 }

// Drop implements keepalive.Socket.
func (st *stream) Drop() { st.close() }

// Close implements keepalive.Socket.
func (st *stream) Close() { st.close() }

// Closing implements keepalive.Socket.
func (st *stream) Closing() bool { return st.isClosed() }

// Logger implements keepalive.Socket.
func (st *stream) Logger() *zap.Logger { return st.log }
