package customerchannel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// newVendor builds a vendor from cfg (merged over a minimal valid block)
// without starting it.
func newVendor(t *testing.T, cfg map[string]any, rec *recorder) *Vendor {
	t.Helper()
	full := map[string]any{"url": "http://127.0.0.1:1", "connector_id": "sms", "deliver_via": "sms.main"}
	for k, v := range cfg {
		full[k] = v
	}
	inst := connector.NewInstance("vendors.customerchannel.hub", "customerchannel", "hub", func(v any) error {
		b, _ := toml.Marshal(full)
		_, err := toml.Decode(string(b), v)
		return err
	})
	v, err := New(connector.VendorEnv{Instance: inst, Logger: zaptest.NewLogger(t), Sink: rec, Outbound: rec})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// droppingClient is a connection the server drops as soon as it is made.
func droppingClient() sio.Client {
	c := newFakeClient()
	c.Close()
	return c
}

// A server that accepts and drops at once must not be redialled in a tight
// loop: every redial waits a growing, jittered delay. Before the fix a
// connection that came up reset the back-off to no wait at all. The waits
// are the ones the supervisor announces before each redial.
func TestReconnectBacksOffWhenDroppedAtOnce(t *testing.T) {
	v := newVendor(t, map[string]any{"reconnect_max": "400ms"}, &recorder{})
	core, logs := observer.New(zap.WarnLevel)
	v.log = zap.New(core)
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) {
		return droppingClient(), nil
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const redials = 6
	waitFor(t, "six redials", func() bool { return logs.FilterMessageSnippet("reconnecting").Len() >= redials })
	if err := v.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	for i, l := range logs.FilterMessageSnippet("reconnecting").All()[:redials] {
		m := l.ContextMap()
		in, _ := m["in"].(time.Duration)
		waits = append(waits, in)
		// The count goes on: a connection that came up and dropped at once
		// does not start the back-off again.
		if attempt, _ := m["attempt"].(int64); attempt != int64(i+1) {
			t.Errorf("redial %d logged as attempt %v, want %d", i+1, m["attempt"], i+1)
		}
	}
	t.Logf("waits: %v", waits)
	// Delays: 125-250 ms, then 200-400 ms (the cap), jittered.
	for i, in := range waits {
		if in < 125*time.Millisecond || in > 400*time.Millisecond || i >= 2 && in < 200*time.Millisecond {
			t.Errorf("redial %d after %v, want 125-250ms at first, then 200-400ms", i+1, in)
		}
	}
	if slices.Min(waits[2:]) == slices.Max(waits[2:]) {
		t.Errorf("waits %v: no jitter", waits)
	}
}

// Health details, returned errors and logs never carry a URL's userinfo or
// query: the dial and REST errors quote the URL they failed on.
func TestHealthAndErrorsRedacted(t *testing.T) {
	secretURL := "wss://user:hunter2@chat.example.com/socket.io/?EIO=4&transport=websocket&token=s3cret"
	v := newVendor(t, map[string]any{"url": "http://user:hunter2@" + closedAddr(t)}, &recorder{})
	dialed := make(chan struct{}, 1)
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) {
		select {
		case dialed <- struct{}{}:
		default:
		}
		return nil, fmt.Errorf("%w: %w", sio.ErrDial, &urlError{secretURL})
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	<-dialed
	var detail string
	waitFor(t, "a health detail naming the failure", func() bool {
		detail = v.Health().Detail
		return strings.Contains(detail, "sio:")
	})
	_, err := v.Open(context.Background(), conversation())
	if err == nil {
		t.Fatal("init against a closed port succeeded")
	}
	for what, text := range map[string]string{"health detail": detail, "init error": err.Error()} {
		if strings.Contains(text, "hunter2") || strings.Contains(text, "s3cret") || strings.Contains(text, "EIO=") {
			t.Errorf("%s carries a secret: %s", what, text)
		}
		if !strings.Contains(text, "chat.example.com") && !strings.Contains(text, "127.0.0.1") {
			t.Errorf("%s lost the host: %s", what, text)
		}
	}
	if op := (*net.OpError)(nil); !errors.As(err, &op) {
		t.Errorf("the redacted error lost its chain (no *net.OpError): %v", err)
	}
}

// urlError quotes its URL the way *url.Error does.
type urlError struct{ u string }

func (e *urlError) Error() string { return fmt.Sprintf("Get %q: EOF", e.u) }

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A transcript over transcript_max_bytes is neither read to its end nor
// sent. Before the fix 32 MiB were read and the transcript sent anyway.
func TestTranscriptSizeBounded(t *testing.T) {
	const limit = 1 << 20
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		chunk := []byte(strings.Repeat("%PDF", 16<<10)) // 64 KiB
		for range 1024 {                                // 64 MiB unless the client hangs up
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	rec := &recorder{}
	v := newVendor(t, map[string]any{"url": srv.URL, "transcript": "pdf", "transcript_max_bytes": limit}, rec)
	v.http = srv.Client()
	l := &live{conv: 7, c: *conversation(), s: session{ConversationID: "conv-1"}}
	v.transcript(context.Background(), l)
	srv.CloseClientConnections()
	if _, out := rec.all(); len(out) != 0 {
		t.Errorf("an oversized transcript was sent: %+v", out)
	}
	// What the server got out before the client hung up: the limit plus
	// what the socket buffers hold.
	if n := written.Load(); n > 16<<20 {
		t.Errorf("the client read %d MiB of a transcript limited to 1 MiB", n>>20)
	}

	// One within the limit is sent.
	small := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "%PDF-1.4 small")
	}))
	defer small.Close()
	v = newVendor(t, map[string]any{"url": small.URL, "transcript": "pdf", "transcript_max_bytes": limit}, rec)
	v.http = small.Client()
	v.transcript(context.Background(), l)
	if _, out := rec.all(); len(out) != 1 {
		t.Errorf("a small transcript: %d messages sent, want 1", len(out))
	}
}

