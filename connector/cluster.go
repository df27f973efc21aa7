package connector

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost says that this instance's lease lapsed, or that another
// process joined under the same instance id: other instances may be serving
// its conversations now, so it must stop serving any.
var ErrLeaseLost = errors.New("the instance's lease was lost")

// Cluster lets several connectord instances share one store. Every
// conversation that is open, or ended with messages still to send, has an
// owner: the one instance that talks to its vendor and sends its messages.
// Each instance holds a lease that it renews; a conversation whose owner's
// lease lapsed (the instance died) or that was handed back (it stopped) is
// claimed by another instance, which resumes it.
//
// A Store shared this way implements Cluster. Its other methods then see the
// store as this instance does: RecordInbound and RecordOutbound give a
// conversation they create to this instance, Apply's Move gives the next
// conversation to the ended one's owner, and OpenConversations and Outbox
// list only what this instance owns. A Store that is not shared (SQLite)
// does not implement it, and its one instance serves everything.
type Cluster interface {
	// Instance is this instance's id: Conversation.Owner of what it owns.
	Instance() string
	// LeaseTTL is how long a lease lasts after the Join or Renew that made it.
	LeaseTTL() time.Duration
	// Join starts this instance's lease, under a new epoch: a process that
	// held the same id before loses it (its Renew fails with ErrLeaseLost).
	// What an earlier run of this instance owned and nobody claimed is still
	// its own.
	Join(ctx context.Context) error
	// Renew extends the lease by LeaseTTL, on the store's clock. It fails
	// with an error wrapping ErrLeaseLost when the lease lapsed before it
	// was renewed or another Join replaced it; any other error says nothing
	// about the lease.
	Renew(ctx context.Context) error
	// Claim gives this instance up to limit conversations that have no live
	// owner (their owner's lease lapsed, or they were handed back) and
	// returns them. Instances claiming at the same time get different ones.
	Claim(ctx context.Context, limit int) ([]*Conversation, error)
	// Release hands back every conversation this instance owns, gives up
	// every role it leads, ends its lease, and tells the other instances
	// that there are conversations to claim.
	Release(ctx context.Context) error
	// Listen reports, until ctx is done, the work that other instances
	// commit for this one: wake(id) when another instance stored a message in
	// a conversation this one owns (a customer line it took, an end the
	// customer asked for), and sweep() when another instance handed
	// conversations back. It also calls sweep() once as soon as it listens:
	// work committed before that was not notified. It returns nil once ctx is
	// done, or an error when the notification connection fails;
	// notifications sent while nobody listens are lost, which the sweep of
	// the next Listen makes up for.
	Listen(ctx context.Context, wake func(conversation int64), sweep func()) error
	// Lead takes the named role for this instance when nobody holds it or
	// its holder's lease lapsed, or renews it when this instance holds it
	// already, and reports whether this instance holds it now.
	Lead(ctx context.Context, role string) (bool, error)
	// Resign gives up a role this instance holds; another may take it at once.
	Resign(ctx context.Context, role string) error
	// Owned counts the conversations this instance owns.
	Owned(ctx context.Context) (int, error)
}

// Singleton is a vendor with a connection or a role that only one instance
// may hold at a time when several share the store: the Customer Channel
// connector registration, which would otherwise have each campaign message
// offered to every instance. The role is named after the vendor. When
// several instances share the store, the core calls Lead(ctx, false) before
// Start, then Lead(ctx, true) when this instance takes the role and
// Lead(ctx, false) when it loses it. A vendor never told otherwise leads (a
// single instance). Lead must not block on the network: it records the role
// and lets the vendor's connection act on it.
type Singleton interface {
	Lead(ctx context.Context, lead bool)
}
