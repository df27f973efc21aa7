package customerchannel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

// TestAgainstNodeServer runs the adapter with the real Socket.IO clients
// against the reference Node servers of both generations.
func TestAgainstNodeServer(t *testing.T) { bothGenerations(t, testAgainstNode) }

// bothGenerations runs test against the reference Node server of each
// Engine.IO generation: socket.io@2 (eio 3) and socket.io@4 (eio 4).
func bothGenerations(t *testing.T, test func(t *testing.T, eio int)) {
	for _, eio := range []int{3, 4} {
		t.Run(map[int]string{3: "socket.io@2", 4: "socket.io@4"}[eio], func(t *testing.T) { test(t, eio) })
	}
}

func testAgainstNode(t *testing.T, eio int) {
	sim := customerchanneltest.StartTest(t, eio)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true, Whisper: true}); err != nil {
		t.Fatal(err)
	}
	h := newHarnessAt(t, sim.URL, eio)
	waitFor(t, "connected", func() bool { return h.v.Health().Ready })
	conv := conversation()
	raw, err := h.v.Open(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	conv.Session = raw
	waitFor(t, "the agent", func() bool { ev, _ := h.rec.all(); return len(ev) >= 1 })
	if err := h.v.Send(ctx, conv, &connector.Message{ID: 1, Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the echo", func() bool { return hasText(h.rec, "echo: hello") })

	// The server drops the socket: the adapter reconnects, registers and
	// rejoins; the replayed history carries the ids already relayed.
	if err := sim.Drop(ctx, "close"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "registered twice", func() bool {
		st, err := sim.State(ctx)
		return err == nil && len(st.Connectors) >= 1 && st.Connections >= 2 && h.v.Health().Ready
	})
	if err := sendWhenUp(ctx, h.v, conv, &connector.Message{ID: 2, Text: "after the drop"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the echo after the drop", func() bool { return hasText(h.rec, "echo: after the drop") })

	// A campaign message for a customer we have no conversation with.
	if _, err := sim.Campaign(ctx, "+15550009999", "Sale today", "camp-1", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the campaign", func() bool { _, out := h.rec.all(); return len(out) == 1 })
	if _, out := h.rec.all(); out[0].Customer != "+15550009999" || out[0].SourceID != "camp-1" || out[0].Channel != "sms.main" {
		t.Errorf("campaign = %+v", out[0])
	}

	events, _ := h.rec.all()
	seen := map[string]int{}
	for _, e := range events {
		if strings.HasPrefix(e.Text, "whisper:") || e.Text == "hello" {
			t.Errorf("relayed %+v: whispers and our own echoes must not reach the customer", e)
		}
		if e.Type == connector.EventText {
			seen[e.SourceID]++
			if e.SourceID == "" {
				t.Errorf("agent line without an id: %+v", e)
			}
		}
	}
	t.Logf("eio %d: %d events, %d distinct agent lines", eio, len(events), len(seen))
	if err := h.v.End(ctx, conv, "customer"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ended at the server", func() bool {
		st, _ := sim.State(ctx)
		for _, c := range st.Conversations {
			if c.Ended {
				return true
			}
		}
		return false
	})
}

// sendWhenUp retries a send while the socket is being re-established, as the router would.
func sendWhenUp(ctx context.Context, v *Vendor, c *connector.Conversation, m *connector.Message) error {
	for {
		err := v.Send(ctx, c, m)
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasText(r *recorder, text string) bool {
	ev, _ := r.all()
	for _, e := range ev {
		if e.Text == text {
			return true
		}
	}
	return false
}
