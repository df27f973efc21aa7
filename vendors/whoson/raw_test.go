package whoson

// Tests against a scripted raw WebSocket peer, for what the fake server
// never does: malformed frames, odd spellings, a peer that stops answering
// pings, TLS.

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/connectord/connectord/connector"
)

// peer is one accepted client socket of a scripted server.
type peer struct {
	t  *testing.T
	ws *websocket.Conn
}

// expect reads the next command and checks its name.
func (p *peer) expect(ctx context.Context, name string) []string {
	p.t.Helper()
	_, b, err := p.ws.Read(ctx)
	if err != nil {
		p.t.Errorf("reading %s: %v", name, err)
		return nil
	}
	var cmd command
	if err := json.Unmarshal(b, &cmd); err != nil || cmd.Command != name {
		p.t.Errorf("got %s, want a %s command", b, name)
	}
	return cmd.Parameters
}

func (p *peer) write(ctx context.Context, frames ...string) {
	for _, f := range frames {
		if err := p.ws.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			p.t.Errorf("write %s: %v", f, err)
		}
	}
}

// scripted serves each accepted socket with the next script; it stops
// serving when the test ends.
func scripted(t *testing.T, tlsServer bool, scripts ...func(ctx context.Context, p *peer)) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	next := make(chan func(context.Context, *peer), len(scripts))
	for _, s := range scripts {
		next <- s
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		select {
		case script := <-next:
			script(ctx, &peer{t: t, ws: ws})
		default: // a health probe, or more sockets than scripts
		}
		<-ctx.Done()
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	if tlsServer {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
	})
	return srv
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// rawVendor builds a vendor for a scripted server. Only a started vendor
// probes, and a probe takes a script's socket: start only without scripts.
func rawVendor(t *testing.T, url string, keys map[string]string, start bool) (*Vendor, *sink) {
	t.Helper()
	h := &harness{t: t}
	all := baseKeys(url)
	for k, v := range keys {
		all[k] = v
	}
	return h.vendorAt(all, start)
}

