package connectortest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/connectord/connectord/connector"
)

var countTests = []storeTest{
	{"OpenCounts", testOpenCounts},
	{"CountsMatchRandomOperations", testCountsRandom},
}

func (f *fixture) openCounts(channel string) map[connector.State]int {
	f.t.Helper()
	m, err := f.s.OpenCounts(f.ctx, channel)
	if err != nil {
		f.t.Fatalf("OpenCounts(%s): %v", channel, err)
	}
	if _, ok := m[connector.StateEnded]; ok {
		f.t.Errorf("OpenCounts(%s) has ended conversations: %v", channel, m)
	}
	return nonZero(m)
}

type counts = map[connector.State]int

func testOpenCounts(f *fixture) {
	f.diff("OpenCounts of an empty store", counts{}, f.openCounts(chSMS))
	a := f.inbound(chSMS, alice, "SM1", "a").Conversation.ID
	b := f.inbound(chSMS, bob, "SM2", "b").Conversation.ID
	s := f.inbound(chSlack, alice, "EV1", "c").Conversation.ID
	f.diff("sms after two inbound", counts{connector.StatePending: 2}, f.openCounts(chSMS))
	f.diff("slack after one inbound", counts{connector.StatePending: 1}, f.openCounts(chSlack))

	f.apply(connector.Change{ConversationID: b, State: connector.StateQueued})
	f.apply(connector.Change{ConversationID: s, State: connector.StateActive})
	f.apply(connector.Change{ConversationID: s, Touch: true}) // no state change
	f.diff("sms after queueing one", counts{connector.StatePending: 1, connector.StateQueued: 1}, f.openCounts(chSMS))
	f.diff("slack after activating", counts{connector.StateActive: 1}, f.openCounts(chSlack))

	f.end(a, "agent")
	f.end(a, "agent")                                                          // ending twice counts once
	f.apply(connector.Change{ConversationID: a, State: connector.StateActive}) // an ended conversation stays ended
	f.diff("sms after ending one", counts{connector.StateQueued: 1}, f.openCounts(chSMS))
	f.diff("stats after ending one", counts{connector.StateQueued: 1, connector.StateActive: 1, connector.StateEnded: 1},
		nonZero(f.stats().Conversations))

	f.settle()
	tick()
	if n := f.purge(time.Now(), 100); n != 1 {
		f.t.Fatalf("Purge = %d, want 1", n)
	}
	f.diff("sms after Purge", counts{connector.StateQueued: 1}, f.openCounts(chSMS))
	f.diff("stats after Purge", counts{connector.StateQueued: 1, connector.StateActive: 1}, nonZero(f.stats().Conversations))
	f.inbound(chSMS, alice, "SM3", "again")
	f.diff("sms after a new conversation", counts{connector.StatePending: 1, connector.StateQueued: 1}, f.openCounts(chSMS))
	f.diff("OpenCounts of an unknown channel", counts{}, f.openCounts("nowhere"))
}

// testCountsRandom runs a fixed pseudo-random mix of every operation that
// creates, moves or deletes a conversation, keeping its own model of each
// conversation's state, and compares the store's counts with the model and
// with OpenConversations after each step.
func testCountsRandom(f *fixture) {
	rng := rand.New(rand.NewPCG(7, 11))
	channels := []string{chSMS, chSlack}
	model := map[int64]*connector.Conversation{} // by id; purged ones removed
	sid := 0
	for step := range 150 {
		ch, customer := channels[rng.IntN(2)], fmt.Sprint("+1555000020", rng.IntN(5))
		switch op := rng.IntN(10); {
		case op < 4:
			sid++
			res := f.inbound(ch, customer, fmt.Sprint("R", sid), "x")
			model[res.Conversation.ID] = res.Conversation
		case op < 6:
			if c := pick(rng, model, true); c != nil {
				st := []connector.State{connector.StatePending, connector.StateQueued, connector.StateActive}[rng.IntN(3)]
				model[c.ID] = f.apply(connector.Change{ConversationID: c.ID, State: st}).Conversation
			}
		case op < 8:
			if c := pick(rng, model, rng.IntN(2) == 0); c != nil {
				model[c.ID] = f.apply(connector.Change{ConversationID: c.ID, State: connector.StateEnded}).Conversation
			}
		case op < 9:
			res, err := f.s.RecordOutbound(f.ctx, connector.Outbound{Vendor: vendor, Channel: ch, Customer: customer,
				Text: "x", SourceID: fmt.Sprint("O", step)})
			if err != nil {
				f.t.Fatal(err)
			}
			model[res.Message.ConversationID] = f.conversation(res.Message.ConversationID)
		default:
			f.settle()
			tick()
			f.purgeModel(model, rng.IntN(4))
		}
		f.checkCounts(step, model)
	}
}

// pick returns a random conversation of the model, open or ended, or nil.
func pick(rng *rand.Rand, model map[int64]*connector.Conversation, open bool) *connector.Conversation {
	var cs []*connector.Conversation
	for _, id := range slices.Sorted(maps.Keys(model)) { // sorted: the same run every time
		if c := model[id]; c.Open() == open {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return cs[rng.IntN(len(cs))]
}

// purgeModel purges up to limit conversations and drops from the model those
// the store no longer has, which must be as many as Purge reported.
func (f *fixture) purgeModel(model map[int64]*connector.Conversation, limit int) {
	f.t.Helper()
	n := f.purge(time.Now(), limit)
	removed := 0
	for id, c := range model {
		if _, err := f.s.Conversation(f.ctx, id); errors.Is(err, connector.ErrNotFound) {
			if c.Open() {
				f.t.Errorf("Purge deleted open conversation %d", id)
			}
			delete(model, id)
			removed++
		}
	}
	if removed != n || n > limit {
		f.t.Errorf("Purge(limit %d) reported %d, deleted %d", limit, n, removed)
	}
}

// checkCounts compares Stats.Conversations and OpenCounts with the model, and
// the model's open conversations with OpenConversations.
func (f *fixture) checkCounts(step int, model map[int64]*connector.Conversation) {
	f.t.Helper()
	all, open := counts{}, map[string]counts{chSMS: {}, chSlack: {}}
	for _, c := range model {
		all[c.State]++
		if c.Open() {
			open[c.Channel][c.State]++
		}
	}
	f.diff(fmt.Sprintf("step %d: Stats.Conversations", step), all, nonZero(f.stats().Conversations))
	for ch, want := range open {
		f.diff(fmt.Sprintf("step %d: OpenCounts(%s)", step, ch), want, f.openCounts(ch))
	}
	listed, err := f.s.OpenConversations(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	listedCounts := counts{}
	for _, c := range listed {
		listedCounts[c.State]++
	}
	delete(all, connector.StateEnded)
	f.diff(fmt.Sprintf("step %d: open conversations listed", step), all, listedCounts)
}
