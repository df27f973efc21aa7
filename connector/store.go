package connector

import (
	"context"
	"encoding/json"
	"time"
)

// Store keeps conversations, messages (whose still-stored ones are the outbox)
// and de-duplication keys. Every method is safe for concurrent use. Writes
// return only once durable; an implementation batches concurrent writes into
// one transaction (group commit) so that durability costs one fsync per batch.
//
// connectortest.TestStore is the conformance suite every Store passes.
type Store interface {
	// RecordInbound commits a customer message. If in.SourceID was already
	// recorded for in.Channel it changes nothing and reports Duplicate. Otherwise
	// it appends a ToAgent KindText message to the open conversation of
	// (in.Channel, in.Customer), creating a StatePending one routed to vendor when
	// there is none (an ended conversation is never reused), and sets the
	// conversation's LastActivity and, when in.Profile has any field, Profile.
	RecordInbound(ctx context.Context, in Inbound, vendor string) (InboundResult, error)

	// RecordOutbound commits a vendor-started message: a new conversation of
	// (o.Channel, o.Customer) routed to o.Vendor, created StateEnded with
	// EndReason "outbound", holding one ToCustomer KindText message; with
	// o.Conversation set, that message is added to that conversation instead,
	// which must exist and be of o.Channel and o.Customer. A SourceID already
	// recorded for o.Vendor changes nothing and reports Duplicate.
	RecordOutbound(ctx context.Context, o Outbound) (OutboundResult, error)

	// Apply commits a Change to one conversation atomically. It returns
	// ErrNotFound for an unknown conversation.
	Apply(ctx context.Context, ch Change) (ChangeResult, error)

	// Conversation returns one conversation, or ErrNotFound.
	Conversation(ctx context.Context, id int64) (*Conversation, error)
	// FindOpen returns the customer's open conversation on a channel, or ErrNotFound.
	FindOpen(ctx context.Context, channel, customer string) (*Conversation, error)
	// OpenCursors returns, by conversation id, every open conversation on a
	// channel with the source id of its newest customer message (for a
	// channel's catch-up), in one read.
	OpenCursors(ctx context.Context, channel string) ([]CustomerCursor, error)
	// NewestSourceID returns the greatest source id starting with prefix among
	// a channel's customer messages, in any conversation, ended or not; ""
	// when there is none. A channel whose ids sort by time (Slack's
	// "C123/1700000000.000100") gets the newest message it stored from one
	// place, where catch-up of new conversations starts.
	NewestSourceID(ctx context.Context, channel, prefix string) (string, error)
	// OpenConversations returns every conversation not ended, by id.
	OpenConversations(ctx context.Context) ([]*Conversation, error)
	// Messages returns a conversation's messages, by id.
	Messages(ctx context.Context, conversationID int64) ([]*Message, error)
	// Outbox returns every message still DeliveryStored, by id.
	Outbox(ctx context.Context) ([]*Message, error)
	// WaitingBefore returns a conversation's messages to the agent still
	// DeliveryStored whose id is below before, by id: what must reach the
	// agent before the message with that id.
	WaitingBefore(ctx context.Context, conversationID, before int64) ([]*Message, error)
	// Message returns one message as it stands now, or ErrNotFound.
	Message(ctx context.Context, id int64) (*Message, error)
	// ListConversations returns the conversations q selects, newest (highest
	// id) first, at most q.Limit of them.
	ListConversations(ctx context.Context, q ConversationQuery) ([]*Conversation, error)
	// RecentFailures returns the messages that failed at or after since,
	// most recent first, at most limit of them.
	RecentFailures(ctx context.Context, since time.Time, limit int) ([]*Message, error)
	// RetryMessage moves a failed message back to DeliveryStored (reason,
	// remote id, send progress and attempt count cleared) and returns it as
	// it stands then. A message that is not DeliveryFailed is left as it is
	// and the error wraps ErrWrongState; an unknown one wraps ErrNotFound.
	RetryMessage(ctx context.Context, id int64) (*Message, error)

	// MarkSent records that the remote side accepted a stored message and the id
	// it gave it. A message no longer stored is left as it is. Marking the
	// conversation's ContextMessage sent or failed clears it.
	//
	// The mark is lazily durable: it is committed before MarkSent returns
	// and survives the process being killed, but it does not wait for the
	// disk. It rides in the next synced commit, or is flushed with the next
	// checkpoint; a power loss in between can forget it, and the message
	// then goes again after the restart, as after a crash between a send and
	// its mark (channels reconcile before sending again where the remote
	// side allows).
	MarkSent(ctx context.Context, id int64, remoteID string) error
	// MarkFailed gives up on a message, with the reason.
	MarkFailed(ctx context.Context, id int64, reason string) error
	// UpdateDelivery applies a delivery report to the message that channel sent as
	// remoteID; it reports false when there is none. A report never moves a
	// message backwards (delivered stays delivered after a late "sent").
	UpdateDelivery(ctx context.Context, channel, remoteID string, state Delivery, reason string) (bool, error)

	// SendProgress returns what SaveSendProgress last stored for a message,
	// nil when nothing is.
	SendProgress(ctx context.Context, id int64) ([]byte, error)
	// SaveSendProgress durably stores an adapter's record of what earlier
	// attempts at sending a still-stored message achieved (nil clears it); a
	// message already sent or failed is left as it is. MarkSent and
	// MarkFailed clear it.
	SaveSendProgress(ctx context.Context, id int64, p []byte) error
	// NoteSendProgress is SaveSendProgress committed without waiting for
	// the disk: it survives a crash of the process, not always a power loss
	// or an operating system crash.
	NoteSendProgress(ctx context.Context, id int64, p []byte) error

	// CountAttempt records that a send of message id is starting and returns
	// how many sends of it have started since its last ClearAttempts, this one
	// included. The count is durable: a message whose send crashes the process
	// every time (a poison message) is recognised after a few restarts.
	CountAttempt(ctx context.Context, id int64) (int, error)
	// ClearAttempts sets a message's attempt count back to zero: its send
	// returned (with a retryable error), so it is not what crashed a process.
	ClearAttempts(ctx context.Context, id int64) error

	// Purge deletes at most limit ended conversations whose last update is
	// before cutoff, with their messages and de-duplication keys, oldest
	// first, and returns how many it deleted. A conversation that still has a
	// DeliveryStored message is kept. Deleting never lets a message id be
	// used again.
	Purge(ctx context.Context, cutoff time.Time, limit int) (int, error)

	// Stats reads counters for metrics and benchmarks. It does not scan the
	// conversations: its cost does not grow with the history kept.
	Stats(ctx context.Context) (Stats, error)
	// OpenCounts returns, for one channel, how many conversations are in each
	// state but StateEnded (states with none may be missing), without a scan.
	OpenCounts(ctx context.Context, channel string) (map[State]int, error)
	// OptOuts keeps the customers who opted out of a channel's messages.
	OptOuts
	// Receipts finds a channel's newest customer message.
	Receipts

	// Ping checks that the store can commit a write: a small write that goes
	// the way every write goes, so that a full or read-only disk shows here
	// (for /readyz and the watchdog).
	Ping(ctx context.Context) error
	// Close flushes and closes; further calls fail.
	Close() error
}

