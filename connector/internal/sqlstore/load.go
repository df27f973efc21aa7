package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Load fills what s keeps in memory from the database: with
// Dialect.CacheOptOuts, every row of opt_outs; with Dialect.CacheWaiting,
// the lines to the agent still stored; each read as a stream. The engine
// calls it once, after New and before the store is handed out, so that no
// write runs meanwhile (a function, not a method, so that the engine's
// Store does not offer it); it does nothing for a dialect that caches
// nothing.
func Load(ctx context.Context, s *Store) error {
	if err := s.loadOptOuts(ctx); err != nil {
		return fmt.Errorf("%s: load opt-outs: %w", s.d.Name, err)
	}
	if err := s.loadWaiting(ctx); err != nil {
		return fmt.Errorf("%s: load waiting lines: %w", s.d.Name, err)
	}
	return nil
}

func (s *Store) loadOptOuts(ctx context.Context) error {
	set := s.w.optOuts
	if set == nil {
		return nil
	}
	return s.stream(ctx, s.q.allOptOuts, &set.mu, func(rows *sql.Rows) error {
		c := optOutChange{out: true}
		if err := rows.Scan(&c.pair.channel, &c.pair.sender, &c.customer); err != nil {
			return err
		}
		set.set(c)
		return nil
	})
}

func (s *Store) loadWaiting(ctx context.Context) error {
	set := s.w.waiting
	if set == nil {
		return nil
	}
	return s.stream(ctx, s.q.allWaiting, &set.mu, func(rows *sql.Rows) error {
		var c waitingChange
		if err := rows.Scan(&c.msg, &c.conv); err != nil {
			return err
		}
		set.set(c)
		return nil
	})
}

// stream reads query's rows one by one into a set, holding its lock.
func (s *Store) stream(ctx context.Context, query string, lock sync.Locker, row func(*sql.Rows) error) error {
	rows, err := s.read.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	lock.Lock()
	defer lock.Unlock()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
