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

// RecordInbound commits a customer message; see connector.Store. The message
// and conversation times are the commit's, not in.ReceivedAt. A message
// without SourceID is not de-duplicated (channels always give one). A
// conversation it creates is the store's owner's.
func (s *Store) RecordInbound(ctx context.Context, in connector.Inbound, vendor string) (connector.InboundResult, error) {
	if in.Channel == "" || in.Customer == "" {
		return connector.InboundResult{}, s.d.errorf("inbound needs a channel and a customer")
	}
	var res connector.InboundResult
	err := s.write(ctx, func(ctx context.Context, tx *Tx) (err error) {
		res, err = s.recordInbound(ctx, tx, in, vendor, sqlrow.NowNanos())
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
// creates a conversation.
func (s *Store) recordInbound(ctx context.Context, tx *Tx, in connector.Inbound, vendor string, now int64) (connector.InboundResult, error) {
	c, err := s.txOpenConversationOf(ctx, tx, in.Channel, in.Customer)
	if err != nil {
		return connector.InboundResult{}, err
	}
	created := c == nil
	if created {
		if dup, err := s.inboundDuplicate(ctx, tx, in); dup.Duplicate || err != nil {
			return dup, err
		}
		if c, err = s.createConversation(ctx, tx, in, vendor, s.owner, now); err != nil {
			return connector.InboundResult{}, err
		}
		tx.w.rememberOpen(c)
	}
	m := &connector.Message{ConversationID: c.ID, Direction: connector.ToAgent, Kind: connector.KindText,
		Text: in.Text, Attachments: slices.Clone(in.Attachments), SourceID: in.SourceID}
	added, err := s.insertMessage(ctx, tx, c.Channel, m, now)
	if err != nil {
		return connector.InboundResult{}, err
	}
	if !added { // only an open conversation can get here: created ones were checked
		return s.inboundDuplicate(ctx, tx, in)
	}
	if !created {
		if err := s.touchInbound(ctx, tx, c, in.Profile, now); err != nil {
			return connector.InboundResult{}, err
		}
	}
	return connector.InboundResult{Created: created, Conversation: c, Message: m}, nil
}

// inboundDuplicate reports the message that already has in's source id for
// its channel, with its conversation; not Duplicate when there is none.
func (s *Store) inboundDuplicate(ctx context.Context, tx *Tx, in connector.Inbound) (connector.InboundResult, error) {
	if in.SourceID == "" {
		return connector.InboundResult{}, nil
	}
	m, err := sqlrow.ScanMessage(tx.QueryRowContext(ctx, s.q.inboundDuplicate, in.Channel, in.SourceID))
	if errors.Is(err, sql.ErrNoRows) {
		return connector.InboundResult{}, nil
	}
	if err != nil {
		return connector.InboundResult{}, fmt.Errorf("inbound de-duplication: %w", err)
	}
	c, err := s.txConversation(ctx, tx, m.ConversationID)
	if err != nil {
		return connector.InboundResult{}, err
	}
	return connector.InboundResult{Duplicate: true, Conversation: c, Message: m}, nil
}

// createConversation opens a pending conversation of in's customer, owned
// by owner ("" in a store that is not shared).
func (s *Store) createConversation(ctx context.Context, tx *Tx, in connector.Inbound, vendor, owner string, now int64) (*connector.Conversation, error) {
	profile, err := sqlrow.ProfileJSON(in.Profile)
	if err != nil {
		return nil, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, s.q.createConversation,
		in.Channel, in.Customer, vendor, profile, now, now, now, owner).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("create conversation: %w", err)
	}
	tx.touch(id)
	t := sqlrow.FromNanos(now)
	return &connector.Conversation{ID: id, Channel: in.Channel, Customer: in.Customer, Vendor: vendor,
		State: connector.StatePending, Profile: in.Profile, CreatedAt: t, UpdatedAt: t, LastActivity: t, Owner: owner}, nil
}

// touchInbound records a customer message's activity on c (and in memory),
// replacing the profile when the channel sent one.
func (s *Store) touchInbound(ctx context.Context, tx *Tx, c *connector.Conversation, p connector.Profile, now int64) error {
	if p != (connector.Profile{}) {
		c.Profile = p
	}
	profile, err := sqlrow.ProfileJSON(c.Profile)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, s.q.touchInbound, profile, now, now, c.ID); err != nil {
		return fmt.Errorf("update conversation: %w", err)
	}
	c.LastActivity, c.UpdatedAt = sqlrow.FromNanos(now), sqlrow.FromNanos(now)
	tx.touchRow(c) // c was read in tx: it is the row now
	return nil
}