// InboundResult is what RecordInbound did.
type InboundResult struct {
	Duplicate    bool
	Created      bool // a new conversation was opened for it
	Conversation *Conversation
	// Message is the message recorded; for a duplicate, the one stored
	// before (nil when none is found), so that a caller can queue it again
	// if it still waits: an earlier caller may have given up while its
	// commit went through.
	Message *Message
}

// Change is an atomic update of one conversation.
type Change struct {
	ConversationID int64
	// State, when set, moves the conversation there. An ended conversation never
	// moves again: the state change is ignored.
	State State
	// EndReason is stored when State is StateEnded.
	EndReason string
	// Agent, when non-nil, replaces the agent name.
	Agent *string
	// Session, when non-nil, replaces the vendor session.
	Session json.RawMessage
	// LeaveMessage sets LeaveMessageAfter to the highest message id the
	// conversation has at commit time.
	LeaveMessage bool
	// Messages are appended in order, as DeliveryStored; ID, ConversationID,
	// State and timestamps are filled in. A message whose non-empty SourceID was
	// already appended to this conversation in the same direction is skipped.
	Messages []*Message
	// FailPending, when non-empty, fails every ToAgent message of the
	// conversation still stored whose kind is not KindEnd, with this reason.
	FailPending string
	// RequireOpen makes the whole change a no-op (Skipped) when the
	// conversation has already ended.
	RequireOpen bool
	// Touch sets LastActivity to now.
	Touch bool
	// ClearSession removes the vendor session (the vendor lost the chat).
	ClearSession bool
	// Reopen records that a new vendor chat is being opened for the
	// conversation: ReopenedAt becomes now, and ContextMessage the first
	// KindContext message this change appends (0 if none).
	Reopen bool
	// Move, with State StateEnded, moves the customer lines still waiting
	// (ToAgent KindText messages still stored) to the customer's next
	// conversation, created pending on the same channel and routed to
	// Move.Vendor, and then appends Move.Messages to the ended conversation,
	// after Messages (a notice that a new conversation starts, which so
	// reaches the customer after the end notice). Nothing is created or
	// appended when no line waits. Message ids do not change.
	Move *Move
}

