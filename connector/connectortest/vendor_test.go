package connectortest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
)

// The vendor suite runs against memVendor, a small vendor whose "server"
// lives in memory, and must catch each of its mutants in the named subtest.
var vendorMutants = map[string]string{
	"repeat-send":        "RetriedSendNotRepeated",
	"drop-while-blocked": "BlockingSinkLosesNothing",
	"always-ready":       "HealthFollowsTheServer",
	"end-twice-fails":    "EndByCustomer",
	"leak-on-stop":       "OpenAndSendInOrder",
}

func TestVendorSuite(t *testing.T) {
	connectortest.TestVendor(t, memFixture(""))
}

func TestVendorSuiteCatchesBrokenVendors(t *testing.T) {
	runMutants(t, "TestVendorMutant", vendorMutants)
}

// TestVendorMutant is only run by TestVendorSuiteCatchesBrokenVendors.
func TestVendorMutant(t *testing.T) {
	mutant := os.Getenv(mutantEnv)
	if mutant == "" || vendorMutants[mutant] == "" {
		t.Skip("only run as a child of TestVendorSuiteCatchesBrokenVendors")
	}
	connectortest.TestVendor(t, memFixture(mutant))
}

// memServer is the remote side: chats with the lines the agent saw, and a
// feed of agent events per chat that the connected vendor reads.
type memServer struct {
	mu    sync.Mutex
	down  bool
	chats map[int64]*memChat
}

type memChat struct {
	lines  []string
	ended  bool
	lastID int64
	feed   chan connector.Event
}

func memFixture(mutant string) connectortest.VendorFixture {
	srv := &memServer{chats: map[int64]*memChat{}}
	chat := func(c *connector.Conversation) *memChat {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.chats[c.ID]
	}
	push := func(c *connector.Conversation, e connector.Event) {
		e.ConversationID = c.ID
		chat(c).feed <- e
	}
	return connectortest.VendorFixture{
		Start: func(t *testing.T, sink connector.EventSink) connector.Vendor {
			return &memVendor{srv: srv, sink: sink, mutant: mutant, stop: make(chan struct{})}
		},
		Join: func(t *testing.T, c *connector.Conversation, agent string) {
			push(c, connector.Event{Type: connector.EventJoined, Agent: agent})
		},
		Say: func(t *testing.T, c *connector.Conversation, text string) {
			push(c, connector.Event{Type: connector.EventText, Text: text})
		},
		EndByAgent: func(t *testing.T, c *connector.Conversation) { push(c, connector.Event{Type: connector.EventEnded}) },
		Lines: func(t *testing.T, c *connector.Conversation) []string {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			return append([]string(nil), srv.chats[c.ID].lines...)
		},
		Ended: func(t *testing.T, c *connector.Conversation) bool {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			return srv.chats[c.ID].ended
		},
		Down: func(*testing.T) { srv.mu.Lock(); srv.down = true; srv.mu.Unlock() },
		Up:   func(*testing.T) { srv.mu.Lock(); srv.down = false; srv.mu.Unlock() },
	}
}

// memVendor reads each chat's feed on a goroutine of its own, as a vendor
// reads a socket, and hands the events to the sink in order.
type memVendor struct {
	srv    *memServer
	sink   connector.EventSink
	mutant string
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

func (v *memVendor) Name() string                { return "mem.test" }
func (v *memVendor) Start(context.Context) error { return nil }

func (v *memVendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	v.srv.mu.Lock()
	v.srv.chats[c.ID] = &memChat{feed: make(chan connector.Event, 100)}
	v.srv.mu.Unlock()
	v.read(c.ID)
	return json.RawMessage(fmt.Sprintf(`{"chat":%d}`, c.ID)), nil
}

func (v *memVendor) Resume(ctx context.Context, c *connector.Conversation) error {
	v.read(c.ID)
	return nil
}

func (v *memVendor) read(id int64) {
	v.srv.mu.Lock()
	feed := v.srv.chats[id].feed
	v.srv.mu.Unlock()
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for {
			select {
			case <-v.stop:
				return
			case e := <-feed:
				if v.mutant == "drop-while-blocked" {
					ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
					v.sink.Event(ctx, e) // gives up on a slow sink: the event is lost
					cancel()
					continue
				}
				if err := v.sink.Event(context.Background(), e); err != nil {
					return
				}
			}
		}
	}()
}

func (v *memVendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	v.srv.mu.Lock()
	defer v.srv.mu.Unlock()
	ch := v.srv.chats[c.ID]
	if m.ID <= ch.lastID && v.mutant != "repeat-send" {
		return nil // a retry of what the agent already has
	}
	ch.lastID = m.ID
	ch.lines = append(ch.lines, m.Text)
	return nil
}

func (v *memVendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	v.srv.mu.Lock()
	defer v.srv.mu.Unlock()
	ch := v.srv.chats[c.ID]
	if ch.ended && v.mutant == "end-twice-fails" {
		return errors.New("no such chat")
	}
	ch.ended = true
	return nil
}

func (v *memVendor) Stop(ctx context.Context) error {
	if v.mutant == "leak-on-stop" {
		return nil // the readers go on
	}
	v.once.Do(func() { close(v.stop) })
	v.wg.Wait()
	return nil
}

func (v *memVendor) Health() connector.Health {
	v.srv.mu.Lock()
	defer v.srv.mu.Unlock()
	if v.srv.down && v.mutant != "always-ready" {
		return connector.Health{Detail: "server down"}
	}
	return connector.Health{Ready: true}
}
