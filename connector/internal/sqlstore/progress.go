package sqlstore

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
	err = db.QueryRowContext(ctx, s.q.sendProgress, id).Scan(&p)
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
// id is connector.ErrNotFound. It waits for the disk: progress is kept so
// that a crash, a power loss included, does not repeat what was achieved.
func (s *Store) SaveSendProgress(ctx context.Context, id int64, p []byte) error {
	return s.write(ctx, s.saveProgress(id, p))
}

// NoteSendProgress is SaveSendProgress without waiting for the disk
// (Writer.DoLazy): committed when it returns, so it survives this process's
// crash, but a power loss or an operating system crash can forget it.
func (s *Store) NoteSendProgress(ctx context.Context, id int64, p []byte) error {
	return s.w.DoLazy(ctx, s.saveProgress(id, p))
}

func (s *Store) saveProgress(id int64, p []byte) Op {
	var v any
	if len(p) > 0 {
		v = p
	}
	return func(ctx context.Context, tx *Tx) error {
		r, err := tx.ExecContext(ctx, s.q.saveProgress, v, id)
		return s.changedOrExists(ctx, tx, r, err, id)
	}
}

// CountAttempt adds one to message id's attempt count and returns the new
// count, durably (the count must survive the crash it is there to detect). An
// unknown id is connector.ErrNotFound. The message's state and times are left
// as they are: starting a send is not a delivery event.
func (s *Store) CountAttempt(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx *Tx) error {
		err := tx.QueryRowContext(ctx, s.q.countAttempt, id).Scan(&n)
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
// is connector.ErrNotFound. It waits for the disk: a forgotten clear would
// count a send that returned as a crash, and enough of them fail a message
// that is not poison (it is rare: only recovered messages are counted).
func (s *Store) ClearAttempts(ctx context.Context, id int64) error {
	return s.write(ctx, func(ctx context.Context, tx *Tx) error {
		// Both engines count a matched row as changed even when its value
		// stays the same, so no row affected means no such message.
		r, err := tx.ExecContext(ctx, s.q.clearAttempts, id)
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

// changedOrExists turns the outcome of a conditional update of message id
// into nil when it changed a row or the message exists, ErrNotFound otherwise.
func (s *Store) changedOrExists(ctx context.Context, tx *Tx, r sql.Result, err error, id int64) error {
	if err != nil {
		return fmt.Errorf("update message %d: %w", id, err)
	}
	if n, err := r.RowsAffected(); err != nil || n > 0 {
		return err
	}
	return s.exists(ctx, tx, id)
}

// exists returns nil when message id exists, ErrNotFound otherwise.
func (s *Store) exists(ctx context.Context, tx *Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, s.q.messageExists, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
	}
	return err
}
