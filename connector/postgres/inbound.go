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

// RecordInbound commits a customer message; see connector.Store. The message
// and conversation times are the commit's, not in.ReceivedAt. A message
// without SourceID is not de-duplicated (channels always give one).
func (s *Store) RecordInbound(ctx context.Context, in connector.Inbound, vendor string) (connector.InboundResult, error) {
	if in.Channel == "" || in.Customer == "" {
		return connector.InboundResult{}, errors.New("connector/postgres: inbound needs a channel and a customer")
	}
	var res connector.InboundResult
	err := s.write(ctx, func(ctx context.Context, tx *txn) (err error) {
		res, err = recordInbound(ctx, tx, in, vendor, s.instance, sqlrow.NowNanos())
		return err
	})
	if err != nil {
		// res is not read here: the writer may still be filling it in for a
		// caller that gave up.
		return connector.InboundResult{}, err
	}
	return res, nil
}

// recordInbound stores in. The common case, a message for an open
// conversation, costs three statements: find the conversation, insert the
// message (a repeated source id inserts nothing: a duplicate), touch the
// conversation. Only a first message checks for a duplicate before it
// creates a conversation, which owner (this instance, or "" for a store that
// is not shared) then owns.
func recordInbound(ctx context.Context, tx *txn, in connector.Inbound, vendor, owner string, now int64) (connector.InboundResult, error) {
	c, err := openConversationOf(ctx, tx, in.Channel, in.Customer)
	if err != nil {
		return connector.InboundResult{}, err
	}
	created := c == nil
	if created {
		if dup, err := inboundDuplicate(ctx, tx, in); dup.Duplicate || err != nil {
			return dup, err
		}
		if c, err = createConversation(ctx, tx, in, vendor, owner, now); err != nil {
			return connector.InboundResult{}, err
		}
	}
	m := &connector.Message{ConversationID: c.ID, Direction: connector.ToAgent, Kind: connector.KindText,
		Text: in.Text, Attachments: slices.Clone(in.Attachments), SourceID: in.SourceID}
	added, err := insertMessage(ctx, tx, c.Channel, m, now)
	if err != nil {
		return connector.InboundResult{}, err
	}
	if !added { // only an open conversation can get here: created ones were checked
		return inboundDuplicate(ctx, tx, in)
	}
	if !created {
		if err := touchInbound(ctx, tx, c, in.Profile, now); err != nil {
			return connector.InboundResult{}, err
		}
	}
	return connector.InboundResult{Created: created, Conversation: c, Message: m}, nil
}

// inboundDuplicate reports the message that already has in's source id for
// its channel, with its conversation; not Duplicate when there is none.
func inboundDuplicate(ctx context.Context, tx *txn, in connector.Inbound) (connector.InboundResult, error) {
	if in.SourceID == "" {
		return connector.InboundResult{}, nil
	}
	m, err := sqlrow.ScanMessage(tx.QueryRowContext(ctx, `SELECT `+sqlrow.MessageColumns+` FROM messages
		WHERE channel = $1 AND source_id = $2 AND direction = 'to_agent' AND source_id != ''`,
		in.Channel, in.SourceID))
	if errors.Is(err, sql.ErrNoRows) {
		return connector.InboundResult{}, nil
	}
	if err != nil {
		return connector.InboundResult{}, fmt.Errorf("inbound de-duplication: %w", err)
	}
	c, err := getConversation(ctx, tx, m.ConversationID)
	if err != nil {
		return connector.InboundResult{}, err
	}
	return connector.InboundResult{Duplicate: true, Conversation: c, Message: m}, nil
}

// openConversationOf returns the customer's open conversation, or nil.
func openConversationOf(ctx context.Context, tx sqlrow.Queryer, channel, customer string) (*connector.Conversation, error) {
	c, err := sqlrow.ScanConversation(tx.QueryRowContext(ctx, `SELECT `+sqlrow.ConversationColumns+` FROM conversations
		WHERE channel = $1 AND customer = $2 AND state != 'ended'`, channel, customer))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c, err
}

// createConversation opens a pending conversation of in's customer, owned by owner.
func createConversation(ctx context.Context, tx *txn, in connector.Inbound, vendor, owner string, now int64) (*connector.Conversation, error) {
	profile, err := sqlrow.ProfileJSON(in.Profile)
	if err != nil {
		return nil, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO conversations
		(channel, customer, vendor, state, profile, created_at, updated_at, last_activity, owner)
		VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8) RETURNING id`, in.Channel, in.Customer, vendor, profile, now, now, now, owner).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("create conversation: %w", err)
	}
	t := sqlrow.FromNanos(now)
	return &connector.Conversation{ID: id, Channel: in.Channel, Customer: in.Customer, Vendor: vendor,
		State: connector.StatePending, Profile: in.Profile, CreatedAt: t, UpdatedAt: t, LastActivity: t, Owner: owner}, nil
}

// touchInbound records a customer message's activity on c (and in memory),
// replacing the profile when the channel sent one.
func touchInbound(ctx context.Context, tx *txn, c *connector.Conversation, p connector.Profile, now int64) error {
	if p != (connector.Profile{}) {
		c.Profile = p
	}
	profile, err := sqlrow.ProfileJSON(c.Profile)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE conversations SET profile = $1, last_activity = $2, updated_at = $3 WHERE id = $4`,
		profile, now, now, c.ID)
	if err != nil {
		return fmt.Errorf("update conversation: %w", err)
	}
	c.LastActivity, c.UpdatedAt = sqlrow.FromNanos(now), sqlrow.FromNanos(now)
	return nil
}