// The transcript goes to the customer's channel by its URL: the chat
// server's credentials in the configured url must not go with it, and the
// server's conversation id is one path segment.
func TestTranscriptLinkCarriesNoCredentials(t *testing.T) {
	var gotPath, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAuth = r.URL.EscapedPath(), r.Header.Get("Authorization")
		io.WriteString(w, "%PDF-1.4")
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://agent:s3cret@", 1)
	rec := &recorder{}
	v := newVendor(t, map[string]any{"url": withCreds, "transcript": "pdf"}, rec)
	v.http = srv.Client()
	l := &live{conv: 7, c: *conversation(), s: session{ConversationID: "a/b c"}}
	v.transcript(context.Background(), l)
	_, out := rec.all()
	if len(out) != 1 || len(out[0].Attachments) != 1 {
		t.Fatalf("transcript messages: %+v", out)
	}
	link := out[0].Attachments[0].URL
	if strings.Contains(link, "s3cret") || strings.Contains(link, "agent@") {
		t.Errorf("the customer's link carries the server's credentials: %s", link)
	}
	if gotPath != "/api/customer/transcript/a%2Fb%20c/pdf" || gotAuth == "" {
		t.Errorf("fetched %q (auth %q); want the id escaped as one segment, with the credentials", gotPath, gotAuth)
	}
}

func TestConfigBoundsValidated(t *testing.T) {
	for block, want := range map[string]string{
		"url = \"http://x\"\ntranscript_max_bytes = 0":      "transcript_max_bytes",
		"url = \"http://x\"\nsend_confirm_timeout = \"0s\"": "send_confirm_timeout",
		"url = \"http://x/?token=s3cret\"":                  "without a query",
		"url = \"http://u:pw@x/#frag\"":                     "without a query",
	} {
		inst := connector.NewInstance("vendors.customerchannel.hub", "customerchannel", "hub", func(v any) error {
			_, err := toml.Decode(block+"\nconnector_id = \"sms\"\n", v)
			return err
		})
		_, err := New(connector.VendorEnv{Instance: inst})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one naming %q", block, err, want)
		} else if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: the error shows a secret: %v", block, err)
		}
	}
}
