package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// RecordOutbound commits a vendor-started message; see connector.Store. A
// conversation it creates is the store's owner's.
func (s *Store) RecordOutbound(ctx context.Context, o connector.Outbound) (connector.OutboundResult, error) {
	if o.Vendor == "" || o.Channel == "" || o.Customer == "" || o.SourceID == "" {
		return connector.OutboundResult{}, s.d.errorf("outbound needs a vendor, channel, customer and source id")
	}
	var res connector.OutboundResult
	err := s.write(ctx, func(ctx context.Context, tx *Tx) (err error) {
		res, err = s.recordOutbound(ctx, tx, o, sqlrow.NowNanos())
		return err
	})
	if err != nil {
		return connector.OutboundResult{}, err
	}
	return res, nil
}

// recordOutbound claims the vendor's id first: a repeat changes nothing.
func (s *Store) recordOutbound(ctx context.Context, tx *Tx, o connector.Outbound, now int64) (connector.OutboundResult, error) {
	var taken int
	err := tx.QueryRowContext(ctx, s.q.outboundTaken, o.Vendor, o.SourceID).Scan(&taken)
	if err != nil {
		return connector.OutboundResult{}, fmt.Errorf("outbound de-duplication: %w", err)
	}
	if taken > 0 {
		return connector.OutboundResult{Duplicate: true}, nil
	}
	convID, err := s.outboundConversation(ctx, tx, o, now)
	if err != nil {
		return connector.OutboundResult{}, err
	}
	m := &connector.Message{ConversationID: convID, Direction: connector.ToCustomer, Kind: connector.KindText,
		Text: o.Text, Format: o.Format, Attachments: slices.Clone(o.Attachments), SourceID: o.SourceID}
	if _, err := s.insertMessage(ctx, tx, o.Channel, m, now); err != nil {
		return connector.OutboundResult{}, err
	}
	if _, err = tx.ExecContext(ctx, s.q.outboundKey, o.Vendor, o.SourceID, m.ID); err != nil {
		return connector.OutboundResult{}, fmt.Errorf("outbound key: %w", err)
	}
	return connector.OutboundResult{Message: m}, nil
}

// outboundConversation checks the conversation o names (which keeps its
// owner) or creates an ended one of its own, owned by the store's owner.
func (s *Store) outboundConversation(ctx context.Context, tx *Tx, o connector.Outbound, now int64) (int64, error) {
	if o.Conversation != 0 {
		var channel, customer string
		err := tx.QueryRowContext(ctx, s.q.outboundTarget, o.Conversation).Scan(&channel, &customer)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("outbound message for conversation %d: %w", o.Conversation, connector.ErrNotFound)
		}
		if err != nil {
			return 0, fmt.Errorf("outbound message for conversation %d: %w", o.Conversation, err)
		}
		if channel != o.Channel || customer != o.Customer {
			return 0, connector.Permanent(fmt.Errorf("outbound message for %s %s names conversation %d, which is %s %s",
				o.Channel, o.Customer, o.Conversation, channel, customer))
		}
		return o.Conversation, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, s.q.createOutboundConversation,
		o.Channel, o.Customer, o.Vendor, now, now, now, s.owner).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create outbound conversation: %w", err)
	}
	tx.touch(id)
	return id, nil
}
