package connectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/connectord/connectord/connector"
)

// VendorFixture connects the vendor conformance suite to one vendor and the
// fake of its remote side. Every function fails the test itself when it
// cannot do what it says.
type VendorFixture struct {
	// Start builds and starts a new instance of the vendor against the fake,
	// reporting to sink. The suite calls it again to play a restart (the
	// fake keeps its state) and stops every instance it started.
	Start func(t *testing.T, sink connector.EventSink) connector.Vendor
	// Join has the fake's agent take the open conversation c, as agent.
	Join func(t *testing.T, c *connector.Conversation, agent string)
	// Say has the agent of c write text.
	Say func(t *testing.T, c *connector.Conversation, text string)
	// EndByAgent has the agent end c.
	EndByAgent func(t *testing.T, c *connector.Conversation)
	// Lines returns the customer lines the agent of c has seen, in order.
	Lines func(t *testing.T, c *connector.Conversation) []string
	// Ended reports whether the fake considers c over.
	Ended func(t *testing.T, c *connector.Conversation) bool
	// Down makes the vendor's server drop every connection and refuse new
	// ones; Up undoes it.
	Down, Up func(t *testing.T)
	// Ignore names goroutines of the fake (a chat's script that outlives
	// the vendor's socket) that the leak check after Stop must not count.
	Ignore []goleak.Option
}

// TestVendor runs the vendor conformance suite: one subtest per clause of
// the Vendor contract that every vendor must keep. Subtests run one after
// another (a goroutine-leak check ends each).
func TestVendor(t *testing.T, fx VendorFixture) {
	runClauses(t, fx.Ignore, []clause[*vendorRun]{
		{"OpenAndSendInOrder", testOpenAndSend},
		{"RetriedSendNotRepeated", testRetriedSend},
		{"EventsInOrder", testEventsInOrder},
		{"BlockingSinkLosesNothing", testBlockingSink},
		{"EndByCustomer", testEndByCustomer},
		{"ResumeAfterRestart", testResume},
		{"HealthFollowsTheServer", testHealth},
	}, func(t *testing.T) *vendorRun {
		r := &vendorRun{t: t, fx: fx, sink: &RecordingSink{}}
		r.v = r.start()
		return r
	}, (*vendorRun).stopAll)
}

// vendorRun is one subtest: the vendor instances it started and what they
// reported.
type vendorRun struct {
	t       *testing.T
	fx      VendorFixture
	sink    *RecordingSink
	v       connector.Vendor
	started []connector.Vendor
	nextID  int64
}

func (r *vendorRun) start() connector.Vendor {
	v := r.fx.Start(r.t, r.sink)
	r.started = append(r.started, v)
	return v
}

func (r *vendorRun) stopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range r.started {
		if err := v.Stop(ctx); err != nil {
			r.t.Errorf("Stop: %v", err)
		}
	}
}

// open opens a new conversation at the vendor and stores its session as
// the core would.
func (r *vendorRun) open() *connector.Conversation {
	r.t.Helper()
	r.nextID++
	c := &connector.Conversation{ID: r.nextID, Channel: "sms.main", Customer: fmt.Sprintf("+1555000%04d", r.nextID),
		Vendor: r.v.Name(), State: connector.StatePending, Profile: connector.Profile{Name: "Conformance Customer"}}
	sess, err := r.v.Open(ctxFor(r.t), c)
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	if len(sess) == 0 {
		r.t.Fatal("Open returned an empty session")
	}
	c.Session, c.State = sess, connector.StateQueued
	return c
}

// openJoined opens a conversation and has the fake's agent join it, waiting
// for the joined event: a fake's agent may join on its own schedule, and
// what the clauses do next comes after it.
func (r *vendorRun) openJoined() *connector.Conversation {
	r.t.Helper()
	c := r.open()
	r.fx.Join(r.t, c, "Alice")
	r.sink.WaitFor(r.t, c.ID, connector.EventJoined)
	return c
}