// Odd spellings, "True", malformed frames and unknown events are taken in
// stride; a peer that stops answering pings is dropped and the chat
// resumed on a new socket with the stored ChatUid.
func TestRawFramesAndPingTimeout(t *testing.T) {
	t.Parallel()
	var cookie string
	srv := scripted(t, false,
		func(ctx context.Context, p *peer) {
			params := p.expect(ctx, "Connect")
			if len(params) == 7 {
				cookie = params[3]
			} else {
				t.Errorf("Connect parameters %q", params)
			}
			p.write(ctx, `garbage`, `{"EventName":"CONNECTED","ChatUid":null,"Data":{"SessionID":"s1","LeaveMessageEnabled":"True"}}`)
			p.expect(ctx, "Hello")
			p.write(ctx,
				`{"EventName":"Accepted","ChatUid":"u1","Data":"wait"}`,
				`{"EventName":"NewLine","ChatUid":"u1","Data":{"Classname":"LineO","Content":"a"}}`,
				`[1,2]`,
				`{"EventName":"somethingnew","ChatUid":"u1","Data":{"x":1}}`,
				`{"EventName":"newline","ChatUid":"u1","Data":"not an object"}`,
				`{"EventName":"OperatorJoined","ChatUid":"u1","Data":{"Name":"Bo","IsBot":"False"}}`,
				`{"EventName":"newline","ChatUid":"u1","Data":{"Classname":"lineo","Content":"b"}}`,
				`{"EventName":"requestfile","ChatUid":"u1","Data":"pdf"}`,
				`{"EventName":"requestfield","ChatUid":"u1","Data":{"FieldName":"Order","Prompt":"Your order number?"}}`,
			)
			// Stop reading: pings go unanswered.
		},
		func(ctx context.Context, p *peer) {
			params := p.expect(ctx, "Connect")
			if len(params) != 8 || params[7] != "u1" || params[3] != cookie {
				t.Errorf("resuming Connect parameters %q, want cookie %q and ChatUid u1", params, cookie)
			}
			p.write(ctx, `{"EventName":"connected","ChatUid":"u1","Data":{"SessionID":"s2"}}`,
				`{"EventName":"newline","ChatUid":"u1","Data":{"Classname":"lineo","Content":"c"}}`,
				`{"EventName":"operatorjoined","ChatUid":"u1","Data":{"Name":"Cy"}}`,
				`{"EventName":"QUIT","ChatUid":"u1","Data":""}`)
			for {
				if _, _, err := p.ws.Read(ctx); err != nil {
					return
				}
			}
		},
	)
	v, sk := rawVendor(t, wsURL(srv), nil, false)
	c := conversation(connector.Profile{})
	sess, err := v.Open(ctx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := parseSession(sess); st.ChatUID != "u1" || st.SessionID != "s1" {
		t.Errorf("session %s", sess)
	}
	sk.waitType(t, connector.EventEnded)
	var got []string
	for _, e := range sk.all() {
		got = append(got, fmt.Sprintf("%s:%s%s", e.Type, e.Agent, e.Text))
	}
	want := "text:a joined:Bo text:b notice:Your order number? session: text:c transferred:Cy ended:"
	if strings.Join(got, " ") != want {
		t.Errorf("events\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if st, _ := parseSession(sk.of(connector.EventSession)[0].Session); st.SessionID != "s2" || st.ChatUID != "u1" {
		t.Errorf("session after the reconnect %+v", st)
	}
}

// A Connect refused with an error event is permanent, and the error text is
// in the error; the secret is not.
func TestRawConnectRefused(t *testing.T) {
	t.Parallel()
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		p.expect(ctx, "Connect")
		p.write(ctx, `{"EventName":"error","ChatUid":null,"Data":"The specified site is not being monitored by WhosOn."}`)
	})
	v, _ := rawVendor(t, wsURL(srv), nil, false)
	_, err := v.Open(ctx(t), conversation(connector.Profile{}))
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "not being monitored") {
		t.Errorf("Open = %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "test-auth") {
		t.Errorf("error shows the auth string: %v", err)
	}
}

// A connected event whose SessionID is beyond the bound is refused on the
// live Connect path, not stored in the session.
func TestRawHugeSessionIDRefused(t *testing.T) {
	t.Parallel()
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		p.expect(ctx, "Connect")
		p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"`+strings.Repeat("s", 100000)+`"}}`)
	})
	v, _ := rawVendor(t, wsURL(srv), nil, false)
	sess, err := v.Open(ctx(t), conversation(connector.Profile{}))
	if err == nil || !strings.Contains(err.Error(), "SessionID of 100000 bytes") || len(sess) != 0 {
		t.Errorf("Open = %d-byte session, %v; want refused", len(sess), err)
	}
}

// No accepted/notaccepted within accept_timeout: an error to retry, after
// a Quit for the half-open chat.
func TestRawAcceptTimeout(t *testing.T) {
	t.Parallel()
	quit := make(chan []string, 1)
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		p.expect(ctx, "Connect")
		p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"s1"}}`)
		p.expect(ctx, "Hello")
		quit <- p.expect(ctx, "Quit")
	})
	v, _ := rawVendor(t, wsURL(srv), map[string]string{"accept_timeout": `"200ms"`}, false)
	_, err := v.Open(ctx(t), conversation(connector.Profile{}))
	if err == nil || connector.IsPermanent(err) {
		t.Errorf("Open = %v, want an error to retry", err)
	}
	select {
	case p := <-quit:
		if len(p) != 2 || p[0] != "s1" {
			t.Errorf("Quit parameters %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Error("no Quit after the timeout")
	}
}

// TLS: a self-signed server is trusted through ca_file (or the PEM text the
// config loader puts in ca), refused without it, and reached with
// insecure_skip_verify.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := scripted(t, true)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	url := wsURL(srv) // wss://
	for _, tc := range []struct {
		name  string
		keys  map[string]string
		ready bool
	}{
		{"ca_file", map[string]string{"ca_file": fmt.Sprintf("%q", caFile)}, true},
		{"ca text", map[string]string{"ca": fmt.Sprintf("%q", caPEM)}, true},
		{"insecure", map[string]string{"insecure_skip_verify": "true"}, true},
		{"untrusted", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := rawVendor(t, url, tc.keys, true)
			waitFor(t, "a probe", func() bool { return v.Health().Detail != "checking whoson" })
			if h := v.Health(); h.Ready != tc.ready {
				t.Errorf("health = %+v, want ready %v", h, tc.ready)
			}
		})
	}
	keys := validKeys()
	keys["ca"] = `"not pem"`
	if got := errorPaths(check(keys)); len(got) != 1 || got[0] != "vendors.whoson.test.ca_file" {
		t.Errorf("bad ca text: %v", got)
	}
}

