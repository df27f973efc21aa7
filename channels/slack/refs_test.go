package slack

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector/richtext"
)

const (
	bob = "U0BOB00001"
	cy  = "U0CY000001"
)

// mentionEnv is a workspace where Bob and Cy can be mentioned.
func mentionEnv(t *testing.T, socket bool) *env {
	e := newEnv(t, socket, nil)
	e.fake.AddUser(slacktest.User{ID: bob, Name: "bob", DisplayName: "Bob"})
	e.fake.AddUser(slacktest.User{ID: cy, Name: "cy", RealName: "Cy Young"})
	return e
}

// With users.info and conversations.info slow (1.5 s each), a message naming
// two users and a channel is committed on its first delivery, within
// Slack's 3 s, with its references kept; the agent's text names them once
// Slack answers. Before, the lookups ran one after another inside the
// commit's budget and the message was refused on every delivery.
func TestMentionsCommittedBeforeTheyAreNamed(t *testing.T) {
	for _, socket := range []bool{false, true} {
		t.Run(map[bool]string{false: "events api", true: "socket mode"}[socket], func(t *testing.T) {
			e := mentionEnv(t, socket)
			e.fake.SetAckTimeout(3 * time.Second) // Slack's own
			e.start()
			e.fake.Fail("users.info", slacktest.Fault{Delay: 1500 * time.Millisecond})
			e.fake.Fail("conversations.info", slacktest.Fault{Delay: 1500 * time.Millisecond})
			msg := e.fake.Post(slacktest.Post{Channel: chSupport, User: ann,
				Text: "ask <@" + bob + "> and <@" + cy + "> in <#" + chOther + "> &lt;@" + bob + "&gt;"})
			in := e.waitInbound(1)[0]
			want := "ask <@" + bob + "> and <@" + cy + "> in <#" + chOther + "> <" + joiner + "@" + bob + ">"
			if in.Text != want {
				t.Errorf("stored text %q, want %q", in.Text, want)
			}
			if socket {
				e.waitFor("the ack", func() bool { return ackedEvents(e.fake, msg.EventID) > 0 })
			} else {
				e.waitFor("the delivery answered", func() bool { return len(e.fake.Deliveries()) > 0 })
				if d := e.fake.Deliveries()[0]; d.Attempt != 0 || d.Status != http.StatusOK {
					t.Errorf("first delivery %+v, want 200", d)
				}
			}
			// The lookups begun at intake answer 1.5 s after it; Resolve
			// waits for them.
			named := "ask @Bob and @Cy Young in #random <@" + bob + ">"
			var got string
			e.waitFor("the names", func() bool { got = e.ch.Resolve(t.Context(), in.Text); return got == named })
			if n := len(e.fake.Calls("users.info")); n > 3 {
				t.Errorf("users.info called %d times for three users", n)
			}
			// Committed on the first delivery: had the commit waited for the
			// lookups (4.5 s one after another), the fake Slack would have
			// redelivered at 3 s, before the names could answer, and the
			// redelivery would have been acked too.
			if socket && ackedEvents(e.fake, msg.EventID) != 1 {
				t.Errorf("%d acks for the event, want 1 (no redelivery)", ackedEvents(e.fake, msg.EventID))
			}
		})
	}
}

