// Package connector is the core of connectord: the conversation model, the
// Channel, Vendor and Store contracts, the Router that moves messages between
// them, the configuration and the HTTP surface. It imports no adapter.
package connector

import (
	"encoding/json"
	"time"
)

// State is where a conversation is in its life.
type State string

const (
	// StatePending: the first customer message is stored, the vendor is not yet opened.
	StatePending State = "pending"
	// StateQueued: the vendor accepted the conversation and no agent has joined yet.
	StateQueued State = "queued"
	// StateActive: an agent joined.
	StateActive State = "active"
	// StateEnded: over, for the reason in Conversation.EndReason. A later customer
	// message opens a new conversation.
	StateEnded State = "ended"
)

// Direction says which way a message travels.
type Direction string

const (
	ToAgent    Direction = "to_agent"
	ToCustomer Direction = "to_customer"
)

// Kind distinguishes what a message asks the receiving side to do.
type Kind string

const (
	// KindText is text (and attachments) for the other side.
	KindText Kind = "text"
	// KindNotice is connectord's own text to the customer (queued, agent joined,
	// ended...). It is delivered like text but never reaches an agent.
	KindNotice Kind = "notice"
	// KindEnd asks the vendor to end the conversation (direction ToAgent).
	KindEnd Kind = "end"
	// KindContext is the one line a vendor chat opened again after the vendor
	// lost the first one starts with (direction ToAgent): who the customer is,
	// on which channel, and the conversation's last lines. A vendor sends it
	// to the agent like customer text.
	KindContext Kind = "context"
	// KindLeaveMessage is customer text to be left for later because no agent was
	// available (direction ToAgent).
	KindLeaveMessage Kind = "leave_message"
)

// Format is how a message's Text is marked up.
type Format string

const (
	// FormatPlain is plain text (the zero value).
	FormatPlain Format = ""
	// FormatHTML is (restricted) HTML, as agents' lines arrive from several
	// vendors; a channel renders it for its medium (plain text for SMS).
	FormatHTML Format = "html"
	// FormatMarkdown is CommonMark-style Markdown, as some vendors send it.
	FormatMarkdown Format = "markdown"
	// FormatNative is the channel's own markup (Slack mrkdwn), as its
	// Renderer made it before the message was stored: sent as it is.
	FormatNative Format = "native"
)

// Delivery is a message's delivery state.
type Delivery string

const (
	// DeliveryStored: committed, waiting in the outbox.
	DeliveryStored Delivery = "stored"
	// DeliverySent: the remote side accepted it.
	DeliverySent Delivery = "sent"
	// DeliveryDelivered: the remote side reported it reached the recipient.
	DeliveryDelivered Delivery = "delivered"
	// DeliveryFailed: given up, for the reason in Message.Reason.
	DeliveryFailed Delivery = "failed"
)

// Pending reports whether a message in this state still waits in the outbox.
func (d Delivery) Pending() bool { return d == DeliveryStored }

// Conversation is one customer on one channel talking to one vendor.
type Conversation struct {
	ID       int64
	Channel  string // channel instance, "sms.main"
	Customer string // the customer's address on that channel (E.164 for SMS)
	Vendor   string // vendor instance, "whoson.sales"
	State    State
	// EndReason says why an ended conversation ended ("agent", "customer",
	// "timeout", "no agent", "failed: ...").
	EndReason string
	// Agent is the display name of the agent who joined last, if any.
	Agent string
	// Profile is what the channel knows about the customer (name, email...).
	Profile Profile
	// Session is the vendor's opaque session state (ids, tokens, cookies). The
	// vendor owns its format; the core only stores it so a restart can resume.
	Session json.RawMessage
	// LeaveMessageAfter, when non-zero, means no agent was available and the
	// vendor takes a left message: customer messages with an ID above it are left
	// as a message; those at or below it were already answered with a notice.
	LeaveMessageAfter int64
	// ReopenedAt is when the core last opened a new vendor chat for the
	// conversation because the vendor lost the one it had (zero: never).
	ReopenedAt time.Time
	// ContextMessage, when non-zero, is the KindContext message the reopened
	// chat owes its new agent before anything else; sending it clears it.
	ContextMessage int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// LastActivity is the time of the last message either way; the inactivity
	// timeout counts from it.
	LastActivity time.Time
	// Owner is the instance that serves the conversation when several share
	// the store (Cluster); "" when there is one, or nobody owns it now.
	Owner string
}