// A queue event without a usable number tells the customer nothing new
// (never "number 0"); the first real position is the one relayed.
func TestRawQueueWithoutPosition(t *testing.T) {
	t.Parallel()
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		p.expect(ctx, "Connect")
		p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"s1"}}`)
		p.expect(ctx, "Hello")
		p.write(ctx,
			`{"EventName":"accepted","ChatUid":"u1","Data":""}`,
			`{"EventName":"queue","ChatUid":"u1"}`,
			`{"EventName":"queue","ChatUid":"u1","Data":null}`,
			`{"EventName":"queue","ChatUid":"u1","Data":""}`,
			`{"EventName":"queue","ChatUid":"u1","Data":"0"}`,
			`{"EventName":"queue","ChatUid":"u1","Data":-1}`,
			`{"EventName":"queue","ChatUid":"u1","Data":"soon"}`,
			`{"EventName":"queue","ChatUid":"u1","Data":{"Position":2}}`,
			`{"EventName":"queue","ChatUid":"u1","Data":"3"}`,
			`{"EventName":"operatorjoined","ChatUid":"u1","Data":{"Name":"Bo"}}`,
		)
		for {
			if _, _, err := p.ws.Read(ctx); err != nil {
				return
			}
		}
	})
	v, sk := rawVendor(t, wsURL(srv), nil, false)
	c := conversation(connector.Profile{})
	if _, err := v.Open(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	sk.waitType(t, connector.EventJoined)
	if q := sk.of(connector.EventQueue); len(q) != 1 || q[0].Position != 3 || q[0].Text != "" {
		t.Errorf("queue events %s, want one at position 3", describe(q))
	}
}

// flappingServer accepts every socket: the first carries a whole chat (u1)
// and is then dropped; every later one is dropped at once, after a
// connected for u1 when resumeOK is set (the chat seems to come back),
// else before anything is said. It counts the sockets after the first.
func flappingServer(t *testing.T, resumeOK bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var first atomic.Bool
	redials := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		p := &peer{t: t, ws: ws}
		if first.CompareAndSwap(false, true) {
			p.expect(ctx, "Connect")
			p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"s1"}}`)
			p.expect(ctx, "Hello")
			p.write(ctx, `{"EventName":"accepted","ChatUid":"u1","Data":""}`)
			time.Sleep(100 * time.Millisecond)
			return
		}
		redials.Add(1)
		if resumeOK {
			if _, _, err := ws.Read(ctx); err == nil {
				p.write(ctx, `{"EventName":"connected","ChatUid":"u1","Data":{"SessionID":"s2"}}`)
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, redials
}

// A server that takes the socket and drops it at once, whether or not the
// chat seemed to resume first, is redialled with back-off, not in a storm.
func TestRawReconnectBacksOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		resumeOK bool
	}{{"dropped before connected", false}, {"dropped after connected", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, redials := flappingServer(t, tc.resumeOK)
			v, _ := rawVendor(t, wsURL(srv), nil, false) // reconnect_max 200ms
			if _, err := v.Open(ctx(t), conversation(connector.Profile{})); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a redial", func() bool { return redials.Load() > 0 })
			const window = 2 * time.Second
			before := redials.Load()
			time.Sleep(window)
			n := redials.Load() - before
			t.Logf("%d redials in %s", n, window)
			// Back-off from 100ms up to reconnect_max (200ms), ±50%: about
			// 12 in the window; a storm makes hundreds.
			if n > 30 {
				t.Errorf("%d redials in %s: no back-off", n, window)
			}
			if n < 3 {
				t.Errorf("%d redials in %s: gave up?", n, window)
			}
		})
	}
}

