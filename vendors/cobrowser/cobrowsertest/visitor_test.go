package cobrowsertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// visitor is what an adapter does, reduced to the kit's own tests: it logs
// in with credentials from POST xmppcredentials and follows the document's
// presence sequence.
type visitor struct {
	conn  *xmppConn
	agent string // the agent's bare JID from the REST answer
	recorder
}

// transport names for connectVisitor.
const (
	overWS  = "ws"
	overWSS = "wss"
	overTCP = "tcp"
)

// tlsFromCAFile trusts only the PEM in CAFile, as an adapter's ca_file does.
func tlsFromCAFile(t testing.TB, e *Ejabberd) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", e.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: e.Domain}
}

func connectVisitor(t testing.TB, e *Ejabberd, creds credentialsAnswer, over string) *visitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	local, _, _ := strings.Cut(creds.Credentials.User, "@")
	l := login{
		Domain: creds.Credentials.Domain, User: local, Password: creds.Credentials.Password,
		Resource: creds.Credentials.Resource, TLS: tlsFromCAFile(t, e),
	}
	switch over {
	case overWS:
		l.WSURL = e.WSURL
	case overWSS:
		l.WSURL = e.WSSURL
	default:
		l.TCPAddr = e.TCPAddr
	}
	conn, err := dial(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	v := &visitor{conn: conn, agent: creds.Agent.JID, recorder: newRecorder()}
	runCtx, stop := context.WithCancel(context.Background())
	replies := make(chan string, 16)
	go func() {
		v.ended(conn.Run(runCtx, func(n *node) {
			s := toStanza(n)
			if s.Kind == "presence" && s.Type == "subscribe" && s.Bare() != bare(conn.JID) {
				// The document: answer with subscribed, then an active chat state.
				replies <- fmt.Sprintf(`<presence to="%s" type="subscribed"/>`, esc(v.agent))
				replies <- fmt.Sprintf(`<message to="%s"><active xmlns="%s"/></message>`, esc(v.agent), nsChatStates)
			}
			v.record(s)
		}))
	}()
	go func() {
		for {
			select {
			case r := <-replies:
				conn.Send(r)
			case <-runCtx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		stop()
	})
	for _, p := range []string{
		`<presence/>`,
		fmt.Sprintf(`<presence to="%s" type="subscribe"/>`, esc(v.agent)),
		fmt.Sprintf(`<presence to="%s"><show>chat</show><status>available</status></presence>`, esc(v.agent)),
	} {
		if err := conn.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *visitor) say(t testing.TB, text string) {
	t.Helper()
	msg := fmt.Sprintf(`<message type="chat" to="%s" id="v-%s"><body>%s</body><active xmlns="%s"/></message>`,
		esc(v.agent), randomHex(4), esc(text), nsChatStates)
	if err := v.conn.Send(msg); err != nil {
		t.Fatal(err)
	}
}

func (v *visitor) state(t testing.TB, state string) {
	t.Helper()
	if err := v.conn.Send(fmt.Sprintf(`<message type="chat" to="%s"><%s xmlns="%s"/></message>`, esc(v.agent), state, nsChatStates)); err != nil {
		t.Fatal(err)
	}
}

// credentialsAnswer is POST xmppcredentials' answer.
type credentialsAnswer struct {
	ID    string `json:"id"`
	Agent struct {
		Firstname string `json:"firstname"`
		Nickname  string `json:"nickname"`
		JID       string `json:"jid"`
	} `json:"agent"`
	Credentials struct {
		User     string `json:"user"`
		Password string `json:"password"`
		Domain   string `json:"domain"`
		Resource string `json:"resource"`
	} `json:"credentials"`
}

// call makes one REST call with the fake's token; it returns the status
// and decodes a 2xx answer into out.
func call(t testing.TB, s *Server, token, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-API-TOKEN", token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, res.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	return res.StatusCode
}

// openChat runs the document's REST flow and returns the credentials.
func openChat(t testing.TB, s *Server, identifier string) (sessionID string, creds credentialsAnswer) {
	t.Helper()
	var cs map[string]any
	if st := call(t, s, s.Token(), "POST", "chatsessions", map[string]string{
		"campaign_id": s.CampaignID(), "visitor_identifier": identifier,
	}, &cs); st != http.StatusOK {
		t.Fatalf("POST chatsessions: %d %v", st, cs)
	}
	sessionID = cs["id"].(string)
	if st := call(t, s, s.Token(), "POST", "xmppcredentials", map[string]string{"chatsession_id": sessionID}, &creds); st != http.StatusOK {
		t.Fatalf("POST xmppcredentials: %d", st)
	}
	return sessionID, creds
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
