package connector

import (
	"context"
	"errors"
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

var _ OutboundSink = (*Router)(nil)

// Outbound implements OutboundSink.
func (r *Router) Outbound(ctx context.Context, o Outbound) (err error) {
	defer r.recoverAsError("outbound", &err)
	if _, ok := r.channels[o.Channel]; !ok {
		return Permanent(fmt.Errorf("outbound message for channel %s, which is not configured", o.Channel))
	}
	var res OutboundResult
	err = r.persist(ctx, "vendor-started message", func(ctx context.Context) (err error) {
		res, err = r.store.RecordOutbound(ctx, o)
		if errors.Is(err, ErrNotFound) {
			return Permanent(err)
		}
		return err
	})
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
	r.enqueue(nil, res.Message)
	return nil
}
