package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// RecordOutbound commits a vendor-started message; see connector.Store.
func (s *Store) RecordOutbound(ctx context.Context, o connector.Outbound) (connector.OutboundResult, error) {
	if o.Vendor == "" || o.Channel == "" || o.Customer == "" || o.SourceID == "" {
		return connector.OutboundResult{}, errors.New("connector/postgres: outbound needs a vendor, channel, customer and source id")
	}
	var res connector.OutboundResult
	err := s.write(ctx, func(ctx context.Context, tx *txn) (err error) {
		res, err = recordOutbound(ctx, tx, o, s.instance, sqlrow.NowNanos())
		return err
	})
	if err != nil {
		return connector.OutboundResult{}, err
	}
	return res, nil
}

// recordOutbound claims the vendor's id first: a repeat changes nothing. A
// conversation it creates is owner's.
func recordOutbound(ctx context.Context, tx *txn, o connector.Outbound, owner string, now int64) (connector.OutboundResult, error) {
	var taken int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outbound_keys WHERE vendor = $1 AND source_id = $2`,
		o.Vendor, o.SourceID).Scan(&taken)
	if err != nil {
		return connector.OutboundResult{}, fmt.Errorf("outbound de-duplication: %w", err)
	}
	if taken > 0 {
		return connector.OutboundResult{Duplicate: true}, nil
	}
	convID, err := outboundConversation(ctx, tx, o, owner, now)
	if err != nil {
		return connector.OutboundResult{}, err
	}
	m := &connector.Message{ConversationID: convID, Direction: connector.ToCustomer, Kind: connector.KindText,
		Text: o.Text, Format: o.Format, Attachments: slices.Clone(o.Attachments), SourceID: o.SourceID}
	if _, err := insertMessage(ctx, tx, o.Channel, m, now); err != nil {
		return connector.OutboundResult{}, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbound_keys (vendor, source_id, message_id) VALUES ($1, $2, $3)`,
		o.Vendor, o.SourceID, m.ID)
	if err != nil {
		return connector.OutboundResult{}, fmt.Errorf("outbound key: %w", err)
	}
	return connector.OutboundResult{Message: m}, nil
}

// outboundConversation checks the conversation o names (which keeps its
// owner) or creates an ended one of its own, owned by owner.
func outboundConversation(ctx context.Context, tx *txn, o connector.Outbound, owner string, now int64) (int64, error) {
	if o.Conversation != 0 {
		var channel, customer string
		err := tx.QueryRowContext(ctx, `SELECT channel, customer FROM conversations WHERE id = $1`,
			o.Conversation).Scan(&channel, &customer)
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
	err := tx.QueryRowContext(ctx, `INSERT INTO conversations
		(channel, customer, vendor, state, end_reason, created_at, updated_at, last_activity, owner)
		VALUES ($1, $2, $3, 'ended', 'outbound', $4, $5, $6, $7) RETURNING id`, o.Channel, o.Customer, o.Vendor, now, now, now, owner).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create outbound conversation: %w", err)
	}
	return id, nil
}
