package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/connectord/connectord/connector"
)

// SendProgress returns what SaveSendProgress last stored for message id; nil
// when nothing is. An unknown id is connector.ErrNotFound.
func (s *Store) SendProgress(ctx context.Context, id int64) ([]byte, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	var p []byte
	err = db.QueryRowContext(ctx, `SELECT progress FROM messages WHERE id = $1`, id).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read send progress of message %d: %w", id, err)
	}
	return p, nil
}

// SaveSendProgress stores p for message id while it is still stored (nil p
// clears it); a message already sent or failed is left as it is. An unknown
// id is connector.ErrNotFound.
func (s *Store) SaveSendProgress(ctx context.Context, id int64, p []byte) error {
	var v any
	if len(p) > 0 {
		v = p
	}
	return s.write(ctx, func(ctx context.Context, tx *txn) error {
		r, err := tx.ExecContext(ctx, `UPDATE messages SET progress = $1 WHERE id = $2 AND state = 'stored'`, v, id)
		return changedOrExists(ctx, tx, r, err, id)
	})
}
