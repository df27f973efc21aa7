package connector

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// Outbound is a message a vendor starts for a customer it has no
// conversation with: a chat server's campaign SMS, a notification, sent
// through registerConnector with the customer's address.
type Outbound struct {
	Vendor      string // the vendor instance that sent it
	Channel     string // the channel instance it goes out on
	Customer    string // the customer's address on that channel
	Text        string
	Format      Format
	Attachments []Attachment
	// SourceID is the vendor's id for the message; required. A repeat from
	// the same vendor is dropped.
	SourceID string
	// Conversation, when non-zero, is the conversation (of Channel and
	// Customer, ended or not) the message joins, after everything it holds:
	// a chat's transcript reaches the customer after the chat's end notice.
	// Zero means a conversation of its own.
	Conversation int64
}

// OutboundResult is what RecordOutbound did.
type OutboundResult struct {
	Duplicate bool
	Message   *Message // the stored message; nil for a duplicate
}

// OutboundSink takes vendor-started messages; the core gives it to vendors
// in VendorEnv.
type OutboundSink interface {
	// Outbound commits o and queues it for delivery on its channel. It returns
	// nil once durable (or a duplicate): only then may the vendor treat the
	// message as taken. Unless o.Conversation names one, the message lives in a
	// conversation of its own that is already ended, so the customer's answer
	// opens a conversation by the normal routes; its delivery state is tracked
	// like any message's.
	Outbound(ctx context.Context, o Outbound) error
}

var _ OutboundSink = (*Router)(nil)

// Outbound implements OutboundSink.
func (r *Router) Outbound(ctx context.Context, o Outbound) error {
	if _, ok := r.channels[o.Channel]; !ok {
		return Permanent(fmt.Errorf("outbound message for channel %s, which is not configured", o.Channel))
	}
	res, err := r.store.RecordOutbound(ctx, o)
	if err != nil {
		return fmt.Errorf("record outbound: %w", err)
	}
	if res.Duplicate {
		r.metrics.Duplicates.WithLabelValues(o.Vendor).Inc()
		return nil
	}
	r.metrics.MessagesIn.WithLabelValues(o.Vendor).Inc()
	r.log.Info("vendor-started message stored", zap.String("vendor", o.Vendor), zap.String("channel", o.Channel),
		zap.Int64("conversation", res.Message.ConversationID))
	r.enqueue(res.Message)
	return nil
}
