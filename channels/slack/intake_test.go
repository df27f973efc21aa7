package slack

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

// ignoreTimes leaves out the receive time, which follows the wall clock.
var ignoreTimes = cmpopts.IgnoreFields(connector.Inbound{}, "ReceivedAt")

func TestIntakeBothModes(t *testing.T) {
	for _, mode := range []struct {
		name   string
		socket bool
	}{{"socket mode", true}, {"events api", false}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.socket, nil)
			e.start()
			root := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "my *printer* is on fire &amp; smoking"})
			reply := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: "hello?"})
			dm := e.fake.Post(slacktest.Post{Channel: dmAnn, User: ann, Text: "a private question"})
			end := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: root.TS, Text: " End Chat "})
			got := e.waitInbound(4)
			profile := connector.Profile{Name: "Ann", Email: "ann@example.com"}
			thread := chSupport + "/" + root.TS
			want := []connector.Inbound{
				{Channel: "slack.test", Customer: thread, Text: "my printer is on fire & smoking", SourceID: chSupport + "/" + root.TS, Profile: profile},
				{Channel: "slack.test", Customer: thread, Text: "hello?", SourceID: chSupport + "/" + reply.TS, Profile: profile, Continues: true},
				{Channel: "slack.test", Customer: dmAnn, Text: "a private question", SourceID: dmAnn + "/" + dm.TS, Profile: profile},
				{Channel: "slack.test", Customer: thread, SourceID: chSupport + "/" + end.TS, Profile: profile, Continues: true, End: true},
			}
			// The DM is another conversation: its order against the thread is free.
			sortBySource := cmpopts.SortSlices(func(a, b connector.Inbound) bool { return a.SourceID < b.SourceID })
			if diff := cmp.Diff(want, got, ignoreTimes, sortBySource); diff != "" {
				t.Errorf("inbound (-want +got):\n%s", diff)
			}
			sec, frac, _ := strings.Cut(root.TS, ".")
			s, _ := strconv.ParseInt(sec, 10, 64)
			us, _ := strconv.ParseInt(frac, 10, 64) // Slack's ts has 6 decimals
			for _, in := range got {
				if want := time.Unix(s, us*1000); in.SourceID == thread && !in.ReceivedAt.Equal(want) {
					t.Errorf("ReceivedAt = %v, want the message's ts %s (%v)", in.ReceivedAt, root.TS, want)
				}
			}
		})
	}
}

func TestIntakeIgnores(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	e.fake.Post(slacktest.Post{Channel: chOther, User: ann, Text: "not a support channel"})
	e.fake.Post(slacktest.Post{Channel: chSupport, BotID: otherBot, Text: "another app talking"})
	first := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "the customer"})
	e.waitInbound(1)
	// Our own post comes back as an event too, as in real Slack.
	if _, err := e.ch.Send(t.Context(), chSupport+"/"+first.TS, &connector.Message{ID: 1, Kind: connector.KindText, Text: "ours", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	last := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: first.TS, Text: "the customer again"})
	got := e.waitInbound(2)
	time.Sleep(200 * time.Millisecond) // the ignored ones had every chance
	if got = e.sink.inbound(); len(got) != 2 || got[1].SourceID != chSupport+"/"+last.TS {
		t.Errorf("inbound = %+v, want only the customer's messages", got)
	}
}

func TestIntakeAllowBots(t *testing.T) {
	e := newEnv(t, true, func(cfg map[string]any) { cfg["allow_bots"] = true })
	e.start()
	e.fake.Post(slacktest.Post{Channel: chSupport, BotID: otherBot, Text: "a workflow asks for help"})
	if got := e.waitInbound(1); got[0].Text != "a workflow asks for help" {
		t.Errorf("inbound = %+v", got)
	}
}

func TestSocketModeAcksOnlyAfterCommit(t *testing.T) {
	e := newEnv(t, true, nil)
	e.fake.SetAckTimeout(5 * time.Second) // no redelivery while we look
	e.start()
	hold := make(chan struct{})
	e.sink.mu.Lock()
	e.sink.hold = hold
	e.sink.mu.Unlock()
	msg := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "hi"})
	e.waitFor("the event in the sink", func() bool { e.sink.mu.Lock(); defer e.sink.mu.Unlock(); return e.sink.calls > 0 })
	time.Sleep(100 * time.Millisecond)
	if acks := ackedEvents(e.fake, msg.EventID); acks != 0 {
		t.Fatalf("acked %d times before the commit", acks)
	}
	close(hold)
	e.waitFor("the ack", func() bool { return ackedEvents(e.fake, msg.EventID) == 1 })
}

func TestSocketModeRedeliversUncommitted(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	e.sink.mu.Lock()
	e.sink.fail = errors.New("store unavailable")
	e.sink.mu.Unlock()
	msg := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "keep trying"})
	e.waitFor("a failed commit", func() bool { e.sink.mu.Lock(); defer e.sink.mu.Unlock(); return e.sink.calls > 0 })
	e.sink.mu.Lock()
	e.sink.fail = nil
	e.sink.mu.Unlock()
	got := e.waitInbound(1) // the redelivery (retry_attempt 1) commits
	if got[0].SourceID != chSupport+"/"+msg.TS {
		t.Errorf("inbound = %+v", got)
	}
	e.waitFor("the ack of the redelivery", func() bool { return ackedEvents(e.fake, msg.EventID) == 1 })
}

func TestSocketModeSameEventThrice(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	msg := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "once", Deliveries: 3})
	e.waitFor("three acks", func() bool { return ackedEvents(e.fake, msg.EventID) == 3 })
	if got := e.sink.inbound(); len(got) != 1 {
		t.Errorf("inbound = %+v, want once", got)
	}
}

func TestSocketModeRefreshLosesNothing(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	var sent []string
	for i := range 20 {
		if i == 5 || i == 12 {
			e.fake.Refresh()
		}
		if i == 16 {
			e.fake.DropSockets()
		}
		m := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "line"})
		sent = append(sent, chSupport+"/"+m.TS)
		time.Sleep(20 * time.Millisecond)
	}
	got := e.waitInbound(20)
	var ids []string
	for _, in := range got {
		ids = append(ids, in.SourceID)
	}
	if diff := cmp.Diff(sent, ids, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("relayed (-sent +got):\n%s", diff)
	}
	if n := e.fake.Connections(); n < 3 {
		t.Errorf("connections = %d, want a new one per refresh and drop", n)
	}
	e.waitFor("a socket again", func() bool { return e.ch.Health().Ready })
}

func ackedEvents(s *slacktest.Server, eventID string) int {
	n := 0
	for _, a := range s.Acks() {
		if a.EventID == eventID {
			n++
		}
	}
	return n
}
