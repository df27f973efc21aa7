package customerchannel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

func instanceOf(block string) connector.Instance {
	return connector.NewInstance("vendors.customerchannel.hub", "customerchannel", "hub", func(v any) error {
		_, err := toml.Decode("url = \"http://x\"\nconnector_id = \"sms\"\n"+block, v)
		return err
	})
}

// The three reconnect keys make the socket's policy; without them it is
// today's 250 ms doubling to 30 s, reset after 30 s up.
func TestConfigReconnectKeys(t *testing.T) {
	cfg, err := decodeConfig(instanceOf(""))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.reconnect(); p != (connector.Reconnect{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Stable: 30 * time.Second}) {
		t.Errorf("default policy %+v, want 250ms, 30s, 30s", p)
	}
	cfg, err = decodeConfig(instanceOf("reconnect_initial = \"2s\"\nreconnect_max = \"3m\"\nreconnect_stable = \"45s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.reconnect(); p != (connector.Reconnect{Initial: 2 * time.Second, Max: 3 * time.Minute, Stable: 45 * time.Second}) {
		t.Errorf("policy %+v, want 2s, 3m, 45s", p)
	}
}

// Bad reconnect values are reported key by key, every one at once.
func TestConfigReconnectKeysChecked(t *testing.T) {
	for block, want := range map[string][]string{
		"reconnect_initial = \"0s\"\nreconnect_stable = \"-1s\"\n": {"hub.reconnect_initial", "hub.reconnect_stable"},
		"reconnect_initial = \"5s\"\nreconnect_max = \"1s\"\n":     {"hub.reconnect_max: must not be less than reconnect_initial"},
		"reconnect_max = \"0s\"\n":                                 {"hub.reconnect_max"},
	} {
		_, err := decodeConfig(instanceOf(block))
		if err == nil {
			t.Errorf("%q accepted", block)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not name %q", block, err, w)
			}
		}
	}
}

// scriptedSink answers Event with what answer says, and records the calls.
type scriptedSink struct {
	recorder
	entered chan connector.Event
	answer  func(ctx context.Context, e connector.Event) error
}

func (s *scriptedSink) Event(ctx context.Context, e connector.Event) error {
	s.entered <- e
	if err := s.answer(ctx, e); err != nil {
		return err
	}
	return s.recorder.Event(ctx, e)
}

// startObserved runs a vendor whose sink is sink and whose log is observed,
// configured with block, against one fake connection carrying conversation
// conv-1 (as Resume would when resumed: an active conversation whose agent
// the core knows as Dee).
func startObserved(t *testing.T, sink *scriptedSink, block string, resumed bool) (*Vendor, *fakeClient, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	v, err := New(connector.VendorEnv{Instance: instanceOf("deliver_via = \"sms.main\"\n" + block), Logger: zap.New(core), Sink: sink, Outbound: sink})
	if err != nil {
		t.Fatal(err)
	}
	c := newFakeClient()
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) { return c, nil }
	conv := conversation()
	if resumed {
		conv.State, conv.Agent = connector.StateActive, "Dee"
	}
	track(v, conv, session{ConversationID: "conv-1", ParticipantID: "cust-1"}, resumed)
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Stop(context.Background()) })
	waitFor(t, "connected", func() bool { return v.Health().Ready })
	return v, c, logs
}

func line(id, text string) string {
	return `{"type":"ChatMessage","conversationId":"conv-1","id":"` + id + `","from":{"id":"a1","name":"Dee"},"text":"` + text + `"}`
}

// An event the core can never store (Permanent) is logged as such and
// skipped; the next one is relayed.
func TestPermanentSinkErrorSkipped(t *testing.T) {
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(ctx context.Context, e connector.Event) error {
		if e.SourceID == "m1" {
			return connector.Permanent(errors.New("unknown conversation"))
		}
		return nil
	}}
	_, c, logs := startObserved(t, sink, "", false)
	c.server(evArrived, line("m1", "lost"))
	c.server(evArrived, line("m2", "kept"))
	waitFor(t, "m2", func() bool { ev, _ := sink.all(); return len(ev) == 1 })
	if ev, _ := sink.all(); ev[0].SourceID != "m2" {
		t.Errorf("relayed %+v, want m2", ev)
	}
	skipped := logs.FilterMessage("agent event can never be stored; skipped").All()
	if len(skipped) != 1 || skipped[0].Level != zapcore.ErrorLevel {
		t.Errorf("log of the permanent refusal: %+v", logs.All())
	}
}

// While the core retries a refusing store, Event blocks; Stop ends it (ctx
// done), which is logged as stopping, not as a failure, and no later event
// of the connection is offered to the sink.
func TestStopWhileSinkRetries(t *testing.T) {
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(ctx context.Context, e connector.Event) error {
		<-ctx.Done() // the store keeps refusing
		return ctx.Err()
	}}
	v, c, logs := startObserved(t, sink, "", false)
	c.server(evArrived, line("m1", "first"))
	c.server(evArrived, line("m2", "second"))
	<-sink.entered
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := v.Stop(ctx); err != nil {
		t.Fatalf("stop while the sink retries: %v", err)
	}
	if n := len(sink.entered); n != 0 {
		t.Errorf("%d more events offered to the sink after Stop", n)
	}
	stopping := logs.FilterMessageSnippet("not stored: stopping").All()
	if len(stopping) != 1 || stopping[0].Level != zapcore.InfoLevel {
		t.Errorf("log of the event cut short by Stop: %+v", logs.All())
	}
	if h := v.Health(); h.Ready || h.Detail != "stopped" {
		t.Errorf("health after Stop: %+v", h)
	}
}

// Health is ready only once registerConnector has been sent, not at the
// namespace connect alone.
func TestReadyAfterRegister(t *testing.T) {
	v := newVendor(t, nil, &recorder{})
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	v.dial = func(ctx context.Context, o sio.Options) (sio.Client, error) {
		return &blockingRegister{fakeClient: newFakeClient(), release: release, entered: entered}, nil
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	<-entered // connected, registerConnector held
	if h := v.Health(); h.Ready {
		t.Fatalf("ready before registerConnector was sent: %+v", h)
	}
	close(release)
	waitFor(t, "ready", func() bool { return v.Health().Ready })
	if d := v.Health().Detail; d != "connected (eio 4)" {
		t.Errorf("detail %q", d)
	}
}

// blockingRegister holds registerConnector until release, and says so on
// entered.
type blockingRegister struct {
	*fakeClient
	release chan struct{}
	entered chan struct{}
}

func (b *blockingRegister) Emit(ctx context.Context, event string, args ...any) error {
	if event == evRegister {
		select {
		case b.entered <- struct{}{}:
		default:
		}
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.fakeClient.Emit(ctx, event, args...)
}
