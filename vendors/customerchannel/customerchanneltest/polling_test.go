package customerchanneltest

// A minimal Socket.IO client over HTTP long-polling (Engine.IO 3 and 4), only to check the
// simulator's socket side here. The real client lives in vendors/customerchannel/sio.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"
)

type event struct {
	Name string
	Args []json.RawMessage
}

type pollClient struct {
	t      *testing.T
	url    string // .../socket.io/?EIO=N&transport=polling&sid=...
	eio    int
	events chan event
	closed chan struct{} // closed when the server ends the session
	ctx    context.Context
	cancel context.CancelFunc
	postMu sync.Mutex // Engine.IO refuses overlapping POSTs
	// waiting is true while a GET has been written and its answer has not come: only then
	// does cutting every TCP connection end the session (see killUntilGone).
	waiting atomic.Bool
}

func dialPolling(t *testing.T, s *Server) *pollClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &pollClient{t: t, eio: s.EIO, events: make(chan event, 100), closed: make(chan struct{}), ctx: ctx, cancel: cancel}
	base := fmt.Sprintf("%s/socket.io/?EIO=%d&transport=polling", s.URL, s.EIO)
	packets, err := c.get(base)
	if err != nil || len(packets) == 0 || packets[0][0] != '0' {
		t.Fatalf("handshake: %q %v", packets, err)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(packets[0][1:]), &open); err != nil {
		t.Fatalf("open packet %q: %v", packets[0], err)
	}
	c.url = base + "&sid=" + open.Sid
	if s.EIO == 4 { // Socket.IO 3+ clients connect to the namespace explicitly
		c.post("40")
	}
	go c.loop(packets[1:])
	t.Cleanup(func() {
		c.cancel()
	})
	return c
}

func (c *pollClient) loop(first []string) {
	defer close(c.closed)
	packets := first
	for {
		for _, p := range packets {
			switch {
			case p == "2": // Engine.IO 4 ping from the server
				c.post("3")
			case p == "1" || p == "41": // close / Socket.IO disconnect
				return
			case strings.HasPrefix(p, "42"):
				var arr []json.RawMessage
				if err := json.Unmarshal([]byte(p[2:]), &arr); err != nil || len(arr) == 0 {
					c.t.Errorf("bad event packet %q", p)
					continue
				}
				var name string
				_ = json.Unmarshal(arr[0], &name)
				select {
				case c.events <- event{Name: name, Args: arr[1:]}:
				default:
					c.t.Errorf("event buffer full, dropped %q", p)
				}
			}
		}
		var err error
		packets, err = c.get(c.url)
		if err != nil {
			return
		}
	}
}

