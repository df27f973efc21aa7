package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// MarkSent records that the remote side accepted a stored message, as
// remoteID. A message no longer stored (sent, delivered, failed) is left as
// it is; an unknown id is connector.ErrNotFound.
func (s *Store) MarkSent(ctx context.Context, id int64, remoteID string) error {
	return s.write(ctx, func(ctx context.Context, tx *txn) error {
		r, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'sent', remote_id = $1, updated_at = $2, progress = NULL
			WHERE id = $3 AND state = 'stored'`, remoteID, sqlrow.NowNanos(), id)
		if err := changedOrExists(ctx, tx, r, err, id); err != nil {
			return err
		}
		return contextSettled(ctx, tx, id)
	})
}

// MarkFailed gives up on a message, with the reason. Like a delivery report it
// never moves a message backwards: a delivered or already failed message is
// left as it is. An unknown id is connector.ErrNotFound.
func (s *Store) MarkFailed(ctx context.Context, id int64, reason string) error {
	return s.write(ctx, func(ctx context.Context, tx *txn) error {
		r, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'failed', reason = $1, updated_at = $2, progress = NULL
			WHERE id = $3 AND state IN ('stored', 'sent')`, reason, sqlrow.NowNanos(), id)
		if err := changedOrExists(ctx, tx, r, err, id); err != nil {
			return err
		}
		return contextSettled(ctx, tx, id)
	})
}

// contextSettled clears the conversation's ContextMessage when it is id: the
// context line is owed no more. Two primary-key lookups.
func contextSettled(ctx context.Context, tx *txn, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE conversations SET context_msg = 0
		WHERE id = (SELECT conversation_id FROM messages WHERE id = $1) AND context_msg = $1`, id)
	if err != nil {
		return fmt.Errorf("settle context line %d: %w", id, err)
	}
	return nil
}

// changedOrExists turns the outcome of a conditional update of message id
// into nil when it changed a row or the message exists, ErrNotFound otherwise.
func changedOrExists(ctx context.Context, tx *txn, r sql.Result, err error, id int64) error {
	if err != nil {
		return fmt.Errorf("update message %d: %w", id, err)
	}
	if n, err := r.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
	}
	return err
}

// deliveryRank orders the states a message moves through; failed is terminal
// and handled apart.
var deliveryRank = map[connector.Delivery]int{
	connector.DeliveryStored: 0, connector.DeliverySent: 1, connector.DeliveryDelivered: 2,
}

// advances reports whether a report of to may replace from: forward only,
// failed is final, and a failure reported after delivery is not believed
// (carriers do send late failures for delivered messages).
func advances(from, to connector.Delivery) bool {
	switch {
	case from == connector.DeliveryFailed:
		return false
	case to == connector.DeliveryFailed:
		return from != connector.DeliveryDelivered
	default:
		return deliveryRank[to] > deliveryRank[from]
	}
}

// UpdateDelivery applies a delivery report to the message channel sent as
// remoteID (the latest one, should a remote id repeat). It reports false when
// there is none. A report that would move the message backwards is ignored
// but still reports true. An unknown state is an error.
func (s *Store) UpdateDelivery(ctx context.Context, channel, remoteID string, state connector.Delivery, reason string) (bool, error) {
	if _, ok := deliveryRank[state]; !ok && state != connector.DeliveryFailed {
		return false, fmt.Errorf("connector/postgres: unknown delivery state %q", state)
	}
	if remoteID == "" {
		return false, nil
	}
	var found bool
	err := s.write(ctx, func(ctx context.Context, tx *txn) (err error) {
		found, err = updateDelivery(ctx, tx, channel, remoteID, state, reason)
		return err
	})
	if err != nil {
		return false, err // found may still be written: not read
	}
	return found, nil
}

func updateDelivery(ctx context.Context, tx *txn, channel, remoteID string, state connector.Delivery, reason string) (bool, error) {
	var (
		id  int64
		cur connector.Delivery
	)
	err := tx.QueryRowContext(ctx, `SELECT id, state FROM messages
		WHERE channel = $1 AND remote_id = $2 AND direction = 'to_customer' ORDER BY id DESC LIMIT 1`,
		channel, remoteID).Scan(&id, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find message by remote id: %w", err)
	}
	if !advances(cur, state) {
		return true, nil
	}
	if state != connector.DeliveryFailed {
		reason = ""
	}
	_, err = tx.ExecContext(ctx, `UPDATE messages SET state = $1, reason = $2, updated_at = $3 WHERE id = $4`,
		state, reason, sqlrow.NowNanos(), id)
	if err != nil {
		return false, fmt.Errorf("update delivery of message %d: %w", id, err)
	}
	return true, nil
}
