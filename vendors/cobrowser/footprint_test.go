package cobrowser

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/connectord/connectord/connector/wsock/wsocktest"
)

// An idle live chat costs one goroutine: its reader. Events are handed over
// by a goroutine that lives only while there are stanzas, the server's
// pings are answered on short-lived ones, and the vendor's keepalive pings
// every stream from one ticker.
func TestIdleChatGoroutines(t *testing.T) {
	for _, transport := range []string{"ws", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			const chats, slack = 10, 3
			h := newHarness(t, transport, map[string]string{"ping_interval": `"500ms"`})
			h.open(conversation()) // the REST connection and the keepalive's ticker are there from now on
			g0 := runtime.NumGoroutine()
			for range chats {
				h.open(conversation())
			}
			// Poll: the server's pings make short-lived goroutines come and go.
			extra := 0
			waitFor(t, "one goroutine per idle chat", func() bool {
				extra = runtime.NumGoroutine() - g0
				return extra <= chats+slack
			})
			t.Logf("%d chats: %d more goroutines", chats, extra)
		})
	}
}

// An idle WebSocket stream, logged in, holds little heap: the WebSocket
// library's read buffer is small and its write buffer is lent for one
// message (coder/websocket, used before, kept 4 KiB of each per socket, and
// net/http's handshake connection 8 KiB more), and the XMPP library's
// session is let go after the login (it held about 13 KiB a stream).
func TestIdleStreamHeap(t *testing.T) {
	const streams, maxPerStream = 100, 6 << 10
	h := newHarness(t, "ws", nil)
	logins := make([]login, streams)
	for i := range logins {
		user := fmt.Sprintf("heap%d-%d", nextConversation.Add(1), i)
		h.ej.Register(t, user+"@"+h.ej.Domain, "secret")
		logins[i] = login{Local: user, Domain: h.ej.Domain, Resource: "r", Password: "secret"}
	}
	sts := make([]*stream, 0, streams)
	defer func() {
		for _, st := range sts {
			st.close()
		}
	}()
	dctx := ctx(t) // one: each call of ctx keeps a context and a cleanup
	before := wsocktest.HeapInUse()
	for _, l := range logins {
		st, err := h.v.dial(dctx, l, h.v.log)
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	per := float64(wsocktest.HeapInUse()-before) / streams
	t.Logf("%.0f bytes of heap per idle stream", per)
	if per > maxPerStream {
		t.Errorf("an idle stream holds %.0f bytes of heap, want at most %d", per, maxPerStream)
	}
	runtime.KeepAlive(sts)
}

// An idle live chat, logged in and past its first server pings, holds at
// most maxHeap of heap. The XMPP library's session, with its 4 KiB decoder
// and encoder buffers, is let go after the login: about 25 KB of heap per
// chat over ws:// and 30 KB over TCP while it was kept (about 11 and 15 KB
// without; TLS keeps its own buffers and ciphers). Stacks are left out: the
// race detector doubles them (TestIdleChatGoroutines counts the goroutines).
func TestIdleChatHeap(t *testing.T) {
	const chats = 100
	for _, tc := range []struct {
		transport string
		maxHeap   uint64
	}{{"ws", 16 << 10}, {"tcp", 22 << 10}} {
		t.Run(tc.transport, func(t *testing.T) {
			f := openLive(t, needPeer(t), tc.transport, chats)
			per := (f.live - f.stack) / chats
			t.Logf("%d bytes of heap per idle chat, and %d of stack", per, f.stack/chats)
			if per > tc.maxHeap {
				t.Errorf("an idle chat holds %d bytes of heap, want at most %d", per, tc.maxHeap)
			}
		})
	}
}
