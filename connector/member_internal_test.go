package connector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// scriptCluster is a Cluster whose lease and roles the test scripts; it owns
// no conversations.
type scriptCluster struct {
	ttl time.Duration

	mu      sync.Mutex
	renew   error // what Renew returns
	leader  bool  // what Lead reports
	renewed int
}

func (c *scriptCluster) Instance() string                       { return "a" }
func (c *scriptCluster) LeaseTTL() time.Duration                { return c.ttl }
func (c *scriptCluster) Join(ctx context.Context) error         { return nil }
func (c *scriptCluster) Owned(ctx context.Context) (int, error) { return 0, nil }
func (c *scriptCluster) Claim(ctx context.Context, limit int) ([]*Conversation, error) {
	return nil, nil
}
func (c *scriptCluster) Release(ctx context.Context) error             { return nil }
func (c *scriptCluster) Resign(ctx context.Context, role string) error { return nil }
func (c *scriptCluster) Listen(ctx context.Context, wake func(int64), sweep func()) error {
	<-ctx.Done()
	return nil
}

func (c *scriptCluster) Renew(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.renewed++
	return c.renew
}

func (c *scriptCluster) Lead(ctx context.Context, role string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader, nil
}

func (c *scriptCluster) set(f func(c *scriptCluster)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// roleVendor records what the core tells it about its role.
type roleVendor struct {
	Vendor
	mu   sync.Mutex
	told []bool
}

func (v *roleVendor) Name() string { return "customerchannel.hub" }

func (v *roleVendor) Lead(ctx context.Context, lead bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.told = append(v.told, lead)
}

func (v *roleVendor) last() (bool, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.told) == 0 {
		return false, 0
	}
	return v.told[len(v.told)-1], len(v.told)
}

func newTestMember(t *testing.T, cl *scriptCluster, vendors ...Vendor) *member {
	t.Helper()
	r, err := NewRouter(RouterConfig{Logger: zap.NewNop(), Conversation: testConversation(), Notices: DefaultNotices(),
		VendorFor: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	mb := newMember(cl, r, zap.NewNop(), NewMetrics(), vendors)
	if err := mb.join(context.Background()); err != nil {
		t.Fatal(err)
	}
	mb.start()
	t.Cleanup(func() { mb.g.Stop(context.Background()) }) //nolint:errcheck // the loops end with their context
	return mb
}

func testConversation() ConversationConfig {
	return defaultConfig().Conversation
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A lease the store says is gone stops the instance: the daemon hears it.
func TestMemberLeaseLostStops(t *testing.T) {
	cl := &scriptCluster{ttl: 300 * time.Millisecond}
	mb := newTestMember(t, cl)
	if !mb.valid() {
		t.Fatal("lease not valid right after Join")
	}
	cl.set(func(c *scriptCluster) { c.renew = errors.New("wrapped: " + ErrLeaseLost.Error()) })
	select {
	case err := <-mb.lost:
		t.Fatalf("a renewal error that is not ErrLeaseLost stopped the instance: %v", err)
	case <-time.After(2 * cl.ttl):
	}
	cl.set(func(c *scriptCluster) { c.renew = errors.Join(errors.New("renew"), ErrLeaseLost) })
	select {
	case err := <-mb.lost:
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("lost = %v, want ErrLeaseLost", err)
		}
	case <-time.After(2 * cl.ttl):
		t.Fatal("a lost lease did not stop the instance")
	}
}

// While renewals fail, the instance stops serving its conversations once
// the lease it last confirmed runs out, and serves again once one succeeds.
func TestMemberFencesWithoutRenewal(t *testing.T) {
	cl := &scriptCluster{ttl: 300 * time.Millisecond}
	mb := newTestMember(t, cl)
	mine, theirs := &Conversation{Owner: "a"}, &Conversation{Owner: "b"}
	if ok, err := mb.serves(mine); !ok || err != nil {
		t.Fatalf("serves(own) = %v, %v right after Join", ok, err)
	}
	if ok, err := mb.serves(theirs); ok || err != nil {
		t.Fatalf("serves(another's) = %v, %v", ok, err)
	}
	cl.set(func(c *scriptCluster) { c.renew = errors.New("connection refused") })
	waitUntil(t, "the lease to run out", 2*cl.ttl, func() bool { return !mb.valid() })
	if ok, err := mb.serves(mine); ok || !errors.Is(err, errLeaseUnsure) {
		t.Fatalf("serves(own) without a lease = %v, %v; want false, errLeaseUnsure", ok, err)
	}
	if h := mb.Health(); h.Ready {
		t.Errorf("Health without a lease = %+v, want not ready", h)
	}
	cl.set(func(c *scriptCluster) { c.renew = nil })
	waitUntil(t, "the lease to be confirmed again", 2*cl.ttl, mb.valid)
	if h := mb.Health(); !h.Ready {
		t.Errorf("Health with a lease = %+v, want ready", h)
	}
}

// A Singleton vendor hears that it does not lead before anything starts,
// leads once the store gives it the role, and stops leading as soon as the
// lease is unconfirmed, even if the store would still report the role.
func TestMemberRoles(t *testing.T) {
	cl := &scriptCluster{ttl: 300 * time.Millisecond}
	v := &roleVendor{}
	mb := newTestMember(t, cl, v)
	if lead, n := v.last(); n == 0 || lead {
		t.Fatalf("before the role: told %v (%d calls), want false first", lead, n)
	}
	cl.set(func(c *scriptCluster) { c.leader = true })
	waitUntil(t, "the vendor to lead", 2*cl.ttl, func() bool { lead, _ := v.last(); return lead })
	if got := mb.leads(); len(got) != 1 || got[0] != "customerchannel.hub" {
		t.Errorf("leads = %v", got)
	}
	cl.set(func(c *scriptCluster) { c.renew = errors.New("timeout") })
	waitUntil(t, "the vendor to stop leading", 3*cl.ttl, func() bool { lead, _ := v.last(); return !lead })
}
