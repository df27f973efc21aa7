package customerchannel

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// The connector role with fake connections: a follower joins its chats and
// never registers; becoming the leader registers on the live connection;
// losing the role ends that connection and the next one does not register
// but rejoins; the health detail says which it is at each step.
func TestLeadRegistersOnlyTheLeader(t *testing.T) {
	h := buildHarness(t, "", 0, nil)
	h.v.Lead(context.Background(), false) // as the core does before Start when instances share the store
	track(h.v, conversation(), session{ConversationID: "conv-1", ParticipantID: "cust-1"}, false)
	h.start()
	c := h.client()
	waitFor(t, "the rejoin", func() bool { return slices.Contains(c.names(), evJoin) })
	if diff := cmp.Diff([]string{evJoin}, c.names()); diff != "" {
		t.Errorf("a follower's connection (-want +got):\n%s", diff)
	}
	wantDetail(t, h.v, "connected (eio 4), not the registered connector (another instance is)")

	// Taking the role: registerConnector on the same connection.
	h.v.Lead(context.Background(), true)
	waitFor(t, "registerConnector", func() bool { return slices.Contains(c.names(), evRegister) })
	if diff := cmp.Diff([]string{evJoin, evRegister}, c.names()); diff != "" {
		t.Errorf("after Lead(true) (-want +got):\n%s", diff)
	}
	wantDetail(t, h.v, "connected (eio 4), the registered connector")
	h.v.Lead(context.Background(), true) // no change: nothing more is sent

	// Losing it: the registered connection ends, the next one only rejoins.
	h.v.Lead(context.Background(), false)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the registered connection was kept after Lead(false)")
	}
	c2 := h.client()
	waitFor(t, "the rejoin", func() bool { return slices.Contains(c2.names(), evJoin) })
	wantDetail(t, h.v, "connected (eio 4), not the registered connector (another instance is)")
	if diff := cmp.Diff([]string{evJoin, evRegister}, c.names()); diff != "" {
		t.Errorf("the connection given up (-want +got):\n%s", diff)
	}
	h.v.Lead(context.Background(), true)
	waitFor(t, "registerConnector again", func() bool { return slices.Contains(c2.names(), evRegister) })
	if diff := cmp.Diff([]string{evJoin, evRegister}, c2.names()); diff != "" {
		t.Errorf("the connection after the role came back (-want +got):\n%s", diff)
	}
	select {
	case c3 := <-h.clients:
		t.Errorf("a third connection %v: taking the role must not reconnect", c3.names())
	default:
	}
}

// A vendor never told about the role (a single instance) registers on
// every connect and keeps today's health detail.
func TestNeverToldLeads(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	waitFor(t, "registerConnector", func() bool { return slices.Contains(c.names(), evRegister) })
	wantDetail(t, h.v, "connected (eio 4)")
	c.Close()
	c2 := h.client()
	waitFor(t, "registerConnector again", func() bool { return slices.Contains(c2.names(), evRegister) })
}

// Lead(false) before Start on a connection that is not up yet: the first
// connection registers nothing, and a Lead(true) told while disconnected
// registers on the next connection.
func TestLeadWhileDisconnected(t *testing.T) {
	h := buildHarness(t, "", 0, nil)
	h.v.Lead(context.Background(), false)
	h.start()
	c := h.client()
	waitFor(t, "connected", func() bool { return h.v.Health().Ready })
	c.Close()
	h.v.Lead(context.Background(), true) // perhaps before the next connection: it must register either way
	c2 := h.client()
	waitFor(t, "registerConnector", func() bool { return slices.Contains(c2.names(), evRegister) })
	if got := c2.names(); len(got) != 1 {
		t.Errorf("emitted %v, want registerConnector once", got)
	}
	if slices.Contains(c.names(), evRegister) {
		t.Errorf("the follower's connection registered: %v", c.names())
	}
}