// With Slack hanging, Resolve gives up at its bound and shows ids. Slack
// hangs for an hour, so a Resolve that waited for it would not return
// before the test gives up.
func TestResolveBoundedWhenSlackHangs(t *testing.T) {
	e := mentionEnv(t, false)
	e.start()
	e.fake.Fail("users.info", slacktest.Fault{Delay: time.Hour})
	e.fake.Fail("conversations.info", slacktest.Fault{Delay: time.Hour})
	got := <-resolving(t.Context(), e, "ask <@"+bob+"> in <#"+chOther+">")
	if want := "ask @" + bob + " in #" + chOther; got != want {
		t.Errorf("Resolve = %q, want %q", got, want)
	}
	// Its context ending sooner ends it sooner: a Resolve begun first, with
	// a live context, waits out the bound (resolveWait); one begun after it
	// with an ended context has returned while the first still waits.
	bounded := resolving(t.Context(), e, "<@"+cy+">")
	e.waitFor("the lookup running", func() bool {
		e.ch.names.mu.Lock()
		defer e.ch.names.mu.Unlock()
		return len(e.ch.names.flights) > 0
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e.ch.Resolve(ctx, "<@"+cy+">")
	select {
	case <-bounded:
		t.Errorf("Resolve went on past its context, until its own bound")
	default:
		<-bounded
	}
}

// resolving runs Resolve and delivers its answer; a Resolve that never
// returns fails the test at the test's deadline.
func resolving(ctx context.Context, e *env, text string) <-chan string {
	got := make(chan string, 1)
	go func() { got <- e.ch.Resolve(ctx, text) }()
	return got
}

// users.info slow: the author is named from the event's user_profile; the
// lookup goes on and names (with the email) the author's next message at
// once, though users.info is slow again.
func TestAuthorLookupBoundedAndCached(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	e.fake.Fail("users.info", slacktest.Fault{Delay: 1500 * time.Millisecond, Times: 1})
	event := func(id, ts string) string {
		return `{"type":"event_callback","event_id":"` + id + `","event":{"type":"message","channel":"` + chSupport +
			`","user":"` + ann + `","text":"hi","ts":"` + ts + `","user_profile":{"real_name":"Ann from the event"}}}`
	}
	if got := e.postSigned(event("Ev1", "1763900000.000100"), e.fake.SigningSecret, time.Now()); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	// The event's name, not users.info's: the commit did not wait for the
	// lookup (1.5 s) past its bound (authorWait, 800ms).
	if p := e.waitInbound(1)[0].Profile; p.Name != "Ann from the event" {
		t.Errorf("profile %+v, want the event's", p)
	}
	e.waitFor("the lookup answered", func() bool { _, ok := e.ch.names.cachedUser(ann); return ok })
	e.fake.Fail("users.info", slacktest.Fault{Delay: time.Minute})
	if got := e.postSigned(event("Ev2", "1763900000.000200"), e.fake.SigningSecret, time.Now()); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	if p := e.waitInbound(2)[1].Profile; p.Name != "Ann" || p.Email != "ann@example.com" {
		t.Errorf("profile %+v, want users.info's, cached", p)
	}
}

// Resolve(storedText(x)) is what PlainFromMrkdwn made of x with the names
// at hand, escapes included: a customer's literal "<@U1>" is never named.
func TestStoredTextRoundTrip(t *testing.T) {
	names := map[string]string{"U1": "Ann", "C1": "general", "U2": "a&amp;b"}
	tests := []struct{ in, stored, agent string }{
		{"hi <@U1>", "hi <@U1>", "hi @Ann"},
		{"in <#C1> and <#C9>", "in <#C1> and <#C9>", "in #general and #C9"},
		{"<@U1|ann> <#C1|gen>", "@ann #gen", "@ann #gen"},
		{"&lt;@U1&gt; is how *you* write <@U1>", "<" + joiner + "@U1> is how you write <@U1>", "<@U1> is how you write @Ann"},
		{"&lt;" + joiner + "#C1&gt;", "<" + joiner + joiner + "#C1>", "<" + joiner + "#C1>"},
		{"a &amp; b &lt;c&gt; <@U2>", "a & b <c> <@U2>", "a & b <c> @a&amp;b"},
		{"`<@U1>` in code", "<@U1> in code", "@Ann in code"},
		{"*<@U1>*", "<@U1>", "@Ann"},
		{"&lt;<@U1>", "<<@U1>", "<@Ann"},
		{"<!here> <https://x.io|x>", "@here x (https://x.io)", "@here x (https://x.io)"},
		{"no refs", "no refs", "no refs"},
	}
	for _, tt := range tests {
		stored := storedText(tt.in)
		if stored != tt.stored {
			t.Errorf("storedText(%q) = %q, want %q", tt.in, stored, tt.stored)
		}
		agent := renderRefs(stored, refNames(stored, names))
		if agent != tt.agent {
			t.Errorf("agent text of %q = %q, want %q", tt.in, agent, tt.agent)
		}
		if plain := richtext.PlainFromMrkdwn(tt.in, names); agent != plain {
			t.Errorf("agent text of %q = %q; PlainFromMrkdwn makes %q", tt.in, agent, plain)
		}
	}
}

// refNames is names for the tokens of a stored text.
func refNames(stored string, names map[string]string) map[ref]string {
	out := map[ref]string{}
	for _, r := range storedRefs(stored) {
		if n, ok := names[r.id]; ok {
			out[r] = n
		}
	}
	return out
}
