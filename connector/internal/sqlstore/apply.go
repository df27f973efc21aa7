package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// Apply commits a Change atomically; see connector.Change. Within a change,
// FailPending runs before Messages are appended (it fails what was waiting,
// never what the change adds), and LeaveMessage is computed after them.
func (s *Store) Apply(ctx context.Context, ch connector.Change) (connector.ChangeResult, error) {
	var res connector.ChangeResult
	err := s.write(ctx, func(ctx context.Context, tx *Tx) (err error) {
		res, err = s.applyChange(ctx, tx, ch, sqlrow.NowNanos())
		return err
	})
	if err != nil {
		return connector.ChangeResult{}, err // res may still be written: not read
	}
	return res, nil
}

func (s *Store) applyChange(ctx context.Context, tx *Tx, ch connector.Change, now int64) (connector.ChangeResult, error) {
	c, err := s.txConversation(ctx, tx, ch.ConversationID)
	if err != nil {
		return connector.ChangeResult{}, err
	}
	if ch.RequireOpen && !c.Open() {
		return connector.ChangeResult{Conversation: c, Skipped: true}, nil
	}
	var res connector.ChangeResult
	if ch.FailPending != "" {
		if res.Failed, err = s.failPending(ctx, tx, c.ID, ch.FailPending, now); err != nil {
			return connector.ChangeResult{}, err
		}
	}
	if res.Added, err = s.appendMessages(ctx, tx, c, ch.Messages, now); err != nil {
		return connector.ChangeResult{}, err
	}
	ending := ch.State == connector.StateEnded && c.Open()
	if err := s.updateConversation(ctx, tx, c, ch, res.Added, now); err != nil {
		return connector.ChangeResult{}, err
	}
	if ending && ch.Move != nil {
		if err := s.moveWaiting(ctx, tx, c, ch.Move, now, &res); err != nil {
			return connector.ChangeResult{}, err
		}
	}
	res.Conversation = c
	return res, nil
}

// moveWaiting moves ended conversation c's waiting customer lines to a new
// conversation of the same customer (see connector.Change.Move). c must
// already be ended in tx: only one conversation per customer may be open.
func (s *Store) moveWaiting(ctx context.Context, tx *Tx, c *connector.Conversation, mv *connector.Move, now int64, res *connector.ChangeResult) error {
	var waiting int
	err := tx.QueryRowContext(ctx, s.q.waitingCount, c.ID).Scan(&waiting)
	if err != nil || waiting == 0 {
		return err
	}
	// The next conversation goes to the ended one's owner, which serves the
	// customer now (see connector.Cluster).
	next, err := s.createConversation(ctx, tx, connector.Inbound{Channel: c.Channel, Customer: c.Customer, Profile: c.Profile}, mv.Vendor, c.Owner, now)
	if err != nil {
		return err
	}
	moved, err := sqlrow.ScanMessages(tx.QueryContext(ctx, s.q.moveWaiting, next.ID, now, c.ID))
	if err != nil {
		return fmt.Errorf("move waiting lines: %w", err)
	}
	slices.SortFunc(moved, func(a, b *connector.Message) int { return cmp.Compare(a.ID, b.ID) })
	for _, m := range moved {
		tx.waitingAdded(m.ID, next.ID)
	}
	added, err := s.appendMessages(ctx, tx, c, mv.Messages, now)
	if err != nil {
		return err
	}
	res.Next, res.Moved, res.Added = next, moved, append(res.Added, added...)
	return nil
}