// A campaign message that reaches a follower (a server that offers it to
// every socket) is delivered as today: the core de-duplicates it by its
// source id across instances.
func TestFollowerStillDeliversCampaign(t *testing.T) {
	h := buildHarness(t, "", 0, nil)
	h.v.Lead(context.Background(), false)
	h.start()
	c := h.client()
	waitFor(t, "connected", func() bool { return h.v.Health().Ready })
	c.server(evArrived, `{"type":"ChatMessage","conversationId":"camp-9","id":"c1","refId":"+15550001111","from":{"id":"campaign"},"text":"Sale!"}`)
	waitFor(t, "the campaign", func() bool { _, out := h.rec.all(); return len(out) == 1 })
	if _, out := h.rec.all(); out[0].SourceID != "c1" || out[0].Customer != "+15550001111" {
		t.Errorf("campaign %+v", out[0])
	}
}

// Lead does not wait for the connection: it returns while the reader is
// held by the core's store; the reader acts on the role once released.
func TestLeadDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(ctx context.Context, e connector.Event) error {
		<-release
		return nil
	}}
	v, err := New(connector.VendorEnv{Instance: instanceOf("deliver_via = \"sms.main\"\n"), Logger: zaptest.NewLogger(t), Sink: sink, Outbound: sink})
	if err != nil {
		t.Fatal(err)
	}
	clients := make(chan *fakeClient, 4)
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) {
		c := newFakeClient()
		clients <- c
		return c, nil
	}
	track(v, conversation(), session{ConversationID: "conv-1", ParticipantID: "cust-1"}, false)
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Stop(context.Background()) })
	defer close(release) // before Stop: the held sink ignores its context
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	c.server(evArrived, line("m1", "hello"))
	<-sink.entered // the reader is held in the sink
	done := make(chan struct{})
	go func() {
		v.Lead(context.Background(), false)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Lead blocked while the reader was held")
	}
	release <- struct{}{}
	select {
	case c2 := <-clients:
		waitFor(t, "the rejoin", func() bool { return slices.Contains(c2.names(), evJoin) })
		if slices.Contains(c2.names(), evRegister) {
			t.Errorf("the follower's new connection registered: %v", c2.names())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the registered connection was kept after Lead(false)")
	}
}

func wantDetail(t *testing.T, v *Vendor, want string) {
	t.Helper()
	waitFor(t, "health "+want, func() bool { h := v.Health(); return h.Ready && h.Detail == want })
}

// Losing the role ends the connection only after the events it has
// already received are handed to their workers: campaign messages the
// server handed this instance while it was registered are stored, not
// dropped with the connection. The workers may hold one event here, so
// the one the store holds fills them and the campaigns wait in the
// connection when the role changes (without the drain they are lost).
func TestResignHandlesWhatArrived(t *testing.T) {
	release := make(chan struct{})
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(ctx context.Context, e connector.Event) error {
		<-release
		return nil
	}}
	v, err := New(connector.VendorEnv{Instance: instanceOf("deliver_via = \"sms.main\"\n"), Logger: zaptest.NewLogger(t), Sink: sink, Outbound: sink})
	if err != nil {
		t.Fatal(err)
	}
	clients := make(chan *fakeClient, 4)
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) {
		c := newFakeClient()
		clients <- c
		return c, nil
	}
	v.lanes = connector.NewLanes(connector.LanesOptions[string]{MaxCount: 1})
	track(v, conversation(), session{ConversationID: "conv-1", ParticipantID: "cust-1"}, false)
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Stop(context.Background()) })
	defer close(release)
	c := <-clients
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	c.server(evArrived, line("m1", "hello"))
	<-sink.entered // the workers are full; what follows waits in the connection
	var want []string
	for i := range 5 {
		id := "c" + strconv.Itoa(i)
		want = append(want, id)
		c.server(evArrived, `{"type":"ChatMessage","conversationId":"camp-`+id+`","id":"`+id+`","refId":"+15550001111","from":{"id":"campaign"},"text":"Sale!"}`)
	}
	v.Lead(context.Background(), false)
	release <- struct{}{}
	select {
	case <-clients:
	case <-time.After(5 * time.Second):
		t.Fatal("the registered connection was kept after Lead(false)")
	}
	// Handed to their worker before the connection ended, stored by it.
	waitFor(t, "the campaigns", func() bool { _, out := sink.all(); return len(out) >= len(want) })
	_, out := sink.all()
	var got []string
	for _, o := range out {
		got = append(got, o.SourceID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("campaigns received before the connection ended (-want +got):\n%s", diff)
	}
}
