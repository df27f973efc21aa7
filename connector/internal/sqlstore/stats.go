package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// Stats reads conversations by state (every state present, zero included)
// from conversation_counts, which triggers keep (in both schemas), the
// outbox from its partial index, and the writer's counters (synced ones
// apart: a batch of lazy writes only is not). Its cost depends
// on the number of channels and the outbox, not on the history kept.
func (s *Store) Stats(ctx context.Context) (connector.Stats, error) {
	db, err := s.reader()
	if err != nil {
		return connector.Stats{}, err
	}
	st := connector.Stats{Conversations: map[connector.State]int{
		connector.StatePending: 0, connector.StateQueued: 0, connector.StateActive: 0, connector.StateEnded: 0,
	}}
	// The counters and the rows are not one snapshot; metrics do not need one.
	st.Transactions, st.Writes, st.WriteErrors = s.w.Counts()
	st.SyncedTransactions, st.SyncedWrites = s.w.SyncedCounts()
	err = readCounts(ctx, db, st.Conversations, s.q.stateCounts)
	if err != nil {
		return connector.Stats{}, err
	}
	if st.OutboxDepth, st.OldestPending, err = s.outboxStats(ctx, db); err != nil {
		return connector.Stats{}, err
	}
	return st, nil
}

// outboxStats returns the outbox's depth and the time of its first message,
// which is the oldest: ids follow commit order.
func (s *Store) outboxStats(ctx context.Context, db sqlrow.Queryer) (int, time.Time, error) {
	var (
		depth  int
		oldest sql.NullInt64
	)
	err := db.QueryRowContext(ctx, s.q.outboxStats).Scan(&depth, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats: %w", err)
	}
	return depth, sqlrow.FromNanos(oldest.Int64), nil
}

// OpenCounts returns how many of channel's conversations are in each state
// but ended, from conversation_counts. States with none may be missing.
func (s *Store) OpenCounts(ctx context.Context, channel string) (map[connector.State]int, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	counts := map[connector.State]int{}
	err = readCounts(ctx, db, counts, s.q.openCounts, channel)
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// readCounts adds the (state, count) rows of query to into.
func readCounts(ctx context.Context, db sqlrow.Queryer, into map[connector.State]int, query string, args ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("conversation counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			state connector.State
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			return err
		}
		into[state] += n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("conversation counts: %w", err)
	}
	return nil
}
