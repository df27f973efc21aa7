package customerchannel

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// fakeClient is a Socket.IO connection the test plays the server of. Like
// the real server it echoes every ChatMessage sent to it, unless silent (a
// server that takes the frame and dies before storing it).
type fakeClient struct {
	mu      sync.Mutex
	emitted []sio.Event
	events  chan sio.Event
	done    chan struct{}
	closed  bool
	silent  bool
}

func newFakeClient() *fakeClient {
	return &fakeClient{events: make(chan sio.Event, 64), done: make(chan struct{})}
}

func (f *fakeClient) Emit(ctx context.Context, event string, args ...any) error {
	var raw []json.RawMessage
	for _, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		raw = append(raw, b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return sio.ErrClosed
	}
	f.emitted = append(f.emitted, sio.Event{Name: event, Args: raw})
	if event == evSend && !f.silent && len(raw) == 1 && bytes.Contains(raw[0], []byte(`"type":"ChatMessage"`)) {
		select {
		case f.events <- sio.Event{Name: evArrived, Args: raw}:
		default: // a test that fills the buffer does not wait for echoes
		}
	}
	return nil
}
func (f *fakeClient) Events() <-chan sio.Event { return f.events }
func (f *fakeClient) Done() <-chan struct{}    { return f.done }
func (f *fakeClient) Err() error               { return nil }
func (f *fakeClient) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
		close(f.events)
	}
	return nil
}

// names lists the events emitted so far.
func (f *fakeClient) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.emitted {
		out = append(out, e.Name)
	}
	return out
}

// sent decodes the i-th sendMessage emitted.
func (f *fakeClient) sent(t *testing.T, i int) message {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.emitted {
		if e.Name != evSend {
			continue
		}
		if i == 0 {
			var m message
			if err := json.Unmarshal(e.Args[0], &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		i--
	}
	t.Fatalf("fewer sendMessage events than %d", i+1)
	return message{}
}

// server sends an event with a JSON payload to the adapter.
func (f *fakeClient) server(name string, payload string) {
	f.events <- sio.Event{Name: name, Args: []json.RawMessage{json.RawMessage(payload)}}
}

// recorder is the core's side: agent events and vendor-started messages.
type recorder struct {
	mu       sync.Mutex
	events   []connector.Event
	outbound []connector.Outbound
}

func (r *recorder) Event(ctx context.Context, e connector.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) Outbound(ctx context.Context, o connector.Outbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outbound = append(r.outbound, o)
	return nil
}

func (r *recorder) all() ([]connector.Event, []connector.Outbound) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]connector.Event(nil), r.events...), append([]connector.Outbound(nil), r.outbound...)
}

// harness is a vendor against a fake REST server and fake sockets.
type harness struct {
	t       *testing.T
	v       *Vendor
	rec     *recorder
	inits   chan initRequest
	status  int // init's answer
	clients chan *fakeClient
}

func newHarness(t *testing.T) *harness { return newHarnessAt(t, "", 0) }

// newHarnessAt builds the vendor against a real server at url (speaking eio),
// or, with url "", against a fake REST server and fake sockets.
func newHarnessAt(t *testing.T, url string, eio int) *harness {
	return newHarnessWith(t, url, eio, nil)
}

// newHarnessWith is newHarnessAt with extra configuration keys.
func newHarnessWith(t *testing.T, url string, eio int, extra map[string]any) *harness {
	t.Helper()
	h := buildHarness(t, url, eio, extra)
	h.start()
	return h
}

