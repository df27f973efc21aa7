package connector

import (
	"context"
	"net/http"
)

// Channel is the customer side: SMS, Slack. A channel runs its intake
// (webhooks or a socket), hands every customer message to its InboundSink and
// delivers outbound messages to a customer address.
type Channel interface {
	// Name is the instance name, "sms.main".
	Name() string
	// Start begins intake. It must return once intake is running (or failed to
	// start); the work goes on in goroutines until Stop.
	Start(ctx context.Context) error
	// Send delivers one message (text or notice) to a customer address and
	// returns the id the remote side gave it. Errors are classified with
	// Permanent and RetryAfter; an unclassified error is retried.
	Send(ctx context.Context, to string, m *Message) (remoteID string, err error)
	// Stop stops intake and releases every resource; it tolerates a channel
	// that was never started or only half started.
	Stop(ctx context.Context) error
}

// InboundSink takes customer messages from a channel.
type InboundSink interface {
	// Receive commits a customer message. It returns nil only once the message is
	// durably stored (or was a duplicate of one that is): only then may the
	// channel acknowledge it upstream.
	Receive(ctx context.Context, in Inbound) error
}

// StatusSink takes delivery reports for messages a channel sent.
type StatusSink interface {
	// DeliveryStatus records what the remote side reported for the message it
	// knows as remoteID. Unknown ids are ignored (returns nil).
	DeliveryStatus(ctx context.Context, channel, remoteID string, state Delivery, reason string) error
}

// ChannelSink is what the core gives every channel at construction.
type ChannelSink interface {
	InboundSink
	StatusSink
}

// HTTPChannel is a channel with webhooks. Routes returns patterns for
// http.ServeMux ("POST /sms/main") and their handlers; the core mounts them on
// http.listen.
type HTTPChannel interface {
	Routes() map[string]http.Handler
}

// Splitter is a channel with a length limit. The core stores each part as its
// own message, so every part is sent, retried and tracked on its own and a
// retry never repeats a part that already went out.
type Splitter interface {
	Split(text string) []string
}

// Checker is an adapter that can tell whether it is really connected.
// /readyz and the watchdog call it; it must not block.
type Checker interface {
	Health() Health
}

// Health is an adapter's real connection state.
type Health struct {
	Ready  bool   `json:"ready"`
	Detail string `json:"detail,omitempty"`
}

// NoticeMarker is a channel that also shows a conversation's state its own way
// as notices go out (Slack: a reaction on the thread's root). The core gives
// it every notice, also one whose template renders empty; Message.Notice
// names the template, and an empty Text means "show the state, say nothing".
type NoticeMarker interface {
	MarksNotices()
}

// ConversationLister lists a channel's open conversations, for a channel that
// catches up after a restart or reconnect on what its customers wrote
// meanwhile.
type ConversationLister interface {
	OpenCustomers(ctx context.Context, channel string) ([]CustomerCursor, error)
	// NewestSourceID is the greatest source id with the prefix among the
	// channel's customer messages, ended conversations included; "" if none.
	NewestSourceID(ctx context.Context, channel, prefix string) (string, error)
}

// CustomerCursor is where catch-up starts for one open conversation.
type CustomerCursor struct {
	ConversationID int64
	Customer       string // the conversation's customer address
	State          State
	// LastSourceID is the source id of the newest customer message stored for
	// the conversation (its first one included); "" when none has one.
	LastSourceID string
}
