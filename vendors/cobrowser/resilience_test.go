package cobrowser

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// unregister removes the chat's visitor account at ejabberd, as CoBrowser
// does when a chat is over: its credentials no longer log in.
func (h *harness) unregister(c *connector.Conversation) {
	h.t.Helper()
	local, host, _ := strings.Cut(visitor(h.t, c), "@")
	if out, err := h.ej.Ctl(ctx(h.t), "unregister", local, host); err != nil {
		h.t.Fatalf("unregister: %v %s", err, out)
	}
}

// kick ends the chat's stream at the server (kick_session).
func (h *harness) kick(c *connector.Conversation) {
	h.t.Helper()
	st, _ := parseSession(c.Session)
	local, host, _ := strings.Cut(st.User, "@")
	if out, err := h.ej.Ctl(ctx(h.t), "kick_session", local, host, st.Resource, "test"); err != nil {
		h.t.Fatalf("kick_session: %v %s", err, out)
	}
}

// A stream the server drops is logged in again with the stored
// credentials; the chat goes on both ways.
func TestStreamDropReconnects(t *testing.T) {
	for _, transport := range []string{"ws", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			h := newHarness(t, transport, nil)
			c := conversation()
			h.open(c)
			vis := visitor(t, c)
			s := h.v.session(c.ID)
			first, _ := s.waitReady(ctx(t))
			h.kick(c)
			waitFor(t, "a new stream", func() bool {
				st, _ := s.waitReady(ctx(t))
				return st != first
			})
			if err := h.send(c, 1, "after the drop"); err != nil {
				t.Fatal(err)
			}
			if ms := h.lines(1); ms[0].Body != "after the drop" {
				t.Errorf("agent got %q", ms[0].Body)
			}
			if err := h.agent.Say(vis, "welcome back"); err != nil {
				t.Fatal(err)
			}
			h.sink.wait(t, c.ID, "text", func(e connector.Event) bool { return e.Type == connector.EventText && e.Text == "welcome back" })
			if n := h.sink.of(c.ID, connector.EventLost); len(n) != 0 {
				t.Errorf("a reconnect reported the chat lost: %+v", n)
			}
		})
	}
}

// When the server refuses the chat's credentials on a reconnect, the chat
// is lost: EventLost for the core, and a Send meanwhile is ErrChatLost.
func TestLostWhenCredentialsRefused(t *testing.T) {
	h := newHarness(t, "ws", nil)
	c := conversation()
	h.open(c)
	h.unregister(c) // ejabberd also ends the account's sessions
	lost := h.sink.waitType(t, c.ID, connector.EventLost)
	if lost.Reason == "" {
		t.Errorf("lost without a reason: %+v", lost)
	}
	err := h.send(c, 1, "into the void")
	if !errors.Is(err, connector.ErrChatLost) {
		t.Errorf("Send after the loss: %v, want ErrChatLost", err)
	}
	if h.v.Health().Ready != true {
		t.Errorf("a lost chat keeps the vendor unready: %+v", h.v.Health())
	}
}