// buildHarness is newHarnessWith without starting the vendor (see start).
func buildHarness(t *testing.T, url string, eio int, extra map[string]any) *harness {
	t.Helper()
	h := &harness{t: t, rec: &recorder{}, inits: make(chan initRequest, 16), status: 200, clients: make(chan *fakeClient, 16)}
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in initRequest
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &in)
		h.inits <- in
		if h.status != 200 {
			w.WriteHeader(h.status)
			return
		}
		io.WriteString(w, `{"conversationId":"conv-1","Participant":{"id":"cust-1","name":"Ann"},"requestId":"`+in.RequestID+`"}`)
	}))
	t.Cleanup(rest.Close)
	cfg := map[string]any{"url": rest.URL, "connector_id": "sms", "connector_name": "connectord SMS",
		"deliver_via": "sms.main", "leave_grace": "100ms", "subject": "Support", "reconnect_max": "500ms"}
	if url != "" {
		cfg["url"], cfg["eio"] = url, eio
	}
	for k, val := range extra {
		cfg[k] = val
	}
	inst := connector.NewInstance("vendors.customerchannel.hub", "customerchannel", "hub", func(v any) error {
		b, _ := toml.Marshal(cfg)
		_, err := toml.Decode(string(b), v)
		return err
	})
	v, err := New(connector.VendorEnv{Instance: inst, Logger: zaptest.NewLogger(t), Sink: h.rec, Outbound: h.rec})
	if err != nil {
		t.Fatal(err)
	}
	v.http = rest.Client()
	if url == "" {
		v.dial = h.fakeDial
	}
	h.v = v
	return h
}

// start starts the vendor, which the test's end stops.
func (h *harness) start() {
	h.t.Helper()
	if err := h.v.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { h.v.Stop(context.Background()) })
}

func (h *harness) fakeDial(ctx context.Context, o sio.Options) (sio.Client, error) {
	c := newFakeClient()
	h.clients <- c
	return c, nil
}

func (h *harness) client() *fakeClient {
	h.t.Helper()
	select {
	case c := <-h.clients:
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatal("no connection")
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func conversation() *connector.Conversation {
	return &connector.Conversation{ID: 7, Channel: "sms.main", Customer: "+15557654321", Vendor: "customerchannel.hub",
		Profile: connector.Profile{Name: "Ann Lee", Email: "ann@example.com"}, CreatedAt: time.Unix(1763900000, 0)}
}

// track has v carry chat s of conversation c, as Open (resumed false) or
// Resume (true) do.
func track(v *Vendor, c *connector.Conversation, s session, resumed bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.trackLocked(c, s, resumed)
}

func (h *harness) open() (*connector.Conversation, *fakeClient) {
	h.t.Helper()
	c := h.client()
	waitFor(h.t, "connected", func() bool { return h.v.Health().Ready })
	conv := conversation()
	raw, err := h.v.Open(context.Background(), conv)
	if err != nil {
		h.t.Fatal(err)
	}
	conv.Session = raw
	return conv, c
}

func TestOpenRegistersInitsAndJoins(t *testing.T) {
	h := newHarness(t)
	conv, c := h.open()
	in := <-h.inits
	want := initRequest{FirstName: "Ann", LastName: "Lee", Email: "ann@example.com", Phone: "+15557654321",
		Channel: "sms", Language: "en", RefID: "+15557654321", Subject: "Support", RequestID: in.RequestID, Timestamp: in.Timestamp}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("init (-want +got):\n%s", diff)
	}
	if again := h.v.initRequest(conv, "", time.Now()); again.RequestID != in.RequestID {
		t.Errorf("requestId differs between attempts: %s, %s", in.RequestID, again.RequestID)
	}
	if diff := cmp.Diff([]string{evRegister, evJoin}, c.names()); diff != "" {
		t.Errorf("emitted (-want +got):\n%s", diff)
	}
	if string(conv.Session) != `{"conversationId":"conv-1","participantId":"cust-1","participantName":"Ann"}` {
		t.Errorf("session = %s", conv.Session)
	}
}

func TestInitErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{{503, false}, {500, false}, {400, true}, {404, true}} {
		h := newHarness(t)
		h.client()
		h.status = tc.status
		_, err := h.v.Open(context.Background(), conversation())
		if err == nil || connector.IsPermanent(err) != tc.permanent {
			t.Errorf("init %d: %v; want permanent=%v", tc.status, err, tc.permanent)
		}
	}
}

