package sio

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// eio4Server is an in-process Engine.IO 4 / Socket.IO 5 server over
// coder/websocket that behaves as Node socket.io@4 does on the websocket
// transport: open packet, CONNECT answered with a sid (or CONNECT_ERROR when
// refuse is set), a ping every fakePingInterval and the connection dropped
// when the pong does not come within fakePingTimeout; "hello" is answered
// with "reply" carrying the same arguments.
type eio4Server struct {
	hs     *httptest.Server
	ln     *trackingListener
	url    string
	refuse string

	pongs atomic.Int64 // pongs received, all connections

	mu     sync.Mutex
	conns  []*websocket.Conn // connections past the namespace connect
	closed bool
	wg     sync.WaitGroup
}

// The server pings often, so that tests exercise the client's pongs, and
// waits long for a pong: a CPU-starved test binary answers late.
const (
	fakePingInterval = 300 * time.Millisecond
	fakePingTimeout  = 2 * time.Second
)

// startEIO4Server starts the server for one test; refuse, if set, is the
// CONNECT_ERROR message every namespace connect gets.
func startEIO4Server(t testing.TB, refuse string) *eio4Server {
	t.Helper()
	s, err := newEIO4Server(refuse)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func newEIO4Server(refuse string) (*eio4Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &eio4Server{ln: &trackingListener{Listener: l}, refuse: refuse}
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.hs.Listener = s.ln
	s.hs.Start()
	s.url = s.hs.URL
	return s, nil
}

func (s *eio4Server) stop() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.CloseNow()
	}
	s.mu.Unlock()
	s.hs.CloseClientConnections()
	s.hs.Close()
	s.wg.Wait()
}

func (s *eio4Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
		http.Error(w, `{"code":0,"message":"Transport unknown"}`, http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1e6)
	s.wg.Add(1)
	defer s.wg.Done()
	defer c.CloseNow()
	// A hijacked connection's request context outlives it: the context ends
	// when this handler returns.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := fmt.Sprintf(`0{"sid":"fake","upgrades":[],"pingInterval":%d,"pingTimeout":%d,"maxPayload":1000000}`,
		fakePingInterval.Milliseconds(), fakePingTimeout.Milliseconds())
	if c.Write(ctx, websocket.MessageText, []byte(open)) != nil || !s.namespaceConnect(ctx, c) {
		return
	}
	pong := make(chan struct{}, 1)
	go s.heartbeat(ctx, cancel, c, pong)
	s.readLoop(ctx, c, pong)
}

// namespaceConnect waits for the client's CONNECT and answers it; it
// reports whether the client is now connected (and tracked).
func (s *eio4Server) namespaceConnect(ctx context.Context, c *websocket.Conn) bool {
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return false
		}
		if strings.HasPrefix(string(data), "40") {
			break
		}
	}
	if s.refuse != "" {
		_ = c.Write(ctx, websocket.MessageText, []byte(`44{"message":`+string(mustJSON(s.refuse))+`}`))
		_, _, _ = c.Read(ctx) // the client hangs up
		return false
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	return c.Write(ctx, websocket.MessageText, []byte(`40{"sid":"nsp-fake"}`)) == nil
}

// heartbeat pings every fakePingInterval and drops the connection when a
// pong is late, as socket.io@4 does.
func (s *eio4Server) heartbeat(ctx context.Context, cancel context.CancelFunc, c *websocket.Conn, pong <-chan struct{}) {
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(fakePingInterval):
		}
		if c.Write(ctx, websocket.MessageText, []byte("2")) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-pong:
		case <-time.After(fakePingTimeout):
			c.CloseNow() // ping timeout
			return
		}
	}
}

func (s *eio4Server) readLoop(ctx context.Context, c *websocket.Conn, pong chan<- struct{}) {
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		msg := string(data)
		switch {
		case msg == "3":
			s.pongs.Add(1)
			select {
			case pong <- struct{}{}:
			default:
			}
		case msg == "41":
			return // the client left
		case strings.HasPrefix(msg, "42"):
			ev, ok := decodeEvent(msg[2:])
			if ok && ev.Name == "hello" {
				reply, _ := encodeEvent("reply", rawArgs(ev.Args))
				if c.Write(ctx, websocket.MessageText, append([]byte("42"), reply...)) != nil {
					return
				}
			}
		}
	}
}

func rawArgs(args []json.RawMessage) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

// disconnectAll disconnects every client's namespace (DISCONNECT packet,
// then the engine close), as socket.disconnect(true) does.
func (s *eio4Server) disconnectAll() {
	s.mu.Lock()
	conns := append([]*websocket.Conn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Write(context.Background(), websocket.MessageText, []byte("41"))
	}
}
