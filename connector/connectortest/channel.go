package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/connectord/connectord/connector"
)

// ChannelFixture connects the channel conformance suite to one channel and
// the fake of its remote side (Twilio, Slack). Every function fails the test
// itself when it cannot do what it says.
type ChannelFixture struct {
	// Start builds and starts a new instance of the channel, handing
	// customer messages to sink and keeping send progress in progress (as
	// the core would). The suite stops every instance it started.
	Start func(t *testing.T, sink connector.ChannelSink, progress connector.SendProgress) connector.Channel
	// Customer is the address the fixture's customer writes from.
	Customer string
	// Write has the customer write text, delivered the way the remote side
	// delivers it (a signed webhook, an event), and reports whether the
	// channel acknowledged it; again delivers the same message once more,
	// as the remote side's retry does, and reports the same.
	Write func(t *testing.T, text string) (acked bool, again func() bool)
	// Received returns the texts the customer has received, in order.
	Received func(t *testing.T) []string
	// Ignore names goroutines of the fake that the leak check after Stop
	// must not count.
	Ignore []goleak.Option
}

// TestChannel runs the channel conformance suite: one subtest per clause of
// the Channel contract and of the sinks' error vocabulary.
func TestChannel(t *testing.T, fx ChannelFixture) {
	runClauses(t, fx.Ignore, []clause[*channelRun]{
		{"InboundStoredBeforeAck", testInboundStored},
		{"RefusedInboundNotAcked", testRefusedInbound},
		{"PermanentRefusalAcked", testPermanentRefusal},
		{"RedeliveryKeepsSourceID", testRedelivery},
		{"SendInOrder", testChannelSendInOrder},
		{"RetriedSendNotRepeated", testChannelRetriedSend},
	}, func(t *testing.T) *channelRun {
		r := &channelRun{t: t, fx: fx, sink: &InboundRecorder{}, progress: connector.NewMemoryProgress(1 << 16)}
		r.ch = fx.Start(t, r.sink, r.progress)
		return r
	}, (*channelRun).stop)
}

// stop stops the channel the clause ran on.
func (r *channelRun) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.ch.Stop(ctx); err != nil {
		r.t.Errorf("Stop: %v", err)
	}
}

type channelRun struct {
	t        *testing.T
	fx       ChannelFixture
	sink     *InboundRecorder
	progress *connector.MemoryProgress
	ch       connector.Channel
}

func testInboundStored(r *channelRun) {
	if acked, _ := r.fx.Write(r.t, "hello there"); !acked {
		r.t.Fatal("a message the sink took was not acknowledged")
	}
	got := r.sink.Inbound()
	if len(got) != 1 || got[0].Text != "hello there" || got[0].Customer != r.fx.Customer || got[0].SourceID == "" {
		r.t.Errorf("sink got %+v, want one message from %s with a source id", got, r.fx.Customer)
	}
}

// A message the store refused is not acknowledged (the remote side keeps
// it and retries); the retry is taken once the store works again.
func testRefusedInbound(r *channelRun) {
	r.sink.SetErr(errors.New("database or disk is full"))
	acked, again := r.fx.Write(r.t, "kept by the sender")
	if acked {
		r.t.Fatal("acknowledged a message the sink refused")
	}
	r.sink.SetErr(nil)
	if !again() {
		r.t.Fatal("the retry was not acknowledged once the sink took it")
	}
	if got := r.sink.Texts(); !slices.Equal(got, []string{"kept by the sender"}) {
		r.t.Errorf("sink holds %q, want the message once", got)
	}
}

// A message the core can never store is acknowledged, so that it is not
// redelivered forever.
func testPermanentRefusal(r *channelRun) {
	r.sink.SetErr(connector.Permanent(errors.New("no route for this channel")))
	if acked, _ := r.fx.Write(r.t, "never storable"); !acked {
		r.t.Error("a permanently refused message was not acknowledged")
	}
}

// A redelivery carries the same source id, which the core de-duplicates.
func testRedelivery(r *channelRun) {
	acked, again := r.fx.Write(r.t, "once")
	if !acked || !again() {
		r.t.Fatal("not acknowledged")
	}
	got := r.sink.Inbound()
	if len(got) != 2 || got[0].SourceID != got[1].SourceID {
		r.t.Errorf("two deliveries of one message reached the sink as %+v; want two with one source id", got)
	}
}

func (r *channelRun) send(id int64, text string) string {
	r.t.Helper()
	m := &connector.Message{ID: id, Direction: connector.ToCustomer, Kind: connector.KindText, Text: text}
	remote, err := r.ch.Send(ctxFor(r.t), r.fx.Customer, m)
	if err != nil {
		r.t.Fatalf("Send %q: %v", text, err)
	}
	return remote
}

func (r *channelRun) waitReceived(want []string) {
	r.t.Helper()
	var got []string
	ok := eventually(10*time.Second, func() bool { got = r.fx.Received(r.t); return len(got) >= len(want) })
	if !ok || !slices.Equal(got, want) {
		r.t.Fatalf("customer received %q, want %q", got, want)
	}
}

func testChannelSendInOrder(r *channelRun) {
	var want []string
	for i := range 10 {
		text := fmt.Sprintf("agent line %d", i+1)
		want = append(want, text)
		r.send(int64(i+1), text)
	}
	r.waitReceived(want)
}

// The core sends a message again only in a later process, when this one
// could not record that it went out (a crash, a store that refused until the
// stop), and hands it over as Recovered: the customer must not get it twice,
// and the remote id is the same.
func testChannelRetriedSend(r *channelRun) {
	m := &connector.Message{ID: 1, Direction: connector.ToCustomer, Kind: connector.KindText,
		Text: "only once", CreatedAt: time.Now()}
	first, err := r.ch.Send(ctxFor(r.t), r.fx.Customer, m)
	if err != nil {
		r.t.Fatalf("Send: %v", err)
	}
	retry := *m
	retry.Recovered = true
	again, err := r.ch.Send(ctxFor(r.t), r.fx.Customer, &retry)
	if err != nil {
		r.t.Fatalf("Send again, recovered: %v", err)
	}
	if first != again {
		r.t.Errorf("remote id %q on the retry, %q the first time", again, first)
	}
	r.send(2, "next")
	r.waitReceived([]string{"only once", "next"})
	time.Sleep(200 * time.Millisecond) // a late repeat would show now
	r.waitReceived([]string{"only once", "next"})
}

// InboundRecorder is a ChannelSink that records what a channel hands the
// core; SetErr makes Receive refuse.
type InboundRecorder struct {
	mu  sync.Mutex
	in  []connector.Inbound
	err error
}

var _ connector.ChannelSink = (*InboundRecorder)(nil)

// Receive implements connector.InboundSink.
func (s *InboundRecorder) Receive(ctx context.Context, in connector.Inbound) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.in = append(s.in, in)
	return nil
}

// DeliveryStatus implements connector.StatusSink.
func (s *InboundRecorder) DeliveryStatus(context.Context, string, string, connector.Delivery, string) error {
	return nil
}

// SetErr makes Receive return err (nil: take messages again).
func (s *InboundRecorder) SetErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Inbound returns every message taken, in order, duplicates included.
func (s *InboundRecorder) Inbound() []connector.Inbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.in)
}

// Texts returns the text of every message taken, de-duplicated by source id
// as the core does.
func (s *InboundRecorder) Texts() []string {
	seen := map[string]bool{}
	var out []string
	for _, in := range s.Inbound() {
		if !seen[in.SourceID] {
			seen[in.SourceID] = true
			out = append(out, in.Text)
		}
	}
	return out
}