// send relays customer message id with text to the agent of c.
func (r *vendorRun) send(c *connector.Conversation, id int64, text string) {
	r.t.Helper()
	m := &connector.Message{ID: id, ConversationID: c.ID, Direction: connector.ToAgent, Kind: connector.KindText, Text: text}
	if err := r.v.Send(ctxFor(r.t), r.session(c), m); err != nil {
		r.t.Fatalf("Send %q: %v", text, err)
	}
}

// session is c with the newest session the vendor reported for it.
func (r *vendorRun) session(c *connector.Conversation) *connector.Conversation {
	cc := *c
	if s := r.sink.Session(c.ID); s != nil {
		cc.Session = s
	}
	return &cc
}

// waitLines waits until the agent of c has seen want, exactly.
func (r *vendorRun) waitLines(c *connector.Conversation, want []string) {
	r.t.Helper()
	var got []string
	ok := eventually(10*time.Second, func() bool { got = r.fx.Lines(r.t, c); return len(got) >= len(want) })
	if !ok || !slices.Equal(got, want) {
		r.t.Fatalf("agent saw %q, want %q", got, want)
	}
}

func testOpenAndSend(r *vendorRun) {
	c := r.openJoined()
	var want []string
	for i := range 10 {
		text := fmt.Sprintf("customer line %d", i+1)
		want = append(want, text)
		r.send(c, int64(i+1), text)
	}
	r.waitLines(c, want)
}

func testRetriedSend(r *vendorRun) {
	c := r.openJoined()
	r.send(c, 1, "once")
	r.send(c, 1, "once") // the core's retry after an error it did not see succeed
	r.send(c, 2, "after")
	r.waitLines(c, []string{"once", "after"})
	time.Sleep(200 * time.Millisecond) // a late repeat would show now
	r.waitLines(c, []string{"once", "after"})
}

func testEventsInOrder(r *vendorRun) {
	c := r.openJoined()
	var want []string
	for i := range 5 {
		text := fmt.Sprintf("agent line %d", i+1)
		want = append(want, text)
		r.fx.Say(r.t, c, text)
	}
	r.fx.EndByAgent(r.t, c)
	r.sink.WaitFor(r.t, c.ID, connector.EventEnded)
	evs := r.sink.Events(c.ID)
	if got := r.sink.Texts(c.ID); !slices.Equal(got, want) {
		r.t.Errorf("agent lines reported %q, want %q", got, want)
	}
	if last := evs[len(evs)-1]; last.Type != connector.EventEnded {
		r.t.Errorf("last event %s, want ended: %v", last.Type, types(evs))
	}
}

// The core's EventSink blocks while the store refuses writes: a vendor
// must lose nothing meanwhile and keep the order.
func testBlockingSink(r *vendorRun) {
	c := r.openJoined()
	release := r.sink.Block()
	var want []string
	for i := range 5 {
		text := fmt.Sprintf("while blocked %d", i+1)
		want = append(want, text)
		r.fx.Say(r.t, c, text)
	}
	time.Sleep(300 * time.Millisecond)
	release()
	if !eventually(10*time.Second, func() bool { return len(r.sink.Texts(c.ID)) >= len(want) }) ||
		!slices.Equal(r.sink.Texts(c.ID), want) {
		r.t.Errorf("after the sink unblocked: %q, want %q", r.sink.Texts(c.ID), want)
	}
}

func testEndByCustomer(r *vendorRun) {
	c := r.openJoined()
	if err := r.v.End(ctxFor(r.t), r.session(c), "customer"); err != nil {
		r.t.Fatalf("End: %v", err)
	}
	if !eventually(10*time.Second, func() bool { return r.fx.Ended(r.t, c) }) {
		r.t.Error("the agent's side still has the chat after End")
	}
	if err := r.v.End(ctxFor(r.t), r.session(c), "customer"); err != nil {
		r.t.Errorf("End of a chat already ended: %v, want nil", err)
	}
}