// A server that refuses the resuming Connect with an error event ends the
// conversation, naming its error, and is not dialled again: repeating a
// refused Connect risks the IP blacklist.
func TestRawReconnectRefused(t *testing.T) {
	t.Parallel()
	srv := scripted(t, false,
		func(ctx context.Context, p *peer) {
			p.expect(ctx, "Connect")
			p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"s1"}}`)
			p.expect(ctx, "Hello")
			p.write(ctx, `{"EventName":"accepted","ChatUid":"u1","Data":""}`)
			p.ws.CloseNow()
		},
		func(ctx context.Context, p *peer) {
			p.expect(ctx, "Connect")
			p.write(ctx, `{"EventName":"error","ChatUid":null,"Data":"Access Denied"}`)
		},
	)
	v, sk := rawVendor(t, wsURL(srv), nil, false)
	c := conversation(connector.Profile{})
	if _, err := v.Open(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	ended := sk.waitType(t, connector.EventEnded)
	if ended.Reason != "whoson refused to reconnect: whoson error: Access Denied" {
		t.Errorf("end reason %q", ended.Reason)
	}
	waitFor(t, "the session to stop", func() bool { return v.session(c.ID) == nil })
	if n := len(sk.of(connector.EventEnded)); n != 1 {
		t.Errorf("%d ended events", n)
	}
}

// reconnect_initial and reconnect_max pace the redials: with both at 1s
// the first redial comes at least 0.5s after the drop and later ones at
// most two a second, where the test defaults (100ms, 200ms) make a dozen.
func TestRawReconnectPolicyKeys(t *testing.T) {
	t.Parallel()
	srv, redials := flappingServer(t, true)
	v, _ := rawVendor(t, wsURL(srv), map[string]string{
		"reconnect_initial": `"1s"`, "reconnect_max": `"1s"`, "reconnect_stable": `"1m"`}, false)
	if _, err := v.Open(ctx(t), conversation(connector.Profile{})); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	waitFor(t, "a redial", func() bool { return redials.Load() > 0 })
	// The server drops the chat's socket 100ms after accepting it.
	if first := time.Since(opened); first < 550*time.Millisecond {
		t.Errorf("first redial %s after Open, want at least 0.55s (drop at 0.1s, then at least reconnect_initial/2)", first)
	}
	const window = 2 * time.Second
	before := redials.Load()
	time.Sleep(window)
	n := redials.Load() - before
	t.Logf("%d redials in %s", n, window)
	if n < 1 || n > 4 {
		t.Errorf("%d redials in %s, want 1 to 4 (waits of 0.5s to 1s)", n, window)
	}
}

// The reachability probe's dial error reaches Health and the log without
// the url's query or userinfo.
func TestHealthDetailRedacted(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the dial is refused
	url := "ws://visitor:s3cretpw@" + addr + "/chat?token=s3crettoken"
	h := &harness{t: t}
	keys := baseKeys(url)
	v, _ := h.vendorAt(keys, true)
	waitFor(t, "a probe", func() bool { return strings.HasPrefix(v.Health().Detail, "unreachable") })
	detail := v.Health().Detail
	t.Logf("health: %s", detail)
	if !strings.Contains(detail, addr) {
		t.Errorf("health %q does not name the server", detail)
	}
	lines := detail
	for _, e := range h.logs.All() {
		lines += "\n" + fmt.Sprint(e.Message, e.ContextMap())
	}
	for _, secret := range []string{"s3cretpw", "s3crettoken", "visitor"} {
		if strings.Contains(lines, secret) {
			t.Errorf("%q shows in health or logs:\n%s", secret, lines)
		}
	}
}
