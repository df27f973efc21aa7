package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// purgeChunk is how many conversations one write transaction of Purge deletes
// at most: a chunk of conversations with their messages takes a few
// milliseconds, so the writer, which every webhook waits for, is never held
// long, whatever limit the caller passes.
const purgeChunk = 100

// Purge deletes at most limit ended conversations last updated before cutoff,
// oldest first, with their messages and outbound keys, and returns how many it
// deleted; see connector.Store. It commits every purgeChunk conversations, so
// on an error the count returned is what the earlier chunks deleted (and
// committed). A limit below 1 deletes nothing.
//
// The inbound de-duplication keys of the deleted messages go with them: a
// channel redelivers within minutes, and retention is counted in days. The
// messages sequence never gives a deleted id again.
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	total := 0
	for total < limit {
		want := min(purgeChunk, limit-total)
		n, err := s.purgeChunk(ctx, sqlrow.ToNanos(cutoff), want)
		total += n
		if err != nil {
			return total, err
		}
		if n < want { // nothing more to delete
			break
		}
	}
	return total, nil
}

// purgeChunk deletes up to n conversations in one write.
func (s *Store) purgeChunk(ctx context.Context, cutoff int64, n int) (int, error) {
	var deleted int
	err := s.write(ctx, func(ctx context.Context, tx *txn) (err error) {
		deleted, err = purgeConversations(ctx, tx, cutoff, n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	return deleted, nil
}

// purgeConversations finds the candidates through conversations_ended and
// deletes children before parents, as the foreign keys require.
func purgeConversations(ctx context.Context, tx *txn, cutoff int64, limit int) (int, error) {
	ids, err := purgeCandidates(ctx, tx, cutoff, limit)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	for _, q := range []string{queryPurgeOutboundKeys, queryPurgeMessages, queryPurgeConversations} {
		if _, err := tx.ExecContext(ctx, q, ids); err != nil {
			return 0, fmt.Errorf("delete %d conversations: %w", len(ids), err)
		}
	}
	return len(ids), nil
}

// queryPurgeCandidates walks conversations_ended from the oldest.
const queryPurgeCandidates = `SELECT c.id FROM conversations c
	WHERE c.state = 'ended' AND c.updated_at < $1
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.state = 'stored')
	ORDER BY c.updated_at, c.id LIMIT $2`

// The deletes take the conversation ids as an array, children first.
const (
	queryPurgeOutboundKeys = `DELETE FROM outbound_keys WHERE message_id IN (SELECT id FROM messages
		WHERE conversation_id = ANY($1))`
	queryPurgeMessages      = `DELETE FROM messages WHERE conversation_id = ANY($1)`
	queryPurgeConversations = `DELETE FROM conversations WHERE id = ANY($1)`
)

// purgeCandidates returns the ids of up to limit ended conversations updated
// before cutoff, oldest first, that have no message still to send.
func purgeCandidates(ctx context.Context, tx *txn, cutoff int64, limit int) ([]int64, error) {
	ids, err := sqlrow.ScanIDs(tx.QueryContext(ctx, queryPurgeCandidates, cutoff, limit))
	if err != nil {
		return nil, fmt.Errorf("find conversations to purge: %w", err)
	}
	return ids, nil
}