func testResume(r *vendorRun) {
	c := r.openJoined()
	r.send(c, 1, "before the restart")
	r.waitLines(c, []string{"before the restart"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.v.Stop(ctx); err != nil {
		r.t.Fatalf("Stop: %v", err)
	}
	rs, ok := r.start().(connector.Resumer)
	if !ok {
		r.t.Skip("the vendor cannot resume a session (no Resumer)")
	}
	r.v = rs.(connector.Vendor)
	c.State = connector.StateActive
	if err := rs.Resume(ctxFor(r.t), r.session(c)); err != nil {
		r.t.Fatalf("Resume: %v", err)
	}
	r.send(c, 2, "after the restart")
	r.waitLines(c, []string{"before the restart", "after the restart"})
	r.fx.Say(r.t, c, "still here")
	if !eventually(10*time.Second, func() bool { return slices.Contains(r.sink.Texts(c.ID), "still here") }) {
		r.t.Errorf("agent line after the restart not reported: %q", r.sink.Texts(c.ID))
	}
}

// Health says not ready while the server is gone, and ready again once it
// is back.
func testHealth(r *vendorRun) {
	chk, ok := r.v.(connector.Checker)
	if !ok {
		r.t.Skip("the vendor reports no health (no Checker)")
	}
	r.openJoined() // a live conversation: per-chat vendors have a socket to lose
	if !eventually(10*time.Second, func() bool { return chk.Health().Ready }) {
		r.t.Fatalf("not ready with a live conversation: %+v", chk.Health())
	}
	r.fx.Down(r.t)
	if !eventually(10*time.Second, func() bool { return !chk.Health().Ready }) {
		r.t.Errorf("still ready 10s after the server went away: %+v", chk.Health())
	}
	r.fx.Up(r.t)
	if !eventually(20*time.Second, func() bool { return chk.Health().Ready }) {
		r.t.Errorf("not ready 20s after the server came back: %+v", chk.Health())
	}
}

// RecordingSink is an EventSink that records what a vendor reports; Block
// makes it hold every call, as the core does while its store refuses
// writes.
type RecordingSink struct {
	mu      sync.Mutex
	events  []connector.Event
	blocked chan struct{} // closed to release; nil when not blocked
}

var _ connector.EventSink = (*RecordingSink)(nil)

// Event implements connector.EventSink.
func (s *RecordingSink) Event(ctx context.Context, e connector.Event) error {
	s.mu.Lock()
	gate := s.blocked
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

// Block holds every Event call until the returned function is called.
func (s *RecordingSink) Block() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.blocked = gate
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.blocked = nil
		s.mu.Unlock()
		close(gate)
	}
}

// Events returns the events reported for conversation id, in order.
func (s *RecordingSink) Events(id int64) []connector.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []connector.Event
	for _, e := range s.events {
		if e.ConversationID == id {
			out = append(out, e)
		}
	}
	return out
}

// Texts returns the agent lines reported for conversation id, in order.
func (s *RecordingSink) Texts(id int64) []string {
	var out []string
	for _, e := range s.Events(id) {
		if e.Type == connector.EventText {
			out = append(out, e.Text)
		}
	}
	return out
}

// Session is the newest session reported for conversation id; nil if none.
func (s *RecordingSink) Session(id int64) json.RawMessage {
	var sess json.RawMessage
	for _, e := range s.Events(id) {
		if e.Session != nil {
			sess = e.Session
		}
	}
	return sess
}

// WaitFor waits until an event of type typ is reported for conversation id.
func (s *RecordingSink) WaitFor(t *testing.T, id int64, typ connector.EventType) {
	t.Helper()
	if !eventually(10*time.Second, func() bool {
		return slices.ContainsFunc(s.Events(id), func(e connector.Event) bool { return e.Type == typ })
	}) {
		t.Fatalf("no %s event for conversation %d; got %v", typ, id, types(s.Events(id)))
	}
}

func types(evs []connector.Event) []connector.EventType {
	out := make([]connector.EventType, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// eventually polls cond every 10ms until it holds or within has passed.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
