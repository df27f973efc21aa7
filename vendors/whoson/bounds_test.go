package whoson

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// heapPeak samples the heap in use until the returned stop is called, which
// returns the peak growth over the heap at the start, in bytes.
func heapPeak() (stop func() uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		if peak < base {
			return 0
		}
		return peak - base
	}
}

// TestHandshakeFloodBounded: a server that floods the Connect handshake with
// events is dropped once the backlog is full, by bytes (large events) or by
// count (small ones), well before connect_timeout, with the heap bounded;
// the attempt is an error to retry. A short burst is still taken. Not
// parallel: it measures the heap.
func TestHandshakeFloodBounded(t *testing.T) {
	srv, err := whosontest.New(whosontest.Config{Operator: whosontest.Operator{Name: "Alice"}, APIKey: testServerKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h := &harness{t: t, srv: srv}
	v, sk := h.vendorAt(func() map[string]string {
		k := baseKeys(srv.URL())
		// Long enough for a loaded machine: the error, not the time, tells
		// a flood cut by the bound (errFlooded) from one the handshake's
		// deadline ended.
		k["connect_timeout"] = `"10s"`
		return k
	}(), false)

	for _, tc := range []struct {
		name      string
		size      int
		maxFrames int64 // written by the server: the backlog, the reader's queue and socket buffers
	}{
		{"large events", 64 << 10, 200},
		{"small events", 16, 50000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetFlood(whosontest.Flood{Events: -1, Size: tc.size})
			before := srv.Flooded()
			stop := heapPeak()
			start := time.Now()
			_, err := v.Open(ctx(t), conversation(connector.Profile{}))
			took := time.Since(start)
			grew := stop()
			written := srv.Flooded() - before
			t.Logf("flood of %d-byte events: dropped after %s, %d events written, heap grew %d KiB",
				tc.size, took, written, grew>>10)
			if !errors.Is(err, errFlooded) || connector.IsPermanent(err) {
				t.Errorf("Open = %v, want a retryable errFlooded", err)
			}
			if grew > 32<<20 {
				t.Errorf("heap grew %d MiB", grew>>20)
			}
			if written > tc.maxFrames {
				t.Errorf("%d events written before the socket was dropped", written)
			}
		})
	}

	srv.SetFlood(whosontest.Flood{Events: maxBacklogEvents / 2})
	c := conversation(connector.Profile{})
	if _, err := v.Open(ctx(t), c); err != nil {
		t.Fatalf("Open after a short burst: %v", err)
	}
	sk.waitType(t, connector.EventJoined)
}

// TestServerTextsClipped: what a server's events put in the store is cut to
// the bounds: an operator line, an agent's name, a field prompt.
func TestServerTextsClipped(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100<<10)
	srv := scripted(t, false, func(ctx context.Context, p *peer) {
		p.expect(ctx, "Connect")
		p.write(ctx, `{"EventName":"connected","ChatUid":null,"Data":{"SessionID":"s1"}}`)
		p.expect(ctx, "Hello")
		p.write(ctx,
			`{"EventName":"accepted","ChatUid":"u1","Data":""}`,
			`{"EventName":"operatorjoined","ChatUid":"u1","Data":{"Name":"`+long+`"}}`,
			`{"EventName":"newline","ChatUid":"u1","Data":{"Classname":"lineo","Content":"`+long+`"}}`,
			`{"EventName":"requestfield","ChatUid":"u1","Data":{"FieldName":"F","Prompt":"`+long+`"}}`,
			`{"EventName":"quit","ChatUid":"u1","Data":""}`,
		)
		for {
			if _, _, err := p.ws.Read(ctx); err != nil {
				return
			}
		}
	})
	v, sk := rawVendor(t, wsURL(srv), nil, false)
	if _, err := v.Open(ctx(t), conversation(connector.Profile{})); err != nil {
		t.Fatal(err)
	}
	sk.waitType(t, connector.EventEnded)
	for _, e := range sk.all() {
		limit := map[connector.EventType]int{connector.EventJoined: maxAgentName,
			connector.EventText: maxLineText, connector.EventNotice: maxNoticeText}[e.Type]
		if n := len(e.Agent) + len(e.Text); limit > 0 && (n > limit || n < limit/2 || !utf8.ValidString(e.Agent+e.Text)) {
			t.Errorf("%s event with %d bytes of text, bound %d", e.Type, n, limit)
		}
	}
}
