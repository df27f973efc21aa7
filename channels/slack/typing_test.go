package slack

import (
	"context"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
)

// visible returns the texts of the thread's replies that are not deleted.
func (e *env) visible(root string) []string {
	var out []string
	for _, m := range e.fake.Replies(chSupport, root) {
		if !m.Deleted {
			out = append(out, m.Text)
		}
	}
	return out
}

func TestTypingIsOneMessage(t *testing.T) {
	e := newEnv(t, true, nil)
	e.start()
	to, root := e.thread("help")
	for range 3 {
		e.ch.ShowTyping(context.Background(), to, true)
	}
	e.waitFor("the indicator", func() bool { return len(e.visible(root.TS)) == 1 })
	time.Sleep(50 * time.Millisecond)
	if got := e.visible(root.TS); len(got) != 1 || got[0] != typingText {
		t.Fatalf("thread = %q, want one indicator", got)
	}
	e.ch.ShowTyping(context.Background(), to, false)
	e.waitFor("the indicator gone", func() bool { return len(e.visible(root.TS)) == 0 })

	// The agent's line replaces the indicator.
	e.ch.ShowTyping(context.Background(), to, true)
	e.waitFor("the indicator", func() bool { return len(e.visible(root.TS)) == 1 })
	if _, err := e.send(to, &connector.Message{ID: 1, Kind: connector.KindText, Text: "done typing", Agent: "Dee"}); err != nil {
		t.Fatal(err)
	}
	if got := e.visible(root.TS); len(got) != 1 || got[0] != "done typing" {
		t.Errorf("thread = %q, want only the line", got)
	}
}

func TestTypingLeftoverRemovedByCatchUp(t *testing.T) {
	e := newEnv(t, true, nil)
	root := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "help", Silent: true})
	to := chSupport + "/" + root.TS
	// A process that died while the agent typed.
	dead := build(t, map[string]any{"bot_token": e.fake.BotToken, "app_token": e.fake.AppToken,
		"api_url": e.fake.APIURL(), "channels": []string{chSupport}, "post_interval": "0s"}, &fakeSink{}, "")
	if err := dead.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dead.ShowTyping(context.Background(), to, true)
	e.waitFor("the indicator", func() bool { return len(e.visible(root.TS)) == 1 })
	dead.Stop(context.Background())

	e.sink.open = []connector.CustomerCursor{{Customer: to, LastSourceID: chSupport + "/" + root.TS}}
	e.start()
	e.waitFor("the leftover gone", func() bool { return len(e.visible(root.TS)) == 0 })
}
