package sio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawEIO4Server is a bare Engine.IO 4 / Socket.IO 5 server over
// coder/websocket, for hostile behaviour: it never pings, and its writes
// block when the client stops reading, so a flood sits in the network and not
// in this process's memory.
type rawEIO4Server struct {
	url string
	wg  sync.WaitGroup
}

// newRawEIO4Server answers the handshake (open packet, the namespace CONNECT
// with a sid) and then runs behave on the connection while reading and
// dropping whatever the client sends. beforeConnect runs between the open
// packet and the CONNECT answer.
func newRawEIO4Server(t testing.TB, beforeConnect, behave func(ctx context.Context, c *websocket.Conn)) *rawEIO4Server {
	return newRawEIO4ServerReading(t, true, beforeConnect, behave)
}

// newRawEIO4ServerReading is newRawEIO4Server; with read false the server
// reads nothing after the CONNECT.
func newRawEIO4ServerReading(t testing.TB, read bool, beforeConnect, behave func(ctx context.Context, c *websocket.Conn)) *rawEIO4Server {
	t.Helper()
	return newRawEIO4ServerWith(t, `"pingInterval":25000,"pingTimeout":20000`, read, beforeConnect, behave)
}

// newRawEIO4ServerWith is newRawEIO4ServerReading announcing heartbeat
// (`"pingInterval":N,"pingTimeout":M` in ms) in its open packet. It never
// pings.
func newRawEIO4ServerWith(t testing.TB, heartbeat string, read bool, beforeConnect, behave func(ctx context.Context, c *websocket.Conn)) *rawEIO4Server {
	t.Helper()
	s := &rawEIO4Server{}
	stop := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		s.wg.Add(1)
		defer s.wg.Done()
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		open := `0{"sid":"raw","upgrades":[],` + heartbeat + `,"maxPayload":1000000}`
		if c.Write(ctx, websocket.MessageText, []byte(open)) != nil {
			return
		}
		for { // wait for the client's namespace CONNECT
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(data), "40") {
				break
			}
		}
		if beforeConnect != nil {
			beforeConnect(ctx, c)
		}
		if c.Write(ctx, websocket.MessageText, []byte(`40{"sid":"nsp"}`)) != nil {
			return
		}
		if read {
			go func() {
				defer cancel()
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
		}
		if behave != nil {
			behave(ctx, c)
		}
		select { // a hijacked connection's request context outlives it
		case <-ctx.Done():
		case <-stop:
		}
	}))
	s.url = hs.URL
	t.Cleanup(func() {
		close(stop)
		hs.CloseClientConnections()
		hs.Close()
		s.wg.Wait()
	})
	return s
}

// flood writes n events of size bytes each, numbered, counting those written;
// it stops when the connection ends.
func flood(ctx context.Context, c *websocket.Conn, n, size int, written *atomic.Int64) {
	pad := strings.Repeat("x", size)
	for i := range n {
		if c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `42["messageArrived",%d,"%s"]`, i, pad)) != nil {
			return
		}
		written.Add(1)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Flood sizes: 400 events of 64 KiB, 25 MiB in all, more than the buffer's
// 4 MiB bound plus what the kernel's socket buffers hold on loopback.
const (
	floodEvents = 400
	floodSize   = 64 << 10
	// floodHeapBound is what the client may hold while it is stalled: the
	// 4 MiB buffer, a frame being read and its decoded copy, and slack for
	// the runtime. Without the byte bound it held the whole flood.
	floodHeapBound = 16 << 20
)

