package whosontest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// eventTimeout bounds every wait for an event in tests.
const eventTimeout = 5 * time.Second

// gotEvent is one server frame as a client decodes it.
type gotEvent struct {
	EventName string
	ChatUid   *string
	Data      json.RawMessage
}

// uid returns the ChatUid, "<null>" for null.
func (e gotEvent) uid() string {
	if e.ChatUid == nil {
		return "<null>"
	}
	return *e.ChatUid
}

// String summarises an event: "name: text" for string Data, "newline class:
// content" for lines, the name alone otherwise.
func (e gotEvent) String() string {
	var s string
	if json.Unmarshal(e.Data, &s) == nil {
		return e.EventName + ": " + s
	}
	var l newLine
	if e.EventName == evNewLine && json.Unmarshal(e.Data, &l) == nil {
		return "newline " + l.Classname + ": " + l.Content
	}
	return e.EventName
}

// client is a raw test client: a goroutine reads every frame (which also
// answers pings) into events.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	events  chan gotEvent
	done    chan struct{}
	readErr error // valid after done is closed
	sid     string
}

// dial connects to s with optional headers, failing the test on error.
func dial(t *testing.T, s *Server, header http.Header) *client {
	t.Helper()
	c, resp, err := tryDial(t, s, header)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	return c
}

// tryDial connects to s with optional headers.
func tryDial(t *testing.T, s *Server, header http.Header) (*client, *http.Response, error) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, s.URL(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, ws: ws, events: make(chan gotEvent, 100), done: make(chan struct{})}
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
			c.readErr = err
			close(c.events)
			return
		}
		var ev gotEvent
		if err := json.Unmarshal(p, &ev); err != nil {
			c.t.Errorf("undecodable event %s: %v", p, err)
			continue
		}
		c.events <- ev
	}
}

// sendRaw sends one text frame.
func (c *client) sendRaw(text string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends a command.
func (c *client) send(name string, params ...string) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"Command": name, "Parameters": params})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// next returns the next event, failing the test after eventTimeout or if
// the socket ended.
func (c *client) next() gotEvent {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("socket ended: %v", c.readErr)
		}
		return ev
	case <-time.After(eventTimeout):
		c.t.Fatal("no event")
	}
	panic("unreachable")
}

// nextN returns the summaries of the next n events.
func (c *client) nextN(n int) []string {
	c.t.Helper()
	var out []string
	for range n {
		out = append(out, c.next().String())
	}
	return out
}

// ended waits for the socket to end and returns the read error.
func (c *client) ended() error {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return c.readErr
			}
		case <-time.After(eventTimeout):
			c.t.Fatal("socket still open")
		}
	}
}

// connect sends Connect with the default credentials, the given cookie and
// extra parameters after the API key, and returns the connected event.
func (c *client) connect(cookie string, extra ...string) gotEvent {
	c.t.Helper()
	params := append([]string{DefaultAuthString, DefaultDomain, "", cookie, "test-agent", "", "key"}, extra...)
	c.send("Connect", params...)
	ev := c.next()
	if ev.EventName != evConnected {
		c.t.Fatalf("Connect answered %s, want connected", ev)
	}
	var d connectedData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		c.t.Fatal(err)
	}
	c.sid = d.SessionID
	return ev
}

// hello sends Hello as visitor "Thomas" with the given survey XML.
func (c *client) hello(fields string) {
	c.t.Helper()
	c.send("Hello", "Thomas", DefaultDomain, "Sales", "", c.sid, "", "", "en", "false", fields)
}

// accepted sends Hello and returns the ChatUid of the accepted event.
func (c *client) accepted() string {
	c.t.Helper()
	c.hello("")
	ev := c.next()
	if ev.EventName != evAccepted {
		c.t.Fatalf("Hello answered %s, want accepted", ev)
	}
	if got := c.next().String(); got != "newline pagingmessage: "+pagingText {
		c.t.Fatalf("after accepted: %s", got)
	}
	return ev.uid()
}

// message sends a visitor line.
func (c *client) message(text string) {
	c.t.Helper()
	c.send("Message", c.sid, DefaultDomain, text)
}

// newServer starts a server closed at the end of the test.
func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// echo is an operator answering "echo: " + the line.
func echo() Operator {
	return Operator{Name: "Alice", Reply: func(s string) string { return fmt.Sprintf("echo: %s", s) }}
}