func TestAgentEventsMapped(t *testing.T) {
	h := newHarness(t)
	_, c := h.open()
	for _, p := range []string{
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"greetings","from":{"id":"bot"}}`,
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantJoined","info":{"participant":{"id":"a1","name":"Dee"}}}`,
		`"{\"type\":\"ChatMessage\",\"conversationId\":\"conv-1\",\"id\":\"m1\",\"from\":{\"id\":\"a1\",\"name\":\"Dee\"},\"text\":\"hi\"}"`,
		`{"type":"ChatMessage","conversationId":"conv-1","id":"m2","from":{"id":"cust-1","name":"Ann"},"text":"our echo"}`,
		`{"type":"ChatMessage","conversationId":"conv-1","id":"m3","tag":"whisper","from":{"id":"a1","name":"Dee"},"text":"psst"}`,
		`not json at all`,
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"typing","from":{"id":"a1"},"info":{"typing":false}}`,
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantLeft","info":{"participant":{"id":"a1","name":"Dee"}}}`,
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantJoined","info":{"participant":{"id":"a2","name":"Eve"}}}`,
	} {
		c.server(evArrived, p)
	}
	// The transfer (a leave, then a join within leave_grace) must not end
	// the chat: once it is reported, no end is pending.
	waitFor(t, "the transfer", func() bool { ev, _ := h.rec.all(); return len(ev) == 4 })
	h.v.mu.Lock()
	pending := h.v.live["conv-1"].leave != nil
	h.v.mu.Unlock()
	if pending {
		t.Error("an end is still pending after the transfer")
	}
	for _, p := range []string{
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"somethingNew"}`,
		`{"type":"ChatMessage","conversationId":"conv-1","id":"m4","from":{"id":"a2","name":"Eve"},"text":"file","attachments":[{"type":"image/png","name":"a.png","contentUrl":"https://x/a.png"}]}`,
		`{"type":"ActivityMessage","conversationId":"conv-1","activityType":"endOfConversation","from":{"id":"a2"}}`,
	} {
		c.server(evArrived, p)
	}
	waitFor(t, "the end", func() bool { ev, _ := h.rec.all(); return len(ev) == 6 })
	events, _ := h.rec.all()
	want := []connector.Event{
		{ConversationID: 7, Type: connector.EventJoined, Agent: "Dee"},
		{ConversationID: 7, Type: connector.EventText, Agent: "Dee", Text: "hi", SourceID: "m1"},
		{ConversationID: 7, Type: connector.EventTyping, Typing: false},
		{ConversationID: 7, Type: connector.EventTransferred, Agent: "Eve"},
		{ConversationID: 7, Type: connector.EventText, Agent: "Eve", Text: "file", SourceID: "m4",
			Attachments: []connector.Attachment{{URL: "https://x/a.png", Name: "a.png", ContentType: "image/png"}}},
		{ConversationID: 7, Type: connector.EventEnded, Reason: "agent"},
	}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAgentLeavingEndsAfterGrace(t *testing.T) {
	h := newHarness(t)
	_, c := h.open()
	c.server(evArrived, `{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantJoined","info":{"participant":{"id":"a1","name":"Dee"}}}`)
	c.server(evArrived, `{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantLeft","info":{"participant":{"id":"a1","name":"Dee"}}}`)
	waitFor(t, "the end", func() bool { ev, _ := h.rec.all(); return len(ev) == 2 })
	if ev, _ := h.rec.all(); ev[1].Type != connector.EventEnded {
		t.Errorf("events = %+v", ev)
	}
}

