package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// SetOptOut records that customer opted out of messages from sender on
// channel (out), or deletes that record (back in). Either is idempotent.
func (s *Store) SetOptOut(ctx context.Context, channel, sender, customer string, out bool) error {
	return s.write(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		if out {
			_, err = tx.ExecContext(ctx, s.q.optOut, channel, sender, customer, sqlrow.NowNanos())
		} else {
			_, err = tx.ExecContext(ctx, s.q.optIn, channel, sender, customer)
		}
		if err != nil {
			return fmt.Errorf("record opt-out of %s: %w", channel, err)
		}
		tx.optOutChanged(channel, sender, customer, out)
		return nil
	})
}

// OptedOut reports whether customer opted out of messages from sender on
// channel and has not opted back in. With Dialect.CacheOptOuts it reads
// the writer's set, not the database: the SMS channel asks for every
// message it relays, either way.
func (s *Store) OptedOut(ctx context.Context, channel, sender, customer string) (bool, error) {
	db, err := s.reader()
	if err != nil {
		return false, err
	}
	if set := s.w.optOuts; set != nil {
		return set.has(channel, sender, customer), nil
	}
	var one int
	err = db.QueryRowContext(ctx, s.q.optedOut, channel, sender, customer).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read opt-out on %s: %w", channel, err)
	}
	return true, nil
}

// LastReceived returns the source id and receive time of the channel's
// newest customer message, in any conversation; zero values when none.
func (s *Store) LastReceived(ctx context.Context, channel string) (string, time.Time, error) {
	db, err := s.reader()
	if err != nil {
		return "", time.Time{}, err
	}
	var id string
	var at int64
	err = db.QueryRowContext(ctx, s.q.lastReceived, channel).Scan(&id, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read the newest message of %s: %w", channel, err)
	}
	return id, sqlrow.FromNanos(at), nil
}
