package connector

import (
	"context"
	"net/http"
)

// Channel is the customer side: SMS, Slack. A channel runs its intake
// (webhooks or a socket), hands every customer message to the core's
// InboundSink and delivers outbound messages to a customer address. Its
// optional abilities, found by type assertion, follow it in this file.
type Channel interface {
	// Name is the instance name, "sms.main".
	Name() string
	// Start begins intake and returns once it runs. An error means the
	// channel can never work as configured (credentials the remote side
	// refused): the daemon does not start. A remote side that is only
	// unreachable is not an error: the channel keeps trying in the
	// background and says so through Health.
	Start(ctx context.Context) error
	// Send delivers one message (text or notice) to a customer address and
	// returns the id the remote side gave it.
	//
	// The core calls Send concurrently for different conversations, never for
	// two messages of one conversation at once, in the order they were
	// stored. A Send of a message the core already tried (the same m.ID,
	// after an error, a timeout or a restart) must not repeat what already
	// reached the customer: a channel that sends in parts, or whose outcome
	// can be unknown, looks up what it did before sending again.
	//
	// Errors: Permanent (this message can never be delivered: the core fails
	// it and ends the conversation), RetryAfter (try again no sooner), any
	// other error (try again with back-off until conversation.give_up_after).
	Send(ctx context.Context, to string, m *Message) (remoteID string, err error)
	// Stop stops intake and releases every resource. It tolerates a channel
	// that was never started or only half started.
	Stop(ctx context.Context) error
}

// HTTPChannel is a channel with webhooks. Routes returns patterns for
// http.ServeMux ("POST /sms/main") and their handlers; the core mounts them
// on the public listener, http.listen, behind its body limit.
type HTTPChannel interface {
	Routes() map[string]http.Handler
}

// Splitter is a channel with a length limit. The core stores each part of a
// plain or native (rendered) message as its own message, so every part is
// sent, retried and tracked on its own and a retry never repeats a part that
// already went out.
type Splitter interface {
	Split(text string) []string
}

// Renderer is a channel with a markup of its own, or none. The core renders
// an agent line's HTML or Markdown with it before it stores the line, so the
// line is split once (Splitter) into parts stored, sent and retried one by
// one, and Send gets text it can send as it is.
type Renderer interface {
	// Render returns text, written in format f (FormatHTML or
	// FormatMarkdown), as the channel sends it, with the format of the
	// result: FormatPlain, or FormatNative for the channel's own markup.
	// It must not fail, and its output must stay within a small multiple of
	// its input.
	Render(text string, f Format) (string, Format)
}

// NoticeMarker is a channel that also shows a conversation's state its own
// way as notices go out (Slack: a reaction on the thread's root). Such a
// channel gets every notice, also one whose template renders empty:
// Message.Notice names the template, and an empty Text means "show the
// state, say nothing". Other channels never get an empty notice.
type NoticeMarker interface {
	MarksNotices()
}

// TypingDisplay is a channel that can show that the agent is typing. The
// core calls ShowTyping as the vendor reports typing; it must not block, it
// is best effort, and nothing is stored.
type TypingDisplay interface {
	ShowTyping(ctx context.Context, to string, on bool)
}

// Resolver is a channel whose customer text carries references only the
// remote side can name (Slack's <@U…> and <#C…>). The channel commits the
// text as it came, so that a slow remote side never delays the commit its
// acknowledgement waits for; the core calls Resolve on the way to the agent,
// on the conversation's lane, before each Send of a customer line. Resolve
// bounds its own time and never fails: a reference it cannot name stays
// readable as it is. It must be safe for concurrent use.
type Resolver interface {
	Resolve(ctx context.Context, text string) string
}

// OptOuts keeps which customers asked not to be messaged any more on a
// channel (an SMS STOP), per sender (the number or messaging service they
// wrote to) and customer, in the store: it outlives restarts and holds for
// every instance.
type OptOuts interface {
	// SetOptOut records that customer opted out of messages from sender on
	// channel (out), or back in.
	SetOptOut(ctx context.Context, channel, sender, customer string, out bool) error
	// OptedOut reports whether customer opted out of messages from sender
	// on channel and has not opted back in.
	OptedOut(ctx context.Context, channel, sender, customer string) (bool, error)
}
