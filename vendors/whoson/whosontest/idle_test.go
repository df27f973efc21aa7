package whosontest

import (
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/connectord/connectord/connector/wsock/wsocktest"
)

// idleChats is how many chats the idle footprint test holds.
const idleChats = 200

// TestIdleChatFootprint: an idle chat costs the server one goroutine (its
// reader) and a few KiB of heap, not a writer and an operator goroutine and
// a WebSocket library's 4 KiB read and write buffers. A benchmark holds
// 19,000 of them in the process it measures with. The clients are gorilla
// sockets, which have no goroutines of their own; their heap is measured
// against a server that only holds the sockets, and taken off.
func TestIdleChatFootprint(t *testing.T) {
	dialer := &websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, WriteBufferPool: &sync.Pool{}}
	bare := "ws://" + wsocktest.BareServer(t)
	h0 := wsocktest.HeapInUse()
	clients := dialAll(t, dialer, func(int) string { return bare }, nil)
	clientHeap := wsocktest.HeapInUse() - h0
	closeAll(clients)

	s := newServer(t, Config{Operator: Operator{Name: "Alice", Reply: func(t string) string { return t }}})
	h0 = wsocktest.HeapInUse()
	g0 := runtime.NumGoroutine()
	clients = dialAll(t, dialer, func(int) string { return s.URL() }, openChat)
	defer closeAll(clients)

	perChat := func() float64 { return float64(runtime.NumGoroutine()-g0) / idleChats }
	for deadline := time.Now().Add(5 * time.Second); perChat() > 1.2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // writers and operator steps end once their frames are out
	}
	if got := perChat(); got > 1.2 {
		t.Errorf("%.2f goroutines per idle chat, want at most 1.2", got)
	}
	heap := float64(wsocktest.HeapInUse()-h0-clientHeap) / idleChats
	t.Logf("heap per idle chat %.0f B (clients' %.0f B taken off)", heap, float64(clientHeap)/idleChats)
	if heap > 6<<10 {
		t.Errorf("heap per idle chat %.0f B, want at most 6 KiB", heap)
	}
	if n := len(s.Chats()); n != idleChats {
		t.Errorf("%d chats, want %d", n, idleChats)
	}
}

// dialAll dials idleChats sockets to url(i) and runs open on each.
func dialAll(t *testing.T, d *websocket.Dialer, url func(int) string, open func(testing.TB, *websocket.Conn, int)) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, 0, idleChats)
	for i := range idleChats {
		ws, resp, err := d.Dial(url(i), nil)
		if err != nil {
			closeAll(conns)
			t.Fatalf("dial %d: %v", i, err)
		}
		resp.Body.Close()
		conns = append(conns, ws)
		if open != nil {
			open(t, ws, i)
		}
	}
	return conns
}

// openChat connects and starts chat i, and reads until the operator has joined.
func openChat(t testing.TB, ws *websocket.Conn, i int) {
	t.Helper()
	send := func(name string, p ...string) {
		msg, _ := json.Marshal(map[string]any{"Command": name, "Parameters": p})
		if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
	}
	send("Connect", DefaultAuthString, DefaultDomain, "", "cookie-"+strconv.Itoa(i), "ua", "", "key")
	var ev struct {
		EventName string
		Data      json.RawMessage
	}
	if err := ws.ReadJSON(&ev); err != nil || ev.EventName != evConnected {
		t.Fatalf("chat %d: got %q, %v; want connected", i, ev.EventName, err)
	}
	var data struct{ SessionID string }
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	send("Hello", "V", DefaultDomain, "", "", data.SessionID, "", "", "en", "false", "")
	for ev.EventName != evOperatorJoined {
		if err := ws.ReadJSON(&ev); err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
	}
}

func closeAll(conns []*websocket.Conn) {
	for _, ws := range conns {
		ws.Close()
	}
}