func TestReplayAndCampaign(t *testing.T) {
	h := newHarness(t)
	_, c := h.open()
	c.server(evConversation, `{"conversation":{"id":"conv-1"},"messages":[
		{"type":"ChatMessage","id":"m1","from":{"id":"cust-1"},"text":"customer's own"},
		{"type":"ChatMessage","id":"m2","from":{"id":"a1","name":"Dee"},"text":"agent line"},
		{"type":"ChatMessage","from":{"id":"a1","name":"Dee"},"text":"no id: not replayed"}]}`)
	c.server(evArrived, `{"type":"ChatMessage","conversationId":"camp-9","id":"c1","refId":"+15550001111","from":{"id":"campaign"},"text":"Sale!"}`)
	c.server(evArrived, `{"type":"ChatMessage","conversationId":"camp-9","refId":"+15550001111","from":{"id":"campaign"},"text":"no id"}`)
	waitFor(t, "both", func() bool { ev, out := h.rec.all(); return len(ev) == 1 && len(out) == 2 })
	events, out := h.rec.all()
	if events[0].SourceID != "m2" || events[0].Text != "agent line" {
		t.Errorf("replayed %+v", events)
	}
	want := connector.Outbound{Vendor: "customerchannel.hub", Channel: "sms.main", Customer: "+15550001111", Text: "Sale!", SourceID: "c1"}
	if diff := cmp.Diff(want, out[0]); diff != "" {
		t.Errorf("campaign (-want +got):\n%s", diff)
	}
	if out[1].SourceID == "" {
		t.Errorf("a campaign message without an id got no de-duplication key: %+v", out[1])
	}
}

func TestReconnectRegistersAndRejoins(t *testing.T) {
	h := newHarness(t)
	_, c := h.open()
	c.Close() // the server dropped the socket
	c2 := h.client()
	waitFor(t, "rejoined", func() bool { return len(c2.names()) == 2 })
	if diff := cmp.Diff([]string{evRegister, evJoin}, c2.names()); diff != "" {
		t.Errorf("after reconnect (-want +got):\n%s", diff)
	}
}

func TestSendAndEnd(t *testing.T) {
	h := newHarness(t)
	conv, c := h.open()
	m := &connector.Message{ID: 3, Text: "my order", Attachments: []connector.Attachment{{URL: "https://f/x.pdf", Name: "x.pdf"}}}
	if err := h.v.Send(context.Background(), conv, m); err != nil {
		t.Fatal(err)
	}
	if err := h.v.End(context.Background(), conv, "customer"); err != nil {
		t.Fatal(err)
	}
	if err := h.v.End(context.Background(), conv, "customer"); err != nil { // already ended: fine
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{evRegister, evJoin, evSend, evEnd}, c.names()); diff != "" {
		t.Errorf("emitted (-want +got):\n%s", diff)
	}
	var sent message
	json.Unmarshal(c.emitted[2].Args[0], &sent)
	if sent.Type != typeChat || sent.ConversationID != "conv-1" || sent.From.ID != "cust-1" || sent.Text != "my order" ||
		len(sent.Attachments) != 1 || sent.ID != "connectord-3" {
		t.Errorf("sendMessage = %+v", sent)
	}
}

// TestRetriedSendNotRepeated: the core sends a message again when it did
// not see the first attempt succeed; the server keeps every sendMessage it
// gets, so the adapter must not emit it twice.
func TestRetriedSendNotRepeated(t *testing.T) {
	h := newHarness(t)
	conv, c := h.open()
	for _, m := range []*connector.Message{{ID: 3, Text: "once"}, {ID: 3, Text: "once"}, {ID: 4, Text: "after"}} {
		if err := h.v.Send(context.Background(), conv, m); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{evRegister, evJoin, evSend, evSend}, c.names()); diff != "" {
		t.Errorf("emitted (-want +got):\n%s", diff)
	}
	var last message
	json.Unmarshal(c.emitted[3].Args[0], &last)
	if last.ID != "connectord-4" {
		t.Errorf("second sendMessage = %+v, want message 4", last)
	}
}