// Open reports whether the conversation has not ended.
func (c *Conversation) Open() bool { return c.State != StateEnded }

// Profile is what a channel knows about its customer.
type Profile struct {
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Language string `json:"language,omitempty"`
}

// Attachment is a file that travels with a message, by reference.
type Attachment struct {
	URL         string `json:"url"`
	Name        string `json:"name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
}

// Message is one unit of work in either direction; the set of messages still
// DeliveryStored is the outbox.
type Message struct {
	ID             int64
	ConversationID int64
	Direction      Direction
	Kind           Kind
	Text           string
	Format         Format
	Attachments    []Attachment
	// SourceID is the id the source gave it (Twilio MessageSid, a vendor message
	// id); together with the conversation's channel (inbound) or vendor
	// (outbound) it de-duplicates. Empty means no de-duplication.
	SourceID string
	// Notice, on a KindNotice message, names the notice template it came from
	// ("queued", "agent_joined", "ended_by_agent"...), so that a channel can
	// also show the state change its own way (Slack: a reaction).
	Notice string
	// Agent, on an agent's KindText, is who wrote it (the event's agent, else
	// the conversation's agent when it was committed).
	Agent string
	// RemoteID is the id the destination gave it when it was sent (a Twilio SID
	// of our outbound SMS); status callbacks find the message by it.
	RemoteID  string
	State     Delivery
	Reason    string // why it failed
	CreatedAt time.Time
	UpdatedAt time.Time
	// Recovered is set by the core on the message it hands a Send, and never
	// stored: the message was waiting when this process started, or in a
	// conversation this instance took over, or this process sent it and the
	// store no longer says so. An earlier attempt may have reached the
	// destination, and what was kept without waiting for the disk (the sent
	// mark, LazyProgress records) may have been lost with a power loss or a
	// database server's crash, so a channel that can look at the destination
	// looks before sending.
	Recovered bool
}

// Inbound is a customer message as a channel hands it to the core.
type Inbound struct {
	Channel     string // channel instance name, "sms.main"
	Customer    string // the customer's address on the channel
	Text        string
	Attachments []Attachment
	SourceID    string // the channel's own id for de-duplication; required
	Profile     Profile
	ReceivedAt  time.Time
	// End means the customer asked to end the conversation (Slack's "end chat"
	// keyword): the open conversation ends and the vendor is told; the text is
	// not relayed. With no open conversation it does nothing.
	End bool
	// Continues means the customer wrote where an earlier conversation lived (a
	// reply in a Slack thread): if the message opens a new conversation, the
	// customer is told that it is a new one.
	Continues bool
	// OptedOut, with End, says the customer opted out of messages on this
	// channel (an SMS STOP): the agent is told so (notices.opted_out_agent)
	// before the vendor hears of the end, and the customer is sent no end
	// notice, since nothing may reach them any more.
	OptedOut bool
}

// EventType is the kind of a normalised agent-side event.
type EventType string

const (
	EventJoined      EventType = "joined"      // an agent joined (Agent)
	EventText        EventType = "text"        // agent text (Text, Attachments)
	EventTyping      EventType = "typing"      // agent typing (Typing)
	EventQueue       EventType = "queue"       // queue position or wait (Position, Text)
	EventTransferred EventType = "transferred" // handed to another agent (Agent)
	EventNoAgent     EventType = "no_agent"    // nobody can take it (LeaveMessage, Text)
	EventEnded       EventType = "ended"       // over (Reason; Text, when set, is what the customer reads instead of the end notice)
	EventNotice      EventType = "notice"      // vendor text for the customer that is not an agent line
	EventSession     EventType = "session"     // only Session changed
	// EventLost: the vendor will not continue the chat (it forgot it while we
	// were disconnected). The core opens a new one; see ErrChatLost.
	EventLost EventType = "lost"
)

// Event is an agent-side event, normalised from any vendor.
type Event struct {
	ConversationID int64
	Type           EventType
	Agent          string
	Text           string
	Format         Format // of Text
	Attachments    []Attachment
	Typing         bool
	Position       int
	LeaveMessage   bool
	Reason         string
	// SourceID de-duplicates the event when the vendor has ids for its messages.
	SourceID string
	// Session, when non-nil, replaces the stored vendor session in the same
	// commit. For EventLost it is the session of the chat that was lost
	// instead: a report that comes after the conversation got a new chat
	// (its session differs) changes nothing.
	Session json.RawMessage
}