// After a restart, Resume continues the chat, or says it is lost when the
// API reports it closed or the server refuses its credentials.
func TestResumeAfterRestart(t *testing.T) {
	h := newHarness(t, "tcp", nil)
	kept, closed, refused := conversation(), conversation(), conversation()
	for _, c := range []*connector.Conversation{kept, closed, refused} {
		h.open(c)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.v.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := h.agent.Close(visitor(t, closed)); err != nil { // the fake marks the chat session closed
		t.Fatal(err)
	}
	h.unregister(refused)

	v2, sink2 := h.vendor("tcp", nil)
	if err := v2.Resume(ctx(t), kept); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	for _, c := range []*connector.Conversation{closed, refused} {
		if err := v2.Resume(ctx(t), c); !errors.Is(err, connector.ErrChatLost) || connector.IsPermanent(err) {
			t.Errorf("Resume of a gone chat: %v, want ErrChatLost", err)
		}
	}
	if err := h.agent.Say(visitor(t, kept), "still here"); err != nil {
		t.Fatal(err)
	}
	sink2.wait(t, kept.ID, "text", func(e connector.Event) bool { return e.Type == connector.EventText && e.Text == "still here" })
	if err := v2.Send(ctx(t), kept, &connector.Message{ID: 9, Text: "me too", Kind: connector.KindText}); err != nil {
		t.Fatal(err)
	}
	if ms := h.lines(1); ms[0].Body != "me too" {
		t.Errorf("agent got %q", ms[0].Body)
	}
	// End after a restart logs in once to say closed.
	v3, _ := h.vendor("tcp", nil)
	if err := v2.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := v3.End(ctx(t), kept, "customer"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.agent.WaitState(ctx(t), visitor(t, kept), "closed"); err != nil {
		t.Errorf("no closed from End after a restart: %v", err)
	}
	if err := v3.End(ctx(t), refused, "customer"); err != nil {
		t.Errorf("End of a chat whose credentials are gone: %v", err)
	}
}

// The server pings every second and kills a client that does not answer
// within 3 s; WebSocket pings likewise. With our own keepalive off, the
// stream stays the same while it answers pings.
func TestServerPingsAnswered(t *testing.T) {
	for _, transport := range []string{"ws", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, transport, map[string]string{"ping_interval": `"1h"`})
			c := conversation()
			h.open(c)
			s := h.v.session(c.ID)
			first, _ := s.waitReady(ctx(t))
			waitFor(t, "five server pings answered", func() bool { return s.pings.Load() >= 5 })
			if st, _ := s.waitReady(ctx(t)); st != first {
				t.Error("the stream was replaced while answering pings")
			}
			if err := h.send(c, 1, "still connected"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A line sent again after a crash carries the same stanza id; ejabberd
// does not drop the repeat, so the send progress in the store is what
// keeps the agent from reading it twice.
func TestResentLineKeepsItsID(t *testing.T) {
	h := newHarness(t, "ws", nil)
	c := conversation()
	h.open(c)
	if err := h.send(c, 7, "once"); err != nil {
		t.Fatal(err)
	}
	// A crash before the core recorded it sent: a new process, which has no
	// progress record (built without the core's store).
	v2, _ := h.vendor("ws", nil)
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.v.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := v2.Send(ctx(t), c, &connector.Message{ID: 7, Text: "once", Kind: connector.KindText}); err != nil {
		t.Fatal(err)
	}
	ms := h.lines(2)
	if ms[0].ID != "connectord-7" || ms[1].ID != ms[0].ID || ms[1].Body != "once" {
		t.Errorf("agent got %+v", ms)
	}
	// With the progress store kept across the restart, nothing is repeated.
	// The process v2 stands for is gone first: left running, it logs in
	// again after the next process's login takes the resource (conflict),
	// and takes it back in the middle of that process's Send.
	if err := v2.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	h.progress = connector.NewMemoryProgress(16)
	v3, _ := h.vendor("ws", nil)
	if err := v3.Send(ctx(t), c, &connector.Message{ID: 8, Text: "twice?", Kind: connector.KindText}); err != nil {
		t.Fatal(err)
	}
	v4, _ := h.vendor("ws", nil)
	if err := v3.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := v4.Send(ctx(t), c, &connector.Message{ID: 8, Text: "twice?", Kind: connector.KindText}); err != nil {
		t.Fatal(err)
	}
	if err := v4.Send(ctx(t), c, &connector.Message{ID: 9, Text: "after", Kind: connector.KindText}); err != nil {
		t.Fatal(err)
	}
	ms = h.lines(4)
	if ms[2].Body != "twice?" || ms[3].Body != "after" {
		t.Errorf("agent got %q then %q", ms[2].Body, ms[3].Body)
	}
}

// An Open whose XMPP credentials could not be had is retried without a
// second chat session: CoBrowser already took an agent slot for it.
func TestOpenRetryKeepsChatSession(t *testing.T) {
	h := newHarness(t, "ws", nil)
	h.srv.Fail(1, 500, "xmppcredentials")
	c := conversation()
	if _, err := h.v.Open(ctx(t), c); err == nil || connector.IsPermanent(err) {
		t.Fatalf("Open with the credentials failing: %v, want a retryable error", err)
	}
	h.open(c)
	h.sink.waitType(t, c.ID, connector.EventJoined)
	if n := countPosts(h.srv.Requests(), "chatsessions"); n != 1 {
		t.Errorf("%d chat sessions created, want 1", n)
	}
}

// Health follows the API and the campaign.
func TestHealthFollowsAPI(t *testing.T) {
	h := newHarness(t, "ws", nil)
	waitFor(t, "ready", func() bool { return h.v.Health().Ready })
	h.srv.SetCampaignActive(false)
	waitFor(t, "unready: campaign inactive", func() bool {
		hl := h.v.Health()
		return !hl.Ready && strings.Contains(hl.Detail, "inactive")
	})
	h.srv.SetCampaignActive(true)
	h.srv.SetAvailable(0)
	waitFor(t, "ready with no availability", func() bool {
		hl := h.v.Health()
		return hl.Ready && strings.Contains(hl.Detail, "no agent")
	})
	h.srv.Fail(1000, 500, "campaigns")
	waitFor(t, "unready: API failing", func() bool { return !h.v.Health().Ready })
}
