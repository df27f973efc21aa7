package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/connectord/connectord/connector"
)

// CountAttempt adds one to message id's attempt count and returns the new
// count, durably (the count must survive the crash it is there to detect). An
// unknown id is connector.ErrNotFound. The message's state and times are left
// as they are: starting a send is not a delivery event.
func (s *Store) CountAttempt(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx *txn) error {
		err := tx.QueryRowContext(ctx, `UPDATE messages SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts`, id).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("count attempt of message %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return 0, err // n may still be written: not read
	}
	return n, nil
}

// ClearAttempts sets message id's attempt count back to zero. An unknown id
// is connector.ErrNotFound.
func (s *Store) ClearAttempts(ctx context.Context, id int64) error {
	return s.write(ctx, func(ctx context.Context, tx *txn) error {
		// PostgreSQL counts a matched row as changed even when its value stays the
		// same, so no row affected means no such message.
		r, err := tx.ExecContext(ctx, `UPDATE messages SET attempts = 0 WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("clear attempts of message %d: %w", id, err)
		}
		n, err := r.RowsAffected()
		if err == nil && n == 0 {
			err = fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
		}
		return err
	})
}
