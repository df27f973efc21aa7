package cobrowser

import (
	"runtime"
	"testing"
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
