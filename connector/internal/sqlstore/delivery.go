package sqlstore

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
//
// The mark is lazy (Writer.DoLazy): committed when MarkSent returns, but not
// waited on the disk. A power loss can forget it, and the message goes again
// after the restart, as after a crash between a send and its mark, which the
// outbox already handles; so the one write every relayed message makes
// after its send does not cost an fsync of its own.
func (s *Store) MarkSent(ctx context.Context, id int64, remoteID string) error {
	return s.w.DoLazy(ctx, func(ctx context.Context, tx *Tx) error {
		tx.waitingDone(id) // whether it was stored or not, it is not now
		return s.settle(ctx, tx, id, tx.QueryRowContext(ctx, s.q.markSent, remoteID, sqlrow.NowNanos(), id))
	})
}

// MarkFailed gives up on a message, with the reason. Like a delivery report it
// never moves a message backwards: a delivered or already failed message is
// left as it is. An unknown id is connector.ErrNotFound.
//
// Unlike MarkSent it waits for the disk: forgetting it would not repeat a
// send that happened but make one that was decided against (a message
// given up on, or a delivery failure), and it is rare.
func (s *Store) MarkFailed(ctx context.Context, id int64, reason string) error {
	return s.write(ctx, func(ctx context.Context, tx *Tx) error {
		tx.waitingDone(id)
		return s.settle(ctx, tx, id, tx.QueryRowContext(ctx, s.q.markFailed, reason, sqlrow.NowNanos(), id))
	})
}

// settle finishes MarkSent or MarkFailed of message id, whose update
// returned the kind of the message it changed (no row: it changed none),
// by settling the conversation's context line. Only a KindContext message
// can be a conversation's ContextMessage, so a changed message of another
// kind (nearly every one) needs no second statement. A message left as it
// was is settled as before, if it exists.
func (s *Store) settle(ctx context.Context, tx *Tx, id int64, changed *sql.Row) error {
	var kind connector.Kind
	err := changed.Scan(&kind)
	switch {
	case err == nil && kind != connector.KindContext:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		if err := s.exists(ctx, tx, id); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("update message %d: %w", id, err)
	}
	return s.contextSettled(ctx, tx, id)
}

// contextSettled clears the conversation's ContextMessage when it is id: the
// context line is owed no more.
func (s *Store) contextSettled(ctx context.Context, tx *Tx, id int64) error {
	var conv int64
	err := tx.QueryRowContext(ctx, s.q.contextSettled, id, id).Scan(&conv)
	if errors.Is(err, sql.ErrNoRows) { // not the context line: nothing changed
		return nil
	}
	if err != nil {
		return fmt.Errorf("settle context line %d: %w", id, err)
	}
	tx.touch(conv)
	return nil
}

// deliveryRank orders the states a message moves through; failed is terminal
// and handled apart.
func deliveryRank(d connector.Delivery) (int, bool) {
	switch d {
	case connector.DeliveryStored:
		return 0, true
	case connector.DeliverySent:
		return 1, true
	case connector.DeliveryDelivered:
		return 2, true
	}
	return 0, false
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
	}
	f, _ := deliveryRank(from)
	t, _ := deliveryRank(to)
	return t > f
}

// UpdateDelivery applies a delivery report to the message channel sent as
// remoteID (the latest one, should a remote id repeat). It reports false when
// there is none. A report that would move the message backwards is ignored
// but still reports true. An unknown state is an error.
//
// A failure waits for the disk: the channel is told the report is taken
// and does not send it again, and no outbox would make up for its loss. A
// report of progress (sent, delivered) is lazy, as MarkSent is: it survives
// the process being killed, and a power loss within the moment before the
// next synced commit or checkpoint leaves the message at its earlier state,
// which nothing acts on. Twilio posts two such reports for every SMS; each
// waiting for its own fsync would cost more than the message itself.
func (s *Store) UpdateDelivery(ctx context.Context, channel, remoteID string, state connector.Delivery, reason string) (bool, error) {
	if _, ok := deliveryRank(state); !ok && state != connector.DeliveryFailed {
		return false, s.d.errorf("unknown delivery state %q", state)
	}
	if remoteID == "" {
		return false, nil
	}
	write := s.w.DoLazy
	if state == connector.DeliveryFailed {
		write = s.w.Do
	}
	var found bool
	err := write(ctx, func(ctx context.Context, tx *Tx) (err error) {
		found, err = s.updateDelivery(ctx, tx, channel, remoteID, state, reason)
		return err
	})
	if err != nil {
		return false, err // found may still be written: not read
	}
	return found, nil
}

func (s *Store) updateDelivery(ctx context.Context, tx *Tx, channel, remoteID string, state connector.Delivery, reason string) (bool, error) {
	var (
		id  int64
		cur connector.Delivery
	)
	err := tx.QueryRowContext(ctx, s.q.byRemoteID, channel, remoteID).Scan(&id, &cur)
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
	// byRemoteID finds lines to the customer only: no line to the agent
	// changes here, and the waiting set has nothing to record.
	_, err = tx.ExecContext(ctx, s.q.setDelivery, state, reason, sqlrow.NowNanos(), id)
	if err != nil {
		return false, fmt.Errorf("update delivery of message %d: %w", id, err)
	}
	return true, nil
}