func (c *pollClient) get(url string) ([]string, error) {
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { c.waiting.Store(true) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(c.ctx, trace), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	c.waiting.Store(false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %d %s", resp.StatusCode, data)
	}
	return decodePayload(c.eio, string(data))
}

func (c *pollClient) post(packet string) {
	c.postMu.Lock()
	defer c.postMu.Unlock()
	body := packet
	if c.eio == 3 {
		body = strconv.Itoa(len(utf16.Encode([]rune(packet)))) + ":" + packet
	}
	req, _ := http.NewRequestWithContext(c.ctx, http.MethodPost, c.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if c.ctx.Err() == nil {
			c.t.Errorf("POST %q: %v", packet, err)
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// decodePayload splits a polling payload: Engine.IO 4 separates packets with \x1e, Engine.IO 3
// prefixes each with its length in UTF-16 code units and a colon.
func decodePayload(eio int, s string) ([]string, error) {
	if eio == 4 {
		return strings.Split(s, "\x1e"), nil
	}
	var out []string
	for s != "" {
		i := strings.IndexByte(s, ':')
		if i <= 0 {
			return nil, fmt.Errorf("bad EIO3 payload %q", s)
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return nil, fmt.Errorf("bad EIO3 payload %q", s)
		}
		rest := []rune(s[i+1:])
		units, j := 0, 0
		for j < len(rest) && units < n {
			units += len(utf16.Encode(rest[j : j+1]))
			j++
		}
		out = append(out, string(rest[:j]))
		s = string(rest[j:])
	}
	return out, nil
}

func (c *pollClient) emit(name string, arg any) {
	data, _ := json.Marshal([]any{name, arg})
	c.post("42" + string(data))
}

// next returns the next event, failing the test after 5 s.
func (c *pollClient) next(want string) event {
	c.t.Helper()
	select {
	case e := <-c.events:
		if want != "" && e.Name != want {
			c.t.Fatalf("event %s %s, want %s", e.Name, e.Args, want)
		}
		return e
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no %s event within 5 s", want)
		return event{}
	}
}

func (c *pollClient) nextMessage() Message {
	c.t.Helper()
	e := c.next("messageArrived")
	var m Message
	if len(e.Args) != 1 || json.Unmarshal(e.Args[0], &m) != nil {
		c.t.Fatalf("messageArrived %s", e.Args)
	}
	return m
}

func TestSocket(t *testing.T) {
	eios(t, func(t *testing.T, s *Server) {
		ctx := ctxT(t)
		if err := s.AutoAgent(ctx, AutoAgent{Name: "Alice", Greeting: "Hello!", Echo: true, Whisper: true, JoinDelay: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		c := dialPolling(t, s)
		c.emit("registerConnector", map[string]string{"id": "sms", "name": "SMS Connector", "channel": "sms"})
		if err := s.WaitFor(ctx, func(st State) bool { return len(st.Connectors) == 1 && st.Connectors[0].Connected }); err != nil {
			t.Fatal(err)
		}

		r := initChat(t, s, `{"firstName":"Ann","channel":"sms","refId":"+41790000000"}`)
		// A JSON string payload is accepted as well as an object.
		join, _ := json.Marshal(map[string]string{"conversationId": r.ConversationID, "id": r.Participant.ID, "name": "Ann"})
		c.emit("joinConversation", string(join))
		if m := c.nextMessage(); m.Type != "ActivityMessage" || m.ActivityType != "greetings" || m.ConversationID != r.ConversationID {
			t.Errorf("first message %+v, want greetings", m)
		}
		var info struct {
			Conversation struct{ ID string }
			Messages     []Message
			Participants []map[string]string
			Role         string
		}
		if e := c.next("conversationInfo"); json.Unmarshal(e.Args[0], &info) != nil || info.Conversation.ID != r.ConversationID || len(info.Messages) != 0 || info.Role != "customer" {
			t.Errorf("conversationInfo %s", e.Args)
		}
		if m := c.nextMessage(); m.ActivityType != "participantJoined" || m.From.Name != "Alice" || !strings.HasPrefix(m.From.ID, "agent-") {
			t.Errorf("agent join %+v", m)
		}
		if m := c.nextMessage(); m.Type != "ChatMessage" || m.Text != "Hello!" {
			t.Errorf("greeting %+v", m)
		}

		c.emit("sendMessage", map[string]any{"type": "ActivityMessage", "conversationId": r.ConversationID, "activityType": "typing", "from": r.Participant, "info": map[string]bool{"typing": true}})
		c.emit("sendMessage", map[string]any{"type": "ChatMessage", "conversationId": r.ConversationID, "from": r.Participant, "text": "hi"})
		if m := c.nextMessage(); m.Text != "hi" || m.From.ID != r.Participant.ID || m.ID == "" {
			t.Errorf("own echo %+v", m)
		}
		if m := c.nextMessage(); m.Text != "whisper: hi" || m.Tag != "whisper" {
			t.Errorf("whisper %+v", m)
		}
		if m := c.nextMessage(); m.Text != "echo: hi" || m.Tag != "" {
			t.Errorf("echo %+v", m)
		}

		// Scripted agent actions.
		if err := s.Agent(ctx, AgentAction{ConversationID: r.ConversationID, Action: "typing", Typing: true}); err != nil {
			t.Fatal(err)
		}
		if m := c.nextMessage(); m.ActivityType != "typing" || m.Info["typing"] != true {
			t.Errorf("typing %+v", m)
		}
		if err := s.Agent(ctx, AgentAction{ConversationID: r.ConversationID, Action: "raw", Payload: "{garbage"}); err != nil {
			t.Fatal(err)
		}
		if e := c.next("messageArrived"); string(e.Args[0]) != `"{garbage"` {
			t.Errorf("raw %s", e.Args)
		}

		// Campaign to the sms connector; none to another channel.
		id, err := s.Campaign(ctx, "+41791111111", "sale", "", "sms")
		if err != nil {
			t.Fatal(err)
		}
		if m := c.nextMessage(); m.ID != id || m.RefID != "+41791111111" || m.From.ID != "campaign" || m.ConversationID == r.ConversationID {
			t.Errorf("campaign %+v", m)
		}
		if _, err := s.Campaign(ctx, "+41791111111", "x", "", "slack"); err != nil {
			t.Fatal(err)
		}

		// Unknown conversation.
		c.emit("joinConversation", map[string]string{"conversationId": "nope", "id": "x"})
		if e := c.next("simError"); !strings.Contains(string(e.Args[0]), "unknownConversation") {
			t.Errorf("simError %s", e.Args)
		}

		// A second client (a rejoin after a reconnect) gets the history replayed.
		c2 := dialPolling(t, s)
		c2.emit("joinConversation", map[string]string{"conversationId": r.ConversationID, "id": r.Participant.ID, "name": "Ann"})
		c2.next("messageArrived")
		if e := c2.next("conversationInfo"); json.Unmarshal(e.Args[0], &info) != nil || len(info.Messages) != 4 {
			t.Errorf("replay %s", e.Args)
		} else {
			var texts []string
			for _, m := range info.Messages {
				texts = append(texts, m.Text)
			}
			if got := strings.Join(texts, "|"); got != "Hello!|hi|whisper: hi|echo: hi" {
				t.Errorf("replayed %s", got)
			}
		}

		c.emit("endConversation", map[string]string{"conversationId": r.ConversationID})
		if m := c.nextMessage(); m.ActivityType != "endOfConversation" {
			t.Errorf("end %+v", m)
		}
		st, err := s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conv := st.Conversation(r.ConversationID)
		if conv == nil || !conv.Ended || len(conv.Activities) != 1 || len(conv.JoinedBy) != 2 || len(conv.Messages) != 4 {
			t.Errorf("conversation %+v", conv)
		}
		if len(st.Campaigns) != 2 || len(st.Campaigns[0].DeliveredTo) != 1 || len(st.Campaigns[1].DeliveredTo) != 0 {
			t.Errorf("campaigns %+v", st.Campaigns)
		}
		status, h, body := call(t, http.MethodGet, s.URL+"/api/customer/transcript/"+r.ConversationID+"/pdf", "")
		if status != 200 || h.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(body), "%PDF-") {
			t.Errorf("pdf transcript %d %s %q", status, h.Get("Content-Type"), body)
		}
		if status, _, body := call(t, http.MethodGet, s.URL+"/api/customer/transcript/"+r.ConversationID+"/email", ""); status != 200 || len(body) != 0 {
			t.Errorf("email transcript %d %q", status, body)
		}

		// Drop: the server disconnects both clients.
		if err := s.Drop(ctx, "disconnect"); err != nil {
			t.Fatal(err)
		}
		for _, cl := range []*pollClient{c, c2} {
			select {
			case <-cl.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("client not disconnected by Drop")
			}
		}
		if err := s.WaitFor(ctx, func(st State) bool { return len(st.Connected) == 0 && !st.Connectors[0].Connected }); err != nil {
			t.Error(err)
		}
		if st, _ := s.State(ctx); st.Connections != 2 {
			t.Errorf("connections %d, want 2", st.Connections)
		}
	})
}

func TestAgentActionsAndDrops(t *testing.T) {
	eios(t, func(t *testing.T, s *Server) {
		ctx := ctxT(t)
		for _, mode := range []string{"close", "kill"} {
			c := dialPolling(t, s)
			r := initChat(t, s, `{"firstName":"Ann","channel":"web"}`)
			c.emit("joinConversation", map[string]string{"conversationId": r.ConversationID, "id": r.Participant.ID, "name": "Ann"})
			c.next("messageArrived")
			c.next("conversationInfo")
			act := func(a AgentAction) {
				t.Helper()
				a.ConversationID = r.ConversationID
				if err := s.Agent(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			act(AgentAction{Action: "join", Name: "Bob"})
			if m := c.nextMessage(); m.ActivityType != "participantJoined" || m.From.Name != "Bob" || m.Info["participant"] == nil {
				t.Errorf("join %+v", m)
			}
			act(AgentAction{Action: "say", Text: "look", Attachments: []Attachment{{Type: "image/png", Name: "a.png", ContentURL: "http://x/a.png"}}})
			if m := c.nextMessage(); m.Text != "look" || m.From.Name != "Bob" || len(m.Attachments) != 1 || m.Attachments[0].ContentURL != "http://x/a.png" {
				t.Errorf("say %+v", m)
			}
			act(AgentAction{Action: "whisper", Text: "psst"})
			if m := c.nextMessage(); m.Tag != "whisper" || m.Text != "psst" {
				t.Errorf("whisper %+v", m)
			}
			act(AgentAction{Action: "transfer", Name: "Carol"})
			if m := c.nextMessage(); m.ActivityType != "participantLeft" || m.From.Name != "Bob" {
				t.Errorf("transfer left %+v", m)
			}
			if m := c.nextMessage(); m.ActivityType != "participantJoined" || m.From.Name != "Carol" {
				t.Errorf("transfer joined %+v", m)
			}
			act(AgentAction{Action: "noagent"})
			if m := c.nextMessage(); m.ActivityType != "noAgentAvailable" {
				t.Errorf("noagent %+v", m)
			}
			act(AgentAction{Action: "activity", ActivityType: "somethingNew", Info: map[string]any{"k": "v"}})
			if m := c.nextMessage(); m.ActivityType != "somethingNew" || m.Info["k"] != "v" {
				t.Errorf("activity %+v", m)
			}
			act(AgentAction{Action: "raw"})
			if e := c.next("messageArrived"); len(e.Args) != 0 {
				t.Errorf("raw without payload %s", e.Args)
			}
			act(AgentAction{Action: "raw", Event: "conversationInfo", Payload: map[string]any{"messages": "not a list"}})
			if e := c.next("conversationInfo"); len(e.Args) != 1 {
				t.Errorf("raw conversationInfo %s", e.Args)
			}
			act(AgentAction{Action: "leave"})
			if m := c.nextMessage(); m.ActivityType != "participantLeft" || m.From.Name != "Carol" {
				t.Errorf("leave %+v", m)
			}
			act(AgentAction{Action: "end"})
			if m := c.nextMessage(); m.ActivityType != "endOfConversation" {
				t.Errorf("end %+v", m)
			}
			if err := s.Agent(ctx, AgentAction{ConversationID: r.ConversationID, Action: "dance"}); err == nil {
				t.Error("unknown action accepted")
			}

			if mode == "kill" {
				killUntilGone(t, s, c)
			} else {
				if err := s.Drop(ctx, mode); err != nil {
					t.Fatal(err)
				}
				if err := s.WaitFor(ctx, func(st State) bool { return len(st.Connected) == 0 }); err != nil {
					t.Fatalf("drop %s: %v", mode, err)
				}
			}
			c.cancel()
		}
		if err := s.Drop(ctx, "explode"); err == nil {
			t.Error("unknown drop mode accepted")
		}
		// Still serving after all that.
		if _, err := s.State(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// killUntilGone cuts every TCP connection until the polling session is gone. A kill ends a
// long-polling session only when it lands while a GET is parked on the server: between two
// polls there is nothing to cut, and the client's next GET simply opens a new connection
// (net/http even retries a GET whose reused connection died before any answer). So each
// round waits for a parked GET, and a round that still misses is tried again; the sockets
// connectord really uses (WebSocket) are cut by the first kill.
func killUntilGone(t *testing.T, s *Server, c *pollClient) {
	t.Helper()
	for round := 1; round <= 5; round++ {
		for deadline := time.Now().Add(5 * time.Second); !c.waiting.Load(); {
			if time.Now().After(deadline) {
				t.Fatal("drop kill: the client never parked a GET")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let the server read the parked GET
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := s.Drop(ctx, "kill")
		if err == nil {
			err = s.WaitFor(ctx, func(st State) bool { return len(st.Connected) == 0 })
		}
		cancel()
		if err == nil {
			return
		}
		t.Logf("drop kill round %d missed the session: %v", round, err)
	}
	t.Fatal("drop kill: the session survived 5 kills")
}
