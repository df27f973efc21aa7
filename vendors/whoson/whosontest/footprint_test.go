package whosontest

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"testing"

	"github.com/coder/websocket"
)

// BenchmarkChatFootprint opens b.N chats with live sockets and reports what
// each costs the server: goroutines and in-use memory (heap and stacks),
// less what the clients in the same process cost (measured the same way
// with the server idle). A benchmark of the daemon holds 20,000 at once.
func BenchmarkChatFootprint(b *testing.B) {
	s, err := New(Config{Operator: Operator{Name: "Alice", Reply: func(t string) string { return t }}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	ctx := context.Background()
	before, stack0 := inUse()
	g0 := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, 0, b.N)
	for i := range b.N {
		ws, _, err := websocket.Dial(ctx, s.URL(), &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, ws)
		send := func(name string, p ...string) {
			msg, _ := json.Marshal(map[string]any{"Command": name, "Parameters": p})
			if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
				b.Fatal(err)
			}
		}
		send("Connect", DefaultAuthString, DefaultDomain, "", "cookie-"+strconv.Itoa(i), "ua", "", "key")
		_, p, err := ws.Read(ctx) // connected
		if err != nil {
			b.Fatal(err)
		}
		var ev struct{ Data struct{ SessionID string } }
		json.Unmarshal(p, &ev)
		send("Hello", "V", DefaultDomain, "", "", ev.Data.SessionID, "", "", "en", "false", "")
		for range 3 { // accepted, paging line, operatorjoined
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	after, stack1 := inUse()
	b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(b.N), "goroutines/chat")
	b.ReportMetric(float64(after-before)/float64(b.N), "B/chat")
	b.ReportMetric(float64(stack1-stack0)/float64(b.N), "stack-B/chat")
	for _, ws := range conns {
		ws.CloseNow()
	}
}

// inUse returns the heap and stack memory in use after a collection, and
// the stacks alone.
func inUse() (all, stacks uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, m.StackInuse
}
