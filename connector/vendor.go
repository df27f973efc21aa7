package connector

import (
	"context"
	"encoding/json"
)

// Vendor is the agent side: a contact-center product. A vendor opens a
// conversation for a first message, sends customer messages, ends it, and
// reports agent events to its EventSink.
type Vendor interface {
	// Name is the instance name, "whoson.sales".
	Name() string
	// Start connects whatever the vendor keeps open for all conversations and
	// returns; a vendor with one connection per conversation may do nothing.
	Start(ctx context.Context) error
	// Open starts the conversation at the vendor and returns its session state,
	// which the core stores with the conversation. It returns once the vendor
	// accepted the conversation or refused it; a refusal (no agent) is reported
	// as an EventNoAgent through the sink before Open returns, with a nil error.
	// Events for the conversation may reach the sink before Open returns; one
	// that moves the state on should carry the session, or a crash before Open's
	// result is stored costs a second Open. The session must not be empty.
	Open(ctx context.Context, c *Conversation) (json.RawMessage, error)
	// Send relays one customer message (KindText) to the agent.
	Send(ctx context.Context, c *Conversation, m *Message) error
	// End ends the conversation at the vendor because the customer or connectord
	// ended it. It must succeed (nil) when the vendor already ended it.
	End(ctx context.Context, c *Conversation, reason string) error
	// Stop closes every connection; it tolerates a half start. Conversations stay
	// open in the store and are resumed on the next start where the vendor can.
	Stop(ctx context.Context) error
}

// EventSink takes agent events from a vendor.
type EventSink interface {
	// Event commits an agent event. It returns nil once the event's effects are
	// durably stored (a duplicate SourceID is dropped and also returns nil). It
	// is safe for concurrent use and must be called in the order the vendor
	// received events for one conversation.
	//
	// While the store refuses writes for a moment, Event keeps trying (with
	// back-off) and blocks its caller, so that nothing a vendor said is lost
	// and order is kept. It returns an error only when ctx is done (the
	// event was not stored: the vendor must not count it as received) or
	// when the event can never be stored (a Permanent error: an unknown
	// conversation), which the vendor logs and skips.
	Event(ctx context.Context, e Event) error
}

// Resumer is a vendor that can continue a stored session after a restart or
// a lost connection. The core calls Resume for every open conversation with a
// session when it starts. A vendor that refuses to continue reports
// EventEnded through the sink and returns nil; an error means "try again".
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

// Typer is a vendor that can show the agent that the customer is typing.
type Typer interface {
	Typing(ctx context.Context, c *Conversation, on bool) error
}
