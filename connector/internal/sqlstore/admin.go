package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// listFilter is the condition every conversation listing ends with; its
// parameters are listArgs's. A filter that is not set passes its "no
// filter" value (an empty string or 0, a bound of the int64 range), so that one
// statement serves every combination and is bound once.
const listFilter = `id < ? AND (? = '' OR state = ?) AND (? = 0 OR state != 'ended')
	AND (? = '' OR channel = ?) AND (? = '' OR vendor = ?) AND created_at < ? AND created_at >= ?
	ORDER BY id DESC LIMIT ?`

// listQueries returns the three conversation listings, by where they read:
//   - all: a backwards walk of the primary key from the cursor, which stops
//     after the limit; the filters are checked on the way, so a filter that
//     few conversations match reads further back.
//   - open: the partial index of open conversations, which holds no ended one.
//   - stuck: the conversations named by the outbox's index (messages still
//     stored) and by messages_failed (failed messages), both partial.
func listQueries() (all, open, stuck string) {
	cols := sqlrow.ConversationColumns
	all = `SELECT ` + cols + ` FROM conversations WHERE ` + listFilter
	open = `SELECT ` + cols + ` FROM conversations{index conversations_open} WHERE state != 'ended' AND ` + listFilter
	stuck = `SELECT ` + cols + ` FROM conversations WHERE id IN (
		SELECT conversation_id FROM messages{index messages_outbox} WHERE state = 'stored' AND created_at < ?
		UNION SELECT conversation_id FROM messages{index messages_failed} WHERE state = 'failed' AND updated_at >= ?)
	AND ` + listFilter
	return all, open, stuck
}

// listArgs are the parameters of listFilter for q.
func listArgs(q connector.ConversationQuery) []any {
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	open := 0
	if q.Open {
		open = 1
	}
	createdBefore, createdAfter := int64(math.MaxInt64), int64(math.MinInt64)
	if !q.CreatedBefore.IsZero() {
		createdBefore = sqlrow.ToNanos(q.CreatedBefore)
	}
	if !q.CreatedAfter.IsZero() {
		createdAfter = sqlrow.ToNanos(q.CreatedAfter)
	}
	return []any{before, string(q.State), string(q.State), open, q.Channel, q.Channel, q.Vendor, q.Vendor,
		createdBefore, createdAfter, q.Limit}
}

// ListConversations implements connector.Store. It reads through the
// smallest index that holds every conversation q can select (see
// listQueries).
func (s *Store) ListConversations(ctx context.Context, q connector.ConversationQuery) ([]*connector.Conversation, error) {
	if q.Limit <= 0 {
		return nil, s.d.errorf("ListConversations: limit %d is not positive", q.Limit)
	}
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	args := listArgs(q)
	query := s.q.listConversations
	switch {
	case q.Stuck != nil:
		failedSince := int64(math.MaxInt64) // no failure is that recent
		if !q.Stuck.FailedSince.IsZero() {
			failedSince = sqlrow.ToNanos(q.Stuck.FailedSince)
		}
		query = s.q.listStuck
		args = append([]any{sqlrow.ToNanos(q.Stuck.WaitingBefore), failedSince}, args...)
	case q.Open || (q.State != "" && q.State != connector.StateEnded):
		query = s.q.listOpen
	}
	cs, err := sqlrow.ScanConversations(db.QueryContext(ctx, query, args...))
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return cs, nil
}

// RecentFailures implements connector.Store, through the partial index
// messages_failed.
func (s *Store) RecentFailures(ctx context.Context, since time.Time, limit int) ([]*connector.Message, error) {
	if limit <= 0 {
		return nil, s.d.errorf("RecentFailures: limit %d is not positive", limit)
	}
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	ms, err := sqlrow.ScanMessages(db.QueryContext(ctx, s.q.recentFailures, sqlrow.ToNanos(since), limit))
	if err != nil {
		return nil, fmt.Errorf("recent failures: %w", err)
	}
	return ms, nil
}

// RetryMessage implements connector.Store. The move and the check of the
// state are one statement, so a message that something else settled
// meanwhile is never moved back. A message it does not move is no error of
// the write: a failed request would make the writer run its whole batch
// again with savepoints. Why it was not moved is read afterwards.
func (s *Store) RetryMessage(ctx context.Context, id int64) (*connector.Message, error) {
	var m *connector.Message
	err := s.write(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		m, err = sqlrow.ScanMessage(tx.QueryRowContext(ctx, s.q.retryMessage, sqlrow.NowNanos(), id))
		if errors.Is(err, sql.ErrNoRows) {
			m, err = nil, nil
		}
		if err == nil && m != nil && m.Direction == connector.ToAgent {
			tx.waitingAdded(m.ID, m.ConversationID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retry message %d: %w", id, err)
	}
	if m != nil {
		return m, nil
	}
	cur, err := s.Message(ctx, id)
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("message %d is %s, not failed: %w", id, cur.State, connector.ErrWrongState)
}
