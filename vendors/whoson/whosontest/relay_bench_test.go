package whosontest

import (
	"encoding/json"
	"sync"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkLineRoundTrip relays visitor lines through one chat: each
// Message is echoed (linesays, linev) and answered (typing, linesays,
// lineo, typingstop), six frames the server writes. It reports the process's CPU per line (client and server both) alongside
// the wall time.
func BenchmarkLineRoundTrip(b *testing.B) {
	s, err := New(Config{Operator: Operator{Name: "Alice", Reply: func(t string) string { return t }}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	dialer := &websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{}}
	ws, resp, err := dialer.Dial(s.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	openChat(b, ws, 0)
	var sid string
	for _, c := range s.Commands() {
		if c.Name == "Hello" {
			sid = c.Parameters[4]
		}
	}
	msg, _ := json.Marshal(map[string]any{"Command": "Message", "Parameters": []string{sid, "", "hello there"}})
	var ev struct{ EventName string }
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		for ev.EventName = ""; ev.EventName != evTypingStop; {
			if err := ws.ReadJSON(&ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/line")
}

// cpuTime is the process's user and system CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
