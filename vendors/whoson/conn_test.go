package whoson

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock/wsocktest"
)

// A user and password in the url reach the server as Basic authorization,
// not in the request line; the library refuses a url that carries them.
func TestDialUserinfoAsBasicAuth(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	srv := scripted(t, false)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Clone(context.Background())
		if ws, err := websocket.Accept(w, r, nil); err == nil {
			ws.CloseNow()
		}
	})
	url := strings.Replace(wsURL(srv), "ws://", "ws://visitor:s3cret@", 1) + "/chat"
	v, _ := rawVendor(t, url, nil, false)
	c, err := v.dial(ctx(t), v.log)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := <-got
	if user, pass, ok := r.BasicAuth(); !ok || user != "visitor" || pass != "s3cret" {
		t.Errorf("Authorization %q, want Basic for visitor:s3cret", r.Header.Get("Authorization"))
	}
	if r.URL.Path != "/chat" || r.Header.Get("User-Agent") != "connectord" {
		t.Errorf("request %s with User-Agent %q", r.URL, r.Header.Get("User-Agent"))
	}
}

// A command longer than a write buffer goes out as one message of several
// frames, and the server reads it whole.
func TestLongCommandArrivesWhole(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 16<<10+17) // over wsock's write buffer; the server reads at most 32 KiB
	got := make(chan []string, 1)
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		got <- p.expect(ctx, "Message")
	})
	v, _ := rawVendor(t, wsURL(srv), nil, false)
	c, err := v.dial(ctx(t), v.log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.send(ctx(t), command{Command: "Message", Parameters: []string{"sid", long}}); err != nil {
		t.Fatal(err)
	}
	if params := <-got; len(params) != 2 || params[1] != long {
		t.Errorf("server read %d parameters, not the %d-byte text", len(params), len(long))
	}
}

// An idle socket holds little memory: a chat is idle nearly all its life and
// every chat has one, so this decides how many chats a process holds. The
// bound allows the socket's state, a read buffer for frame headers and the
// keepalive's entry, and not a buffer of some KiB per direction.
func TestIdleSocketHeap(t *testing.T) {
	const sockets, maxPerSocket = 300, 2560
	addr := wsocktest.BareServer(t)
	v, _ := rawVendor(t, "ws://"+addr+"/", nil, false)
	conns := make([]*conn, 0, sockets)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dctx := ctx(t) // one: each call of ctx keeps a context and a cleanup
	before := wsocktest.HeapInUse()
	for range sockets {
		c, err := v.dial(dctx, v.log)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	per := float64(wsocktest.HeapInUse()-before) / sockets
	t.Logf("%.0f bytes of heap per idle socket", per)
	if per > maxPerSocket {
		t.Errorf("an idle socket holds %.0f bytes of heap, want at most %d", per, maxPerSocket)
	}
	runtime.KeepAlive(conns)
}

// A server that floods a chat while the store is slow is read only as far
// as the bound of events waiting for their dispatch (maxQueued): the reader
// then waits, so the flood waits in the socket's buffers, not in memory.
func TestFloodWaitsForSlowSink(t *testing.T) {
	t.Parallel()
	const flood = 4 * maxQueued
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		p.expect(ctx, "Connect")
		p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"s1"}}`)
		p.expect(ctx, "Hello")
		p.write(ctx, `{"EventName":"accepted","ChatUid":"u1","Data":""}`)
		for i := range flood {
			p.write(ctx, fmt.Sprintf(`{"EventName":"newline","ChatUid":"u1","Data":{"Classname":"lineo","Content":"line %d"}}`, i))
		}
	})
	v, sk := rawVendor(t, wsURL(srv), nil, false)
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sk.mu.Lock()
	sk.onEvent = func(e connector.Event) {
		if e.Type == connector.EventText {
			once.Do(func() { close(blocked) })
			<-release
		}
	}
	sk.mu.Unlock()
	c := conversation(connector.Profile{})
	if _, err := v.Open(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	<-blocked
	v.mu.Lock()
	sock, _ := v.sessions[c.ID].current()
	v.mu.Unlock()
	// The reader is done once it waits outside Read (an even count) and
	// stays there; it reads at most maxQueued beyond the event being held.
	waitFor(t, "the reader to wait for the slow sink", func() bool {
		r := sock.Reads()
		time.Sleep(50 * time.Millisecond)
		return r%2 == 0 && sock.Reads() == r
	})
	if frames := sock.Reads() / 2; frames > maxQueued+3 {
		t.Errorf("%d frames read while the sink held the first line, want at most %d", frames, maxQueued+3)
	}
	close(release)
	sk.wait(t, "the last line", func(e connector.Event) bool { return e.Text == fmt.Sprintf("line %d", flood-1) })
	if n := len(sk.of(connector.EventText)); n != flood {
		t.Errorf("%d lines relayed, want %d", n, flood)
	}
}
