package customerchannel

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

const joinedDee = `{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantJoined","info":{"participant":{"id":"a1","name":"Dee"}}}`

// info is a conversationInfo for conv-1 whose participant list, under key,
// is list.
func info(key, list string) string {
	return `{"conversation":{"id":"conv-1"},"messages":[],"` + key + `":` + list + `,"role":"customer"}`
}

// TestJoinedFromParticipants: an agent who joined before our join reached
// the server sent no participantJoined we saw; the join's answer lists them
// (role "agent"): that is the join, once. A later participantJoined of the
// same agent adds nothing; another agent is a transfer. The spec's key
// "participant" is read like the simulator's "participants"; a list without
// roles names no agent. Before the fix the conversation never had an agent.
func TestJoinedFromParticipants(t *testing.T) {
	const (
		typing = `{"type":"ActivityMessage","conversationId":"conv-1","activityType":"typing","info":{"typing":true}}`
		eve    = `{"type":"ActivityMessage","conversationId":"conv-1","activityType":"participantJoined","info":{"participant":{"id":"a2","name":"Eve"}}}`
	)
	for name, tc := range map[string]struct {
		events []string
		want   []connector.Event
	}{
		"participants": {[]string{info("participants", `[{"id":"cust-1","name":"Ann","role":"customer"},{"id":"bot","name":"Bot","role":"bot"},{"id":"a1","name":"Dee","role":"agent"}]`), joinedDee, typing, eve},
			[]connector.Event{{ConversationID: 7, Type: connector.EventJoined, Agent: "Dee"}, {ConversationID: 7, Type: connector.EventTyping, Typing: true},
				{ConversationID: 7, Type: connector.EventTransferred, Agent: "Eve"}}},
		"spec key": {[]string{info("participant", `[{"id":"a1","name":"Dee","role":"AGENT"}]`), eve},
			[]connector.Event{{ConversationID: 7, Type: connector.EventJoined, Agent: "Dee"}, {ConversationID: 7, Type: connector.EventTransferred, Agent: "Eve"}}},
		"no roles": {[]string{info("participants", `[{"id":"bot","name":"Bot"},{"id":"a1","name":"Dee"}]`), eve},
			[]connector.Event{{ConversationID: 7, Type: connector.EventJoined, Agent: "Eve"}}},
		"not a list": {[]string{info("participant", `{"id":"a1","name":"Dee","role":"agent"}`), eve},
			[]connector.Event{{ConversationID: 7, Type: connector.EventJoined, Agent: "Eve"}}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			_, c := h.open()
			c.server(evConversation, tc.events[0])
			for _, e := range tc.events[1:] {
				c.server(evArrived, e)
			}
			// Eve's join is the last event sent: once it is reported, every
			// event before it has been handled.
			waitFor(t, "Eve", func() bool { return hasAgent(h.rec, "Eve") })
			ev, _ := h.rec.all()
			if diff := cmp.Diff(tc.want, ev); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func hasAgent(r *recorder, name string) bool {
	ev, _ := r.all()
	for _, e := range ev {
		if e.Agent == name {
			return true
		}
	}
	return false
}

// TestResumedAgentNotJoinedAgain: after a restart, the rejoin's answer
// lists the agent the core already has: no second join; a different one
// (a transfer while we were away) is a transfer.
func TestResumedAgentNotJoinedAgain(t *testing.T) {
	sink := &scriptedSink{entered: make(chan connector.Event, 8), answer: func(context.Context, connector.Event) error { return nil }}
	v, c, _ := startObserved(t, sink, "", true) // conv-1 resumed; the core knows its agent, Dee
	c.server(evConversation, info("participants", `[{"id":"a1","name":"Dee","role":"agent"}]`))
	c.server(evArrived, joinedDee)
	c.server(evConversation, info("participants", `[{"id":"a2","name":"Eve","role":"agent"}]`))
	<-sink.entered
	// entered is told before the event is recorded: wait for the record.
	waitFor(t, "the transfer recorded", func() bool { ev, _ := sink.all(); return len(ev) > 0 })
	ev, _ := sink.all()
	want := []connector.Event{{ConversationID: 7, Type: connector.EventTransferred, Agent: "Eve"}}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if got := v.live["conv-1"].agent; got != "Eve" {
		t.Errorf("agent %q, want Eve", got)
	}
}

// TestAgentJoinedWhileAway: against the simulator, an agent joins while no
// connection of ours is in the chat; the resumed vendor reports the join
// from the rejoin's participants, once, before Resume returns.
func TestAgentJoinedWhileAway(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		sim := customerchanneltest.StartTest(t, eio)
		ctx := simCtx(t)
		a := newHarnessAt(t, sim.URL, eio)
		waitFor(t, "connected", func() bool { return a.v.Health().Ready })
		conv := conversation()
		raw, err := a.v.Open(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		conv.Session, conv.State = raw, connector.StateQueued
		if err := a.v.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		err = sim.Agent(ctx, customerchanneltest.AgentAction{ConversationID: simSession(t, conv).ConversationID, Action: "join", Name: "Zoe"})
		if err != nil {
			t.Fatal(err)
		}
		b := newHarnessAt(t, sim.URL, eio)
		waitFor(t, "connected", func() bool { return b.v.Health().Ready })
		if err := b.v.Resume(ctx, conv); err != nil {
			t.Fatal(err)
		}
		ev, _ := b.rec.all()
		want := []connector.Event{{ConversationID: 7, Type: connector.EventJoined, Agent: "Zoe"}}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("events by the time Resume returned (-want +got):\n%s", diff)
		}
	})
}