// Move says where a conversation's waiting customer lines go when it ends.
type Move struct {
	Vendor   string
	Messages []*Message
}

// ChangeResult is what Apply did.
type ChangeResult struct {
	Conversation *Conversation // after the change
	Added        []*Message    // the messages appended (duplicates left out)
	Failed       []*Message    // the messages FailPending failed, by id
	Skipped      bool          // RequireOpen and the conversation had ended
	// Next is the conversation Move created, nil when nothing moved; Moved
	// are the lines it took, with their new ConversationID.
	Next  *Conversation
	Moved []*Message
}

// Stats are store-wide counters.
type Stats struct {
	Conversations map[State]int
	OutboxDepth   int
	OldestPending time.Time // zero when the outbox is empty
	// Transactions and Writes count committed write transactions and the
	// write operations they carried since the store was opened.
	Transactions uint64
	Writes       uint64
	// SyncedTransactions counts the committed transactions that waited for
	// the disk (an fsync, or PostgreSQL's WAL flush); SyncedWrites the
	// writes that asked to: every write but a lazy one (MarkSent), which
	// rides in a synced transaction when it shares one and is committed
	// without waiting for the disk when it does not.
	SyncedTransactions uint64
	SyncedWrites       uint64
	// WriteErrors counts write transactions that failed to commit since the
	// store was opened (a full or read-only disk, say).
	WriteErrors uint64
}

// ConversationQuery selects conversations for ListConversations. Every
// zero field selects everything.
type ConversationQuery struct {
	State State // only this state
	Open  bool  // only conversations not ended
	// Channel and Vendor select by instance name ("sms.main").
	Channel, Vendor string
	// CreatedBefore and CreatedAfter bound the creation time: before is
	// exclusive, after inclusive.
	CreatedBefore, CreatedAfter time.Time
	// Stuck, when set, keeps only the conversations it calls stuck.
	Stuck *StuckRule
	// Before is a cursor: only conversations whose id is below it; 0 starts
	// from the newest.
	Before int64
	// Limit caps the result; it must be positive.
	Limit int
}

// StuckRule says which conversations are stuck: those with a message still
// DeliveryStored that was created before WaitingBefore, or with a message
// that failed at or after FailedSince (zero: failures do not count).
type StuckRule struct {
	WaitingBefore time.Time
	FailedSince   time.Time
}
