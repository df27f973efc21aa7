package connector

import (
	"context"
	"encoding/json"
)

// Vendor is the agent side: a contact-center product. A vendor opens a
// conversation for a first message, sends customer messages, ends it, and
// reports agent events to the core's EventSink. Its optional abilities,
// found by type assertion, follow it in this file.
//
// The core calls Open, Send and End concurrently for different
// conversations, never two at once for one conversation, in the order the
// messages were stored. Their errors mean what Channel.Send's do: Permanent
// (never: the core fails the message and ends the conversation with a
// notice), RetryAfter, or any other error (retried with back-off).
type Vendor interface {
	// Name is the instance name, "whoson.sales".
	Name() string
	// Start connects whatever the vendor keeps open for all conversations and
	// returns; a vendor with one connection per conversation may do nothing.
	// As for Channel.Start, an error means the vendor can never work as
	// configured; an unreachable server is retried in the background and
	// reported through Health.
	Start(ctx context.Context) error
	// Open starts the conversation at the vendor and returns its session state,
	// which the core stores with the conversation. It returns once the vendor
	// accepted the conversation or refused it; a refusal (no agent) is reported
	// as an EventNoAgent through the sink before Open returns, with a nil error.
	// Events for the conversation may reach the sink before Open returns; one
	// that moves the state on should carry the session, or a crash before Open's
	// result is stored costs a second Open. The session must not be empty.
	Open(ctx context.Context, c *Conversation) (json.RawMessage, error)
	// Send relays one customer message (KindText), or the context line that
	// starts a chat opened again (KindContext), to the agent. A Send of a
	// message the core already tried (the same m.ID) must not show the agent
	// the line twice where the vendor gives any way to tell. An error wrapping
	// ErrChatLost says the vendor no longer has the chat: the core opens a new
	// one (Open again, with c.Session empty) and sends m there.
	Send(ctx context.Context, c *Conversation, m *Message) error
	// End ends the conversation at the vendor because the customer or connectord
	// ended it. It must succeed (nil) when the vendor already ended it.
	End(ctx context.Context, c *Conversation, reason string) error
	// Stop closes every connection; it tolerates a half start. Conversations stay
	// open in the store and are resumed on the next start where the vendor can.
	Stop(ctx context.Context) error
}

// Resumer is a vendor that can continue a stored session after a restart or
// a lost connection. The core calls Resume for every open conversation with a
// session when it starts. When the vendor will not continue the chat, Resume
// returns an error wrapping ErrChatLost and the core opens a new chat for the
// conversation (it is not ended); a Permanent error ends the conversation;
// any other error means "try again". Later, when a reconnect finds the chat
// gone, the vendor reports EventLost through the sink.
type Resumer interface {
	Resume(ctx context.Context, c *Conversation) error
}

// MessageLeaver is a vendor that takes a message when no agent is available.
type MessageLeaver interface {
	LeaveMessage(ctx context.Context, c *Conversation, m *Message) error
}

// Deliverer is a vendor that sends messages it starts itself (campaigns)
// through a channel; the configuration check refuses one that names a
// channel that is not configured.
type Deliverer interface {
	// DeliverVia is the channel instance ("sms.main"), "" for none, and the
	// configuration key that names it.
	DeliverVia() (channel, key string)
}
