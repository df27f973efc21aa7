package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// ErrNotShared is returned by the Cluster methods of a store opened without
// an instance id: it is not shared, and its one instance serves everything.
var ErrNotShared = errors.New("connector/postgres: the store is not shared (no instance id): it has no leases, claims or notifications")

// Lease and claim statements run in transactions of their own on the
// cluster pool, not through the writer: a renewal must never queue behind a
// batch of writes (up to 256 of them, bounded only by batchTimeout), and a
// claim waits for row locks that the writer's batches hold, which in a batch
// would hold every webhook's write too. Each is bounded: a renewal by the
// lease's TTL, past which the lease has lapsed anyway and waiting serves
// nothing; the others by clusterTimeout.
const clusterTimeout = 30 * time.Second

// Instance is this instance's id; "" when the store is not shared.
func (s *Store) Instance() string { return s.instance }

// LeaseTTL is how long a lease lasts after the Join or Renew that made it;
// 0 when the store is not shared.
func (s *Store) LeaseTTL() time.Duration { return s.ttl }

// clusterDB returns the cluster pool, or why there is none.
func (s *Store) clusterDB() (*sql.DB, error) {
	if s.instance == "" {
		return nil, ErrNotShared
	}
	if s.w.Closed() {
		return nil, ErrClosed
	}
	return s.cdb, nil
}

// ttlMicros is the TTL as the statements take it, in microseconds (an
// interval's precision).
func (s *Store) ttlMicros() int64 { return max(1, s.ttl.Microseconds()) }

// leaseLost wraps connector.ErrLeaseLost with what was being done.
func (s *Store) leaseLost(what string) error {
	return fmt.Errorf("connector/postgres: %s as %s: %w (it lapsed, another instance claimed its conversations, or another process joined under this id)",
		what, s.instance, connector.ErrLeaseLost)
}

// Join starts this instance's lease under a new random epoch, expiring
// LeaseTTL from now on the database's clock. A process that held the lease
// before under the same id fails its next Renew. It waits for a Claim that
// is taking this instance's conversations to commit (the claim locks the
// lease row), so that what Join's caller then reads as its own is what the
// claim left it.
func (s *Store) Join(ctx context.Context) error {
	db, err := s.clusterDB()
	if err != nil {
		return err
	}
	epoch, err := newEpoch()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	_, err = db.ExecContext(ctx, `INSERT INTO leases (kind, name, holder, epoch, expires_at)
		VALUES ('instance', $1, $1, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (kind, name) DO UPDATE SET holder = EXCLUDED.holder, epoch = EXCLUDED.epoch, expires_at = EXCLUDED.expires_at`,
		s.instance, epoch, s.ttlMicros())
	if err != nil {
		return fmt.Errorf("connector/postgres: join as %s: %w", s.instance, err)
	}
	s.epoch.Store(epoch)
	return nil
}

// newEpoch returns a random positive epoch; 0 marks a lease a claimer took
// over, so it is never one.
func newEpoch() (int64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("connector/postgres: lease epoch: %w", err)
		}
		if e := int64(binary.BigEndian.Uint64(b[:]) >> 1); e != 0 {
			return e, nil
		}
	}
}

// Renew extends this instance's lease to LeaseTTL from now, on the database's
// clock, if it still holds it: same epoch, and not expired at the moment the
// row is updated. A lapsed lease is never extended, even when nobody claimed
// anything meanwhile: the caller may not know what it missed. It fails with
// connector.ErrLeaseLost then, and after Release or before Join.
//
// The expiry check uses clock_timestamp() rather than the transaction's start
// time, and is evaluated again if the row changed while Renew waited for its
// lock: a claimer that found the lease expired holds that lock until it
// commits, and fences the epoch.
func (s *Store) Renew(ctx context.Context) error {
	db, err := s.clusterDB()
	if err != nil {
		return err
	}
	epoch := s.epoch.Load()
	if epoch == 0 {
		return s.leaseLost("renew (not joined)")
	}
	ctx, cancel := context.WithTimeout(ctx, s.ttl)
	defer cancel()
	r, err := db.ExecContext(ctx, `UPDATE leases SET expires_at = clock_timestamp() + $3::bigint * interval '1 microsecond'
		WHERE kind = 'instance' AND name = $1 AND epoch = $2 AND expires_at > clock_timestamp()`,
		s.instance, epoch, s.ttlMicros())
	if err != nil {
		return fmt.Errorf("connector/postgres: renew the lease of %s: %w", s.instance, err)
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("connector/postgres: renew the lease of %s: %w", s.instance, err)
		}
		return s.leaseLost("renew")
	}
	return nil
}