// updateConversation applies ch's conversation fields to c, in memory and in
// the database; added are the messages ch appended.
func (s *Store) updateConversation(ctx context.Context, tx *Tx, c *connector.Conversation, ch connector.Change, added []*connector.Message, now int64) error {
	if ch.State != "" && c.Open() {
		c.State = ch.State
		if ch.State == connector.StateEnded {
			c.EndReason = ch.EndReason
		}
	}
	if ch.Agent != nil {
		c.Agent = *ch.Agent
	}
	if ch.ClearSession {
		c.Session = nil
	}
	if ch.Session != nil {
		c.Session = nil
		if len(ch.Session) > 0 {
			c.Session = json.RawMessage(slices.Clone(ch.Session))
		}
	}
	if ch.Reopen {
		c.ReopenedAt, c.ContextMessage = sqlrow.FromNanos(now), firstContext(added)
	}
	if ch.LeaveMessage {
		if err := tx.QueryRowContext(ctx, s.q.lastMessageID, c.ID).Scan(&c.LeaveMessageAfter); err != nil {
			return fmt.Errorf("leave message: %w", err)
		}
	}
	if ch.Touch {
		c.LastActivity = sqlrow.FromNanos(now)
	}
	c.UpdatedAt = sqlrow.FromNanos(now)
	_, err := tx.ExecContext(ctx, s.q.updateConversation,
		c.State, c.EndReason, c.Agent, sqlrow.SessionValue(c.Session), c.LeaveMessageAfter,
		sqlrow.ToNanos(c.ReopenedAt), c.ContextMessage, sqlrow.ToNanos(c.LastActivity), now, c.ID)
	if err != nil {
		return fmt.Errorf("update conversation %d: %w", c.ID, err)
	}
	tx.touchRow(c) // c was read in tx and every column written from it: it is the row now
	return nil
}

// firstContext returns the id of the first KindContext message, 0 if none.
func firstContext(ms []*connector.Message) int64 {
	for _, m := range ms {
		if m.Kind == connector.KindContext {
			return m.ID
		}
	}
	return 0
}

// appendMessages stores copies of ms in order and returns those added.
func (s *Store) appendMessages(ctx context.Context, tx *Tx, c *connector.Conversation, ms []*connector.Message, now int64) ([]*connector.Message, error) {
	var added []*connector.Message
	for _, in := range ms {
		// A copy: the caller's message is not written to, so a caller that
		// gave up does not race with the writer.
		m := &connector.Message{ConversationID: c.ID, Direction: in.Direction, Kind: in.Kind, Text: in.Text,
			Format: in.Format, Attachments: slices.Clone(in.Attachments), SourceID: in.SourceID, Notice: in.Notice, Agent: in.Agent}
		ok, err := s.insertMessage(ctx, tx, c.Channel, m, now)
		if err != nil {
			return nil, err
		}
		if ok {
			added = append(added, m)
		}
	}
	return added, nil
}

// insertMessage stores m as DeliveryStored and fills in its ID, State and
// times. It reports false, storing nothing, when m's non-empty SourceID is
// taken: for a customer message, by any message of the channel; for an agent
// message, in the conversation. The new id is never one given before (see
// Dialect.NewMessageID).
func (s *Store) insertMessage(ctx context.Context, tx *Tx, channel string, m *connector.Message, now int64) (bool, error) {
	attachments, err := sqlrow.AttachmentsJSON(m.Attachments)
	if err != nil {
		return false, err
	}
	err = tx.QueryRowContext(ctx, s.q.insertMessage,
		m.ConversationID, channel, m.Direction, m.Kind, m.Text, m.Format, attachments, m.SourceID, m.Notice, m.Agent, now, now).Scan(&m.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert message: %w", err)
	}
	m.State = connector.DeliveryStored
	m.CreatedAt, m.UpdatedAt = sqlrow.FromNanos(now), sqlrow.FromNanos(now)
	if m.Direction == connector.ToAgent {
		tx.waitingAdded(m.ID, m.ConversationID)
	}
	return true, nil
}

// failPending fails the conversation's ToAgent messages still waiting, except
// KindEnd (the vendor must still be told), and returns them in order.
func (s *Store) failPending(ctx context.Context, tx *Tx, convID int64, reason string, now int64) ([]*connector.Message, error) {
	ms, err := sqlrow.ScanMessages(tx.QueryContext(ctx, s.q.failPending, reason, now, convID))
	if err != nil {
		return nil, fmt.Errorf("fail pending: %w", err)
	}
	for _, m := range ms {
		tx.waitingDone(m.ID)
	}
	slices.SortFunc(ms, func(a, b *connector.Message) int { return cmp.Compare(a.ID, b.ID) })
	return ms, nil
}
