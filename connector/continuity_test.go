package connector_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// resolvingChannel names <@U…> references on the way to the agent.
type resolvingChannel struct{ *fakeChannel }

func (resolvingChannel) Resolve(_ context.Context, text string) string {
	return strings.ReplaceAll(text, "<@U1>", "@Ann")
}

// A Resolver's names reach the agent; the stored line keeps the text as it
// came, so that the commit never waited for the remote side.
func TestResolverNamesOnTheWayToTheAgent(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.asChannel = resolvingChannel{h.channel} })
	h.inbound(alice, "SM1", "ask <@U1> please")
	got := texts(h.toAgent.wait(t, 1, 5*time.Second))
	if diff := cmp.Diff([]string{"text:ask @Ann please"}, got); diff != "" {
		t.Errorf("to agent (-want +got):\n%s", diff)
	}
	h.idle()
	ms, err := h.store.Messages(context.Background(), h.openConversation(alice).ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Text != "ask <@U1> please" {
		t.Errorf("stored %+v, want the text as it came", ms)
	}
}