// claimableOwners lists the owners of claimable conversations (open, or
// ended with a message still stored) that have no instance lease at all;
// Claim gives each an expired one, so that it has a row to lock.
const claimableOwners = `SELECT owner FROM conversations WHERE state <> 'ended' AND owner <> ''
	UNION
	SELECT c.owner FROM messages m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.state = 'stored' AND c.owner <> ''`

// Claim gives this instance up to limit conversations without a live owner
// and returns them, by id, with Owner set to this instance. See
// connector.Cluster. It fails with connector.ErrLeaseLost when this
// instance's own lease is not live.
//
// In one transaction it:
//  1. checks (and share-locks) its own lease;
//  2. gives every owner of a claimable conversation that has no lease row an
//     expired one (epoch 0);
//  3. locks the expired leases of instances that own claimable conversations
//     (in name order, so that concurrent claimers never deadlock) and sets
//     their epoch to 0: a Join under such an id waits until this commits, and
//     a late Renew of the lapsed lease fails even if it was already waiting;
//  4. takes up to limit claimable conversations owned by nobody or by those
//     instances, FOR UPDATE SKIP LOCKED, so that concurrent claimers get
//     different ones, and makes them its own.
//
// Without step 3 a restarting instance could Join and read "owner = me"
// between this transaction's reading its lease as expired and its commit,
// and both would serve the same conversations.
func (s *Store) Claim(ctx context.Context, limit int) ([]*connector.Conversation, error) {
	db, err := s.clusterDB()
	if err != nil || limit < 1 {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("connector/postgres: claim: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	cs, err := s.claim(ctx, tx, limit)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("connector/postgres: claim: commit: %w", err)
	}
	return cs, nil
}

func (s *Store) claim(ctx context.Context, tx *sql.Tx, limit int) ([]*connector.Conversation, error) {
	var live int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM leases
		WHERE kind = 'instance' AND name = $1 AND epoch = $2 AND expires_at > clock_timestamp() FOR SHARE`,
		s.instance, s.epoch.Load()).Scan(&live)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.leaseLost("claim")
	}
	if err != nil {
		return nil, fmt.Errorf("connector/postgres: claim: own lease: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO leases (kind, name, holder, epoch, expires_at)
		SELECT 'instance', o.owner, o.owner, 0, '-infinity' FROM (`+claimableOwners+`) o
		WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.kind = 'instance' AND l.name = o.owner)
		ORDER BY o.owner
		ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("connector/postgres: claim: leases of unknown owners: %w", err)
	}
	dead, err := sqlrow.ScanColumn[string](tx.QueryContext(ctx, `SELECT l.name FROM leases l
		WHERE l.kind = 'instance' AND l.expires_at <= clock_timestamp() AND l.name IN (`+claimableOwners+`)
		ORDER BY l.name FOR UPDATE OF l`))
	if err != nil {
		return nil, fmt.Errorf("connector/postgres: claim: lock expired leases: %w", err)
	}
	if len(dead) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE leases SET epoch = 0 WHERE kind = 'instance' AND name = ANY($1) AND epoch <> 0`, dead); err != nil {
			return nil, fmt.Errorf("connector/postgres: claim: fence expired leases: %w", err)
		}
	}
	if s.claimLocked != nil {
		s.claimLocked()
	}
	// The owner test is repeated at the outer level: a conversation another
	// claimer took and committed after this statement's snapshot is checked
	// again, on its new row, once locked.
	cs, err := sqlrow.ScanConversations(tx.QueryContext(ctx, `UPDATE conversations SET owner = $1 WHERE id IN (
			SELECT c.id FROM conversations c
			WHERE c.owner = ANY($2) AND c.id IN (
				SELECT id FROM conversations WHERE owner = ANY($2) AND state <> 'ended'
				UNION ALL
				SELECT conversation_id FROM messages WHERE state = 'stored')
			ORDER BY c.id LIMIT $3 FOR UPDATE OF c SKIP LOCKED)
		RETURNING `+sqlrow.ConversationColumns, s.instance, append(dead, ""), limit))
	if err != nil {
		return nil, fmt.Errorf("connector/postgres: claim conversations: %w", err)
	}
	sortByID(cs)
	return cs, nil
}

// Release hands back every conversation this instance owns (no owner),
// gives up its roles, deletes its lease and notifies the other instances
// that there are conversations to claim, in one transaction. When another
// process joined under this id since this one's Join, it changes nothing and
// fails with connector.ErrLeaseLost: what is owned under the id is that
// process's.
//
// Writes the writer commits after Release under this instance create
// conversations owned by it with no lease: Claim treats them as a dead
// instance's.
func (s *Store) Release(ctx context.Context) error {
	db, err := s.clusterDB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("connector/postgres: release: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.release(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("connector/postgres: release: commit: %w", err)
	}
	s.epoch.Store(0)
	return nil
}

