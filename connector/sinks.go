package connector

import (
	"context"
	"time"
)

// The sinks are the core's services to adapters, handed to them as plain
// values at construction (ChannelEnv, VendorEnv). The Router implements
// them all.
//
// What an error from a sink means, the same for every adapter:
//   - nil: done and durable; only now may the adapter acknowledge upstream
//     (an HTTP 2xx, a Socket Mode ack, a frame counted as read).
//   - a Permanent error: this input can never be stored; retrying cannot
//     help. The adapter acknowledges it upstream so that it is not
//     redelivered forever, and logs it as an error.
//   - any other error: not stored now (the store refused, the context
//     ended). The adapter must not acknowledge: it answers so that the
//     source retries (HTTP 503, no ack), or, for a vendor's socket, stops
//     reading and lets the core's retry or the vendor's resume deliver it
//     again. Nothing acknowledged is ever dropped because the store said no
//     for a moment.

// InboundSink takes customer messages from a channel.
type InboundSink interface {
	// Receive commits a customer message. It returns nil only once the
	// message is durably stored (or was a duplicate of one that is). It does
	// not retry: a webhook's caller has a deadline, and the source retries.
	Receive(ctx context.Context, in Inbound) error
}

// StatusSink takes delivery reports for messages a channel sent.
type StatusSink interface {
	// DeliveryStatus records what the remote side reported for the message
	// it knows as remoteID. Unknown ids are ignored (nil).
	DeliveryStatus(ctx context.Context, channel, remoteID string, state Delivery, reason string) error
}

// ChannelSink is what the core gives every channel at construction.
type ChannelSink interface {
	InboundSink
	StatusSink
}

// ConversationLister lists a channel's open conversations, for a channel
// that catches up after a restart or reconnect on what its customers wrote
// meanwhile.
type ConversationLister interface {
	OpenCustomers(ctx context.Context, channel string) ([]CustomerCursor, error)
	// NewestSourceID is the greatest source id with the prefix among the
	// channel's customer messages, ended conversations included; "" if none.
	NewestSourceID(ctx context.Context, channel, prefix string) (string, error)
}

// Receipts tells a channel where its history of customer messages ends,
// for a channel that reads what it missed from the remote side's message
// list (SMS catch-up from Twilio's).
type Receipts interface {
	// LastReceived returns the source id and the receive time of the newest
	// customer message stored for the channel, in any conversation; zero
	// values when there is none.
	LastReceived(ctx context.Context, channel string) (sourceID string, at time.Time, err error)
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

// EventSink takes agent events from a vendor.
type EventSink interface {
	// Event commits an agent event. It returns nil once the event's effects
	// are durably stored (a duplicate SourceID is dropped and also returns
	// nil). It is safe for concurrent use and must be called in the order
	// the vendor received events for one conversation.
	//
	// While the store refuses writes for a moment, Event keeps trying (with
	// back-off) and blocks its caller, so that nothing a vendor said is lost
	// and order is kept. It returns an error only when ctx is done (the
	// event was not stored: the vendor must not count it as received) or
	// when the event can never be stored (a Permanent error: an unknown
	// conversation), which the vendor logs and skips.
	Event(ctx context.Context, e Event) error
}

// OutboundSink takes vendor-started messages (registerConnector).
type OutboundSink interface {
	// Outbound commits o and queues it for delivery on its channel. It
	// returns nil once durable (or a duplicate): only then may the vendor
	// treat the message as taken. Like Event, it retries a store that
	// refuses for a moment until ctx is done; a Permanent error (a channel
	// that is not configured) will never change. Unless o.Conversation names
	// one, the message lives in a conversation of its own that is already
	// ended, so the customer's answer opens a conversation by the normal
	// routes; its delivery state is tracked like any message's.
	Outbound(ctx context.Context, o Outbound) error
}

// SendProgress keeps, durably, an adapter's record of what earlier attempts
// at sending one message achieved (SMS parts sent, Slack files uploaded, an
// outcome left unknown), so that a retry of the message, in this process or
// after a crash, resumes instead of repeating. The record is the adapter's
// own bytes (JSON, say); the core drops it once the message is sent or
// failed.
type SendProgress interface {
	// LoadProgress returns the record for a message; nil when there is none.
	LoadProgress(ctx context.Context, messageID int64) ([]byte, error)
	// SaveProgress stores the record (nil clears it). It retries a store
	// that refuses for a moment, as Event does: call it right after the
	// remote side confirmed a step, before the next one.
	SaveProgress(ctx context.Context, messageID int64, p []byte) error
}

// LazyProgress is a SendProgress that can also keep a record without waiting
// for the disk; the core's is one. NoteProgress commits the record before it
// returns, so a crash of the process keeps it, but a power loss or an
// operating system crash in the moment after can forget it. An adapter uses
// it where that costs only what the core makes good: a record forgotten
// that way belongs to a message the next process starts with as Recovered,
// and an adapter that looks at the destination before resending a recovered
// message (or whose destination cannot tell a repeat anyway) loses nothing.
type LazyProgress interface {
	SendProgress
	NoteProgress(ctx context.Context, messageID int64, p []byte) error
}

// NoteProgress keeps p with NoteProgress when sp has it, else with
// SaveProgress.
func NoteProgress(ctx context.Context, sp SendProgress, messageID int64, p []byte) error {
	if lp, ok := sp.(LazyProgress); ok {
		return lp.NoteProgress(ctx, messageID, p)
	}
	return sp.SaveProgress(ctx, messageID, p)
}
