package cobrowser

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// loginServer is an XMPP server for one TCP login (STARTTLS, SASL PLAIN,
// bind) that writes a message in the same write, so the same TLS record,
// as the bind result: what a server may do when a stanza for the client
// is waiting. It returns host:port and the CA file to trust.
func loginServer(t *testing.T, message string) (string, string) {
	t.Helper()
	// httptest's certificate, for example.com, signed by itself.
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	cert, leaf := hs.TLS.Certificates[0], hs.Certificate()
	hs.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("login server: %v", err)
		}
	})
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		done <- serveLogin(nc, &tls.Config{Certificates: []tls.Certificate{cert}}, message)
	}()
	return ln.Addr().String(), caFile
}

const serverHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' ` +
	`xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='xmpp.test' version='1.0'>`

func serveLogin(nc net.Conn, cfg *tls.Config, message string) error {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	d := xml.NewDecoder(nc)
	if err := expect(d, "stream"); err != nil {
		return err
	}
	if _, err := fmt.Fprint(nc, serverHeader+`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`); err != nil {
		return err
	}
	if err := expect(d, "starttls"); err != nil {
		return err
	}
	if _, err := fmt.Fprint(nc, `<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`); err != nil {
		return err
	}
	tc := tls.Server(nc, cfg)
	d = xml.NewDecoder(tc)
	if err := expect(d, "stream"); err != nil {
		return err
	}
	if _, err := fmt.Fprint(tc, serverHeader+`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`); err != nil {
		return err
	}
	if err := expect(d, "auth"); err != nil {
		return err
	}
	if _, err := fmt.Fprint(tc, `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`); err != nil {
		return err
	}
	if err := expect(d, "stream"); err != nil {
		return err
	}
	if _, err := fmt.Fprint(tc, serverHeader+`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`); err != nil {
		return err
	}
	start, err := next(d, "iq")
	if err != nil {
		return err
	}
	id := ""
	for _, a := range start.Attr {
		if a.Name.Local == "id" {
			id = a.Value
		}
	}
	// An error here is the client going (after a stanza too large): the
	// test checks what the client read.
	_, _ = fmt.Fprintf(tc, `<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>visitor@xmpp.test/r</jid></bind></iq>%s`, id, message)
	// Hold the stream until the client goes.
	for {
		if _, err := d.Token(); err != nil {
			return nil
		}
	}
}

// next reads up to the start of the element named local.
func next(d *xml.Decoder, local string) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("waiting for <%s>: %w", local, err)
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == local {
			return s, nil
		}
	}
}

// expect reads the element named local, whole unless it is the stream.
func expect(d *xml.Decoder, local string) error {
	_, err := next(d, local)
	if err != nil || local == "stream" {
		return err
	}
	return d.Skip()
}

// tcpLogin logs in to a loginServer that sends message behind the bind
// result.
func tcpLogin(t *testing.T, message string) *stream {
	t.Helper()
	addr, caFile := loginServer(t, message)
	keys := validKeys()
	delete(keys, "xmpp_websocket_url")
	keys["xmpp_address"] = fmt.Sprintf("%q", addr)
	keys["tls_server_name"] = `"example.com"`
	keys["ca_file"] = fmt.Sprintf("%q", caFile)
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := v.dial(ctx, login{Local: "visitor", Domain: "xmpp.test", Resource: "r", Password: "secret"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	return st
}

// A stanza the server sends right behind the bind result, in the same TLS
// record, is read: the login reads one byte at a time, so the XMPP
// library's buffer, let go after the login, holds nothing of it.
func TestLoginLeavesNothingUnread(t *testing.T) {
	st := tcpLogin(t, `<message from='agent@internal.xmpp.test' type='chat' id='early'><body>right behind the bind</body></message>`)
	got := make(chan inbound, 1)
	read := make(chan error, 1)
	go func() {
		read <- st.read(func(in inbound) bool { got <- in; return false })
	}()
	select {
	case in := <-got:
		if in.ID != "early" || in.Body != "right behind the bind" {
			t.Errorf("first stanza read: %+v", in)
		}
	case err := <-read:
		t.Fatalf("the reader ended before a stanza: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the stanza sent behind the bind result was not read")
	}
	if err := <-read; err != nil && !errors.Is(err, errStreamClosed) {
		t.Errorf("reader: %v", err)
	}
}

// A stanza over maxStanza ends the stream's reading with a clear error
// (the chat then logs in again, as after any drop), once maxStanza was
// read and before more is held.
func TestHugeStanzaEndsStream(t *testing.T) {
	st := tcpLogin(t, "<message><body>"+strings.Repeat("x", maxStanza+1)+"</body></message>")
	err := st.read(func(in inbound) bool {
		t.Errorf("a stanza handed on: %.60q", in.Body)
		return true
	})
	if !errors.Is(err, errStanzaTooLarge) {
		t.Errorf("read ended with %v, want errStanzaTooLarge", err)
	}
}