func (s *Store) release(ctx context.Context, tx *sql.Tx) error {
	mine := s.epoch.Load()
	var epoch int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM leases WHERE kind = 'instance' AND name = $1 FOR UPDATE`, s.instance).Scan(&epoch)
	switch {
	case errors.Is(err, sql.ErrNoRows): // never joined, or released: hand back what is left
	case err != nil:
		return fmt.Errorf("connector/postgres: release: read the lease: %w", err)
	case epoch != mine && epoch != 0: // 0: lapsed and fenced by a claimer, still this process's
		return s.leaseLost("release")
	}
	steps := []struct {
		what, query string
		args        []any
	}{
		{"hand back conversations", `UPDATE conversations SET owner = '' WHERE owner = $1 AND id IN (
			SELECT id FROM conversations WHERE owner = $1 AND state <> 'ended'
			UNION ALL
			SELECT conversation_id FROM messages WHERE state = 'stored')`, []any{s.instance}},
		{"resign roles", `DELETE FROM leases WHERE kind = 'role' AND holder = $1 AND epoch = $2`, []any{s.instance, mine}},
		{"end the lease", `DELETE FROM leases WHERE kind = 'instance' AND name = $1`, []any{s.instance}},
		{"notify", `SELECT pg_notify($1, $2)`, []any{s.channel, claimableNotice(s.instance)}},
	}
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return fmt.Errorf("connector/postgres: release: %s: %w", st.what, err)
		}
	}
	return nil
}

// Lead takes the role for this instance when nobody holds it or its lease
// expired, or renews it when this process holds it, for LeaseTTL on the
// database's clock, and reports whether this process holds it now. A process
// whose own instance lease is not live takes or keeps no role (false).
func (s *Store) Lead(ctx context.Context, role string) (bool, error) {
	db, err := s.clusterDB()
	if err != nil {
		return false, err
	}
	if role == "" {
		return false, errors.New("connector/postgres: lead: empty role name")
	}
	ctx, cancel := context.WithTimeout(ctx, s.ttl)
	defer cancel()
	r, err := db.ExecContext(ctx, `INSERT INTO leases (kind, name, holder, epoch, expires_at)
		SELECT 'role', $1, $2, $3, clock_timestamp() + $4::bigint * interval '1 microsecond'
		WHERE EXISTS (SELECT 1 FROM leases i
			WHERE i.kind = 'instance' AND i.name = $2 AND i.epoch = $3 AND i.expires_at > clock_timestamp())
		ON CONFLICT (kind, name) DO UPDATE SET holder = EXCLUDED.holder, epoch = EXCLUDED.epoch, expires_at = EXCLUDED.expires_at
		WHERE leases.expires_at <= clock_timestamp() OR (leases.holder = EXCLUDED.holder AND leases.epoch = EXCLUDED.epoch)`,
		role, s.instance, s.epoch.Load(), s.ttlMicros())
	if err != nil {
		return false, fmt.Errorf("connector/postgres: lead %s: %w", role, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("connector/postgres: lead %s: %w", role, err)
	}
	return n == 1, nil
}

// Resign gives up the role if this process holds it; another instance may
// take it at once. Resigning a role not held is not an error.
func (s *Store) Resign(ctx context.Context, role string) error {
	db, err := s.clusterDB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	_, err = db.ExecContext(ctx, `DELETE FROM leases WHERE kind = 'role' AND name = $1 AND holder = $2 AND epoch = $3`,
		role, s.instance, s.epoch.Load())
	if err != nil {
		return fmt.Errorf("connector/postgres: resign %s: %w", role, err)
	}
	return nil
}

// Owned counts the conversations this instance owns that need serving:
// open, or ended with a message still stored.
func (s *Store) Owned(ctx context.Context) (int, error) {
	if _, err := s.clusterDB(); err != nil {
		return 0, err
	}
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (
			SELECT id FROM conversations WHERE owner = $1 AND state <> 'ended'
			UNION
			SELECT c.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
				WHERE m.state = 'stored' AND c.owner = $1) owned`, s.instance).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("connector/postgres: owned conversations: %w", err)
	}
	return n, nil
}

// notifyChannel is the NOTIFY channel of the schema the store's tables are
// in, as the trigger names it: LISTEN/NOTIFY channels are per database, and
// several stores may live in one database's schemas.
func notifyChannel(ctx context.Context, db *sql.DB) (string, error) {
	var ch string
	err := db.QueryRowContext(ctx, `SELECT left('connectord.' || n.nspname, 63)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'messages'::regclass`).Scan(&ch)
	return ch, err
}

func sortByID(cs []*connector.Conversation) {
	slices.SortFunc(cs, func(a, b *connector.Conversation) int { return cmp.Compare(a.ID, b.ID) })
}
