package sqlstore

import (
	"context"
	"fmt"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// Store is every method of connector.Store but Close, on an engine's
// connections: writes go through the Writer, reads to the read pool. An
// engine's store embeds it and adds Close (which stops the Writer, then
// closes its connections).
type Store struct {
	d    *Dialect
	q    *queries
	w    *Writer
	read sqlrow.Queryer
	// owner is the instance that owns what this store creates, and the only
	// one whose conversations OpenConversations and Outbox list (see
	// connector.Cluster); "" for a store that is not shared, which serves
	// everything.
	owner string
}

// storeMethods is connector.Store without Close, which the engine adds.
type storeMethods interface {
	RecordInbound(ctx context.Context, in connector.Inbound, vendor string) (connector.InboundResult, error)
	RecordOutbound(ctx context.Context, o connector.Outbound) (connector.OutboundResult, error)
	Apply(ctx context.Context, ch connector.Change) (connector.ChangeResult, error)
	Ping(ctx context.Context) error
}

var _ storeMethods = (*Store)(nil)

// New returns the store whose writes go through w and reads to read, both
// on d's engine; owner is the instance it serves when the store is shared,
// "" otherwise. The queries are bound to d here, once.
func New(d *Dialect, w *Writer, read sqlrow.Queryer, owner string) *Store {
	return &Store{d: d, q: newQueries(d), w: w, read: read, owner: owner}
}

// write runs op in the writer's next batch; see Writer.Do.
func (s *Store) write(ctx context.Context, op Op) error { return s.w.Do(ctx, op) }

// reader returns the read pool, or ErrClosed. The writer answers a caller
// only after its commit, so a read that follows a write sees it.
func (s *Store) reader() (sqlrow.Queryer, error) {
	if s.w.Closed() {
		return nil, s.d.ErrClosed
	}
	return s.read, nil
}

// Ping commits a write: it rewrites the one row of write_probe through the
// writer, in the next batch like any write, so a store that refuses writes
// (a full or read-only disk, a server gone) fails Ping and counts in
// Stats.WriteErrors. It gives up when ctx ends, even while the writer is
// stuck on a frozen disk or a server that does not answer.
func (s *Store) Ping(ctx context.Context) error {
	err := s.write(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, s.q.writeProbe, sqlrow.NowNanos())
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: write probe: %w", s.d.Name, err)
	}
	return nil
}
