package centiontest

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor bounds every wait of these tests: a signal that does not come
// within it is a failure, never a "nothing happened" check.
const waitFor = 5 * time.Second

// frame is a server frame as a test reads it.
type frame struct {
	Event string            `json:"event"`
	Args  []json.RawMessage `json:"args"`
}

// arg decodes args[0] into v.
func (f frame) arg(t *testing.T, v any) {
	t.Helper()
	if len(f.Args) == 0 {
		t.Fatalf("%s: no args", f.Event)
	}
	if err := json.Unmarshal(f.Args[0], v); err != nil {
		t.Fatalf("%s args[0]: %v", f.Event, err)
	}
}

// batch decodes a CHAT_NEW_MESSAGE (or document "chat message") frame.
func (f frame) batch(t *testing.T) []wireMessage {
	t.Helper()
	switch f.Event {
	case evNewMessage:
		var b sdkBatch
		f.arg(t, &b)
		return b.Messages
	case evChatMessage:
		var b docBatch
		f.arg(t, &b)
		return b.Chat
	}
	t.Fatalf("got %s, want a batch", f.Event)
	return nil
}

// client is a raw WebSocket client of the fake, as a test drives it.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan frame
	done   chan struct{} // closed when the reader stops
	err    error         // the reader's error, set before done closes
	id     int
	pings  atomic.Int64 // server pings received
	// firstPing is when the first server ping came, in unix nanoseconds.
	firstPing atomic.Int64
}

// dial connects with token and the server's Origin.
func dial(t *testing.T, s *Server, token string) *client {
	t.Helper()
	c, _, err := tryDial(t, s.WebSocketURL(token), s.Origin())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialNoPong connects a client that never answers the server's pings.
func dialNoPong(t *testing.T, s *Server, token string) *client {
	t.Helper()
	c, _, err := dialWith(t, s.WebSocketURL(token), s.Origin(), false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryDial(t *testing.T, url, origin string) (*client, *http.Response, error) {
	return dialWith(t, url, origin, true)
}

func dialWith(t *testing.T, url, origin string, pong bool) (*client, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c := &client{t: t, frames: make(chan frame, 100), done: make(chan struct{})}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h,
		OnPingReceived: func(context.Context, []byte) bool {
			if c.pings.Add(1) == 1 {
				c.firstPing.Store(time.Now().UnixNano())
			}
			return pong
		}})
	if err != nil {
		return nil, resp, err
	}
	c.ws = ws
	go c.read()
	t.Cleanup(func() {
		ws.CloseNow()
		<-c.done
	})
	return c, resp, nil
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, p, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(p, &f); err != nil {
			c.err = err
			return
		}
		c.frames <- f
	}
}

// send writes a client frame with the next frame id.
func (c *client) send(typ string, data any) {
	c.t.Helper()
	c.id++
	b, err := json.Marshal(map[string]any{"type": typ, "data": data, "id": c.id})
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(websocket.MessageText, b)
}

func (c *client) raw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next server frame.
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		c.t.Fatalf("socket ended: %v", c.err)
	case <-time.After(waitFor):
		c.t.Fatal("no frame within", waitFor)
	}
	return frame{}
}

// expect returns the next frame, failing unless it is event.
func (c *client) expect(event string) frame {
	c.t.Helper()
	f := c.next()
	if f.Event != event {
		c.t.Fatalf("got event %q (%s), want %q", f.Event, f.Args, event)
	}
	return f
}

// ended waits for the socket to end and returns the reader's error.
func (c *client) ended() error {
	c.t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.done:
			return c.err
		case <-time.After(waitFor):
			c.t.Fatal("socket still open after", waitFor)
			return nil
		}
	}
}

func (c *client) register(name, question string, area int) session {
	c.t.Helper()
	c.send(frameRegister, map[string]any{"area": area, "name": name, "email": name + "@example.com",
		"phone": "", "message": question, "externalData": "", "baseURL": "https://x/s/demo",
		"offlineChat": false, "trackClientUrl": true})
	var sess session
	c.expect(evRegister).arg(c.t, &sess)
	if sess.SessionID == 0 || sess.SessionSecret == "" {
		c.t.Fatalf("register answered %+v", sess)
	}
	return sess
}

func (c *client) line(umid, text string, mcount int) {
	c.t.Helper()
	c.send(frameMessage, map[string]any{"id": umid, "message": text, "mcount": mcount})
}

// resume sends resume and returns args[0] of the register answer.
func (c *client) resume() map[string]any {
	c.t.Helper()
	c.send(frameResume, map[string]any{"href": "", "trackClientUrl": true})
	var a map[string]any
	c.expect(evRegister).arg(c.t, &a)
	return a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// texts returns the text of each message.
func texts(ms []wireMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}
