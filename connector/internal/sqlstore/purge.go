package sqlstore

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
// schemas keep deleted message ids from being given again (SQLite's
// message_id_floor, PostgreSQL's sequence).
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
	err := s.write(ctx, func(ctx context.Context, tx *Tx) (err error) {
		deleted, err = s.purgeConversations(ctx, tx, cutoff, n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	return deleted, nil
}

// purgeConversations finds the candidates through conversations_ended and
// deletes children before parents, as the foreign keys require.
func (s *Store) purgeConversations(ctx context.Context, tx *Tx, cutoff int64, limit int) (int, error) {
	ids, err := sqlrow.ScanColumn[int64](tx.QueryContext(ctx, s.q.purgeCandidates, cutoff, limit))
	if err != nil {
		return 0, fmt.Errorf("find conversations to purge: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := s.d.IDList(ids)
	if err != nil {
		return 0, err
	}
	tx.touch(ids...)
	tx.waitingPurged(ids...) // none waits (purgeCandidates), but the set must not keep a deleted id
	for _, q := range []string{s.q.purgeOutboundKeys, s.q.purgeMessages, s.q.purgeConversations} {
		if _, err := tx.ExecContext(ctx, q, list); err != nil {
			return 0, fmt.Errorf("delete %d conversations: %w", len(ids), err)
		}
	}
	return len(ids), nil
}