// testFloodBounded is the regression test for the event buffer's bounds: a
// server floods a client whose consumer does not read. The buffer must stay
// within both bounds, the client's heap must not hold the flood, the server
// must be held back (its writes block), and once the consumer reads, every
// event arrives in order on the same connection: nothing is lost.
func testFloodBounded(t *testing.T, c Client, written *atomic.Int64, before uint64) {
	t.Helper()
	// Wait until the server's writes stall.
	last, still := int64(-1), 0
	for deadline := time.Now().Add(10 * time.Second); still < 5; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never stalled: %d of %d events written", written.Load(), floodEvents)
		}
		if n := written.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	grown := int64(heapInUse()) - int64(before)
	events, bytes := bufferPeaks(c)
	t.Logf("stalled: server wrote %d of %d events; buffer peaked at %d events, %d bytes; heap grew %d KiB",
		last, floodEvents, events, bytes, grown/1024)
	if events > DefaultMaxBufferedEvents || bytes > DefaultMaxBufferedBytes+floodSize+100 {
		t.Errorf("buffer held %d events, %d bytes: over the bounds %d, %d", events, bytes, DefaultMaxBufferedEvents, DefaultMaxBufferedBytes)
	}
	if grown > floodHeapBound {
		t.Errorf("the client's heap grew by %d MiB while stalled (bound %d MiB)", grown>>20, floodHeapBound>>20)
	}
	if last >= floodEvents {
		t.Errorf("the server wrote all %d events: no back-pressure", last)
	}
	for i := range floodEvents {
		ev, err := nextEvent(c, 5*time.Second)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var n int
		if ev.Name != "messageArrived" || len(ev.Args) != 2 || json.Unmarshal(ev.Args[0], &n) != nil || n != i {
			t.Fatalf("event %d: got %s %s", i, ev.Name, clip(fmt.Sprint(ev.Args), 60))
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("the connection ended: %v", c.Err())
	default:
	}
}

func TestEIO3FloodBounded(t *testing.T) {
	var written atomic.Int64
	s := newEIO3Server(t, nil)
	before := heapInUse()
	c := dial3(t, s.url, nil)
	defer c.Close()
	conn := <-s.conns
	go flood(context.Background(), conn, floodEvents, floodSize, &written)
	testFloodBounded(t, c, &written, before)
}

func TestEIO4FloodBounded(t *testing.T) {
	var written atomic.Int64
	s := newRawEIO4Server(t, nil, func(ctx context.Context, c *websocket.Conn) {
		flood(ctx, c, floodEvents, floodSize, &written)
	})
	before := heapInUse()
	c := dial4(t, s.url)
	defer c.Close()
	testFloodBounded(t, c, &written, before)
}

// Events before the namespace connect cannot be pushed back on (nobody
// reads yet): more than the bounds fail the dial instead of piling up.
func TestEIO3FloodBeforeConnect(t *testing.T) {
	s := newEIO3Server(t, func(s *eio3Server) { s.noConnect = true })
	go func() {
		c := <-s.conns // the open packet is out
		for i := range 100 {
			if c.Write(context.Background(), websocket.MessageText, fmt.Appendf(nil, `42["early",%d]`, i)) != nil {
				return
			}
		}
		_ = c.Write(context.Background(), websocket.MessageText, []byte("40"))
	}()
	_, err := Dial(context.Background(), Options{URL: s.url, EIO: 3, ConnectTimeout: 2 * time.Second, MaxBufferedEvents: 10})
	if !errors.Is(err, ErrOverflow) || !errors.Is(err, ErrHandshake) {
		t.Fatalf("err = %v, want ErrHandshake and ErrOverflow", err)
	}
}

func TestEIO4FloodBeforeConnect(t *testing.T) {
	s := newRawEIO4Server(t, func(ctx context.Context, c *websocket.Conn) {
		for i := range 100 {
			if c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `42["early",%d]`, i)) != nil {
				return
			}
		}
	}, nil)
	_, err := Dial(context.Background(), Options{URL: s.url, EIO: 4, ConnectTimeout: 2 * time.Second, MaxBufferedEvents: 10})
	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("err = %v, want ErrOverflow", err)
	}
}

// A server that stops reading: Emit fails with ErrBacklog once
// maxPendingWrites packets or maxPendingBytes wait for the writer, instead of
// queueing every later packet (without the bound the queue fills and Emit
// blocks for ever).
func TestEIO4EmitBacklogBounded(t *testing.T) {
	s := newRawEIO4ServerReading(t, false, nil, nil)
	c := dial4(t, s.url)
	defer c.Close()
	pad := strings.Repeat("y", 64<<10)
	var err error
	sent := 0
	for ; sent < 300; sent++ {
		if err = c.Emit(context.Background(), "sendMessage", pad); err != nil {
			break
		}
		time.Sleep(time.Millisecond) // let the writer take what the socket takes
	}
	if !errors.Is(err, ErrBacklog) {
		t.Fatalf("after %d emits to a server that does not read: err = %v, want ErrBacklog", sent, err)
	}
	t.Logf("ErrBacklog after %d emits of 64 KiB: %v", sent, err)
}
