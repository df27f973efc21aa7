package wsock

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A buffer that grew past maxPooledBuf is not kept; a small one is reused.
func TestBuffersDropLargeOnes(t *testing.T) {
	var p Buffers
	big := bytes.NewBuffer(make([]byte, 0, 2*maxPooledBuf))
	p.Put(big)
	for range 10 {
		if p.Get() == big {
			t.Fatal("a buffer over maxPooledBuf came back from the pool")
		}
	}
	small := p.Get()
	small.WriteString("x")
	p.Put(small)
	if b := p.Get(); b.Len() != 0 {
		t.Errorf("a pooled buffer came back with %d bytes", b.Len())
	}
}

// echoServer echoes every text message; the library answers pings.
func echoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		for {
			typ, b, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if ws.Write(r.Context(), typ, b) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// A message longer than the write buffer is echoed whole; a ping is
// answered while a reader reads; Close ends the read, takes the socket out
// of the keepalive, and can be called again.
func TestConnRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := NewDialer(nil, 5*time.Second).DialContext(ctx, echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var bufs Buffers
	c := New(ws, zap.NewNop(), &bufs, 1<<20)
	g := connector.NewGroup()
	defer g.Stop(ctx) //nolint:errcheck // the test's own group
	if !c.Watch(keepalive.New(time.Hour, g), c) {
		t.Fatal("Watch refused a socket")
	}
	long := strings.Repeat("y", writeBufferSize+100)
	if err := c.Write(ctx, []byte(long)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Next(ctx)
	if err != nil || got.String() != long {
		t.Fatalf("echo: %d bytes, %v; want the %d sent", got.Len(), err, len(long))
	}
	c.PutBuf(got)

	read := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		read <- err
	}()
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping with a reader: %v", err)
	}
	if c.Pings() != 1 || c.Reads()%2 != 1 {
		t.Errorf("pings %d, reads %d: want 1 ping and the reader waiting in its read", c.Pings(), c.Reads())
	}
	c.Close()
	c.Close()
	if err := <-read; err == nil {
		t.Error("the read did not end with Close")
	}
	if !c.Closing() {
		t.Error("Closing is false after Close")
	}
	select {
	case <-c.ReadEnded():
	default:
		t.Error("ReadEnded is open after the read ended")
	}
}

// closeServer records the close status of each socket it serves (-1 for a
// socket dropped without a close frame).
func closeServer(t *testing.T) (string, <-chan websocket.StatusCode) {
	t.Helper()
	codes := make(chan websocket.StatusCode, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			if _, _, err := ws.Read(r.Context()); err != nil {
				codes <- websocket.CloseStatus(err)
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), codes
}

// CloseGracefully sends a close frame the server reads, with the socket's
// reader taking the answer, or drain when no reader runs; with its group
// stopped it drops the socket without one.
func TestCloseGracefully(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url, codes := closeServer(t)
	var bufs Buffers
	dial := func() *Conn {
		ws, _, err := NewDialer(nil, 5*time.Second).DialContext(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return New(ws, zap.NewNop(), &bufs, 1<<20)
	}
	g := connector.NewGroup()
	defer g.Stop(ctx) //nolint:errcheck // the test's own group

	c := dial()
	read := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		read <- err
	}()
	c.CloseGracefully(ctx, g, 5*time.Second, nil)
	if code := <-codes; code != websocket.StatusNormalClosure {
		t.Errorf("with a reader: the server read close status %d, want %d", code, websocket.StatusNormalClosure)
	}
	if err := <-read; err == nil || !c.Closing() {
		t.Errorf("with a reader: read ended with %v, closing %v; want an error and closed", err, c.Closing())
	}

	c = dial()
	drained := false
	c.CloseGracefully(ctx, g, 5*time.Second, func(ctx context.Context) {
		drained = true
		for {
			if _, err := c.Next(ctx); err != nil {
				return
			}
		}
	})
	if code := <-codes; code != websocket.StatusNormalClosure || !drained {
		t.Errorf("with drain: close status %d, drained %v; want %d, true", code, drained, websocket.StatusNormalClosure)
	}

	c = dial()
	stopped := connector.NewGroup()
	if err := stopped.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c.CloseGracefully(ctx, stopped, 5*time.Second, nil)
	if code := <-codes; code != -1 || !c.Closing() {
		t.Errorf("group stopped: close status %d, closing %v; want the socket dropped without a close frame (-1)", code, c.Closing())
	}
}
