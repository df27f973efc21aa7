package cobrowser

import (
	"bufio"
	"context"
	"net"
	"regexp"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
)

// pipeStream is a stream whose server is the other end of a pipe: answer
// says whether it answers our pings.
func pipeStream(t *testing.T, answer bool) *stream {
	t.Helper()
	ours, theirs := net.Pipe()
	st := &stream{out: ours, closer: ours, log: zap.NewNop(), writeTimeout: time.Second, domain: "xmpp.test",
		nonce: "test", waiters: map[string]chan error{}, done: make(chan struct{})}
	t.Cleanup(func() { st.close(); theirs.Close() })
	go func() {
		idRE := regexp.MustCompile(`id="([^"]+)"`)
		r := bufio.NewReader(theirs)
		for {
			b, err := r.ReadBytes('>')
			if err != nil {
				return
			}
			if m := idRE.FindSubmatch(b); m != nil && answer {
				st.answered(inbound{Kind: "iq", Type: "result", ID: string(m[1])})
			}
		}
	}()
	return st
}

// One keepalive per vendor pings every stream: one that answers is kept,
// one that does not is dropped.
func TestKeepaliveDropsSilentStream(t *testing.T) {
	g := connector.NewGroup()
	defer g.Stop(context.Background())
	k := keepalive.NewTimeout(20*time.Millisecond, 2*time.Second, g)
	alive, silent := pipeStream(t, true), pipeStream(t, false)
	if !k.Add(alive) || !k.Add(silent) {
		t.Fatal("keepalive refused a stream")
	}
	waitFor(t, "the silent stream dropped", silent.isClosed)
	if alive.isClosed() {
		t.Error("the stream that answers was dropped")
	}
	k.Remove(alive)
	k.Remove(silent)
}
