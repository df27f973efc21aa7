package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

func TestOpenWithChecksOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string // part of the error; "" for none
	}{
		{"space", Options{Instance: "a b"}, "instance id"},
		{"too long", Options{Instance: strings.Repeat("a", 64)}, "instance id"},
		{"not ascii", Options{Instance: "café"}, "instance id"},
		{"slash", Options{Instance: "a/b"}, "instance id"},
		{"negative ttl", Options{Instance: "a", LeaseTTL: -time.Second}, "lease TTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The options are checked before connecting: no server needed.
			_, err := OpenWith(context.Background(), "postgres://nowhere.invalid/db", tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenWith(%+v) = %v, want an error about %s", tc.o, err, tc.want)
			}
		})
	}
	dsn := freshDSN(t)
	for _, tc := range []struct {
		o       Options
		wantTTL time.Duration
	}{
		{Options{Instance: "A-z_0.9"}, DefaultLeaseTTL},
		{Options{Instance: strings.Repeat("x", 63), LeaseTTL: time.Second}, time.Second},
	} {
		s, err := OpenWith(context.Background(), dsn, tc.o)
		if err != nil {
			t.Fatalf("OpenWith(%+v): %v", tc.o, err)
		}
		if s.Instance() != tc.o.Instance || s.LeaseTTL() != tc.wantTTL {
			t.Errorf("Instance, LeaseTTL = %q, %v, want %q, %v", s.Instance(), s.LeaseTTL(), tc.o.Instance, tc.wantTTL)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNotSharedHasNoClusterMethods(t *testing.T) {
	s := open(t, freshDSN(t))
	if s.Instance() != "" {
		t.Fatalf("Instance() = %q, want \"\"", s.Instance())
	}
	ctx := context.Background()
	_, claimErr := s.Claim(ctx, 10)
	_, leadErr := s.Lead(ctx, "r")
	_, ownedErr := s.Owned(ctx)
	for name, err := range map[string]error{
		"Join": s.Join(ctx), "Renew": s.Renew(ctx), "Claim": claimErr, "Release": s.Release(ctx),
		"Lead": leadErr, "Resign": s.Resign(ctx, "r"), "Owned": ownedErr,
		"Listen": s.Listen(ctx, func(int64) {}, func() {}),
	} {
		if !errors.Is(err, ErrNotShared) {
			t.Errorf("%s = %v, want ErrNotShared", name, err)
		}
	}
}

// A conversation is its creator's; writes by others leave its owner alone;
// a Move gives the next conversation to the ended one's owner, whoever
// applies it. A store that is not shared leaves owner empty.
func TestOwnershipOnCreate(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")

	first := inbound(t, a, customer(1), "SM1")
	if !first.Created || first.Conversation.Owner != "a" {
		t.Fatalf("a's first line: created %v owner %q, want a new conversation of a", first.Created, first.Conversation.Owner)
	}
	second := inbound(t, b, customer(1), "SM2")
	if second.Created || second.Conversation.ID != first.Conversation.ID || second.Conversation.Owner != "a" {
		t.Fatalf("b's line for the same customer: created %v conv %d owner %q, want a's conversation %d",
			second.Created, second.Conversation.ID, second.Conversation.Owner, first.Conversation.ID)
	}
	out, err := b.RecordOutbound(ctx, connector.Outbound{Vendor: "customerchannel.hub", Channel: "sms.main",
		Customer: customer(2), SourceID: "campaign-1", Text: "offer"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ownerOf(t, a, out.Message.ConversationID); got != "b" {
		t.Errorf("b's outbound conversation is owned by %q, want b", got)
	}
	// b ends a's conversation with the customer's two lines still waiting:
	// they move to a next conversation, which is a's.
	res, err := b.Apply(ctx, connector.Change{ConversationID: first.Conversation.ID, State: connector.StateEnded,
		EndReason: "agent", Move: &connector.Move{Vendor: "whoson.sales"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Next == nil || res.Next.Owner != "a" || ownerOf(t, b, res.Next.ID) != "a" {
		t.Fatalf("next conversation %+v, want one owned by a", res.Next)
	}

	single := open(t, freshDSN(t))
	if got := inbound(t, single, customer(1), "SM1").Conversation.Owner; got != "" {
		t.Errorf("a store that is not shared gave its conversation owner %q", got)
	}
}

// OpenConversations and Outbox list what the instance owns; a store opened
// without an instance lists everything.
func TestListsAreTheInstances(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")
	ca := inbound(t, a, customer(1), "SM1")
	cb := inbound(t, b, customer(2), "SM2")
	inbound(t, a, customer(2), "SM3") // a's line in b's conversation is b's to send
	all := open(t, dsn)

	for _, tc := range []struct {
		s         *Store
		convs     []int64
		outboxLen int
	}{
		{a, []int64{ca.Conversation.ID}, 1},
		{b, []int64{cb.Conversation.ID}, 2},
		{all, []int64{ca.Conversation.ID, cb.Conversation.ID}, 3},
	} {
		cs, err := tc.s.OpenConversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.convs, ids(cs)); d != "" {
			t.Errorf("%q: OpenConversations (-want +got):\n%s", tc.s.Instance(), d)
		}
		ms, err := tc.s.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != tc.outboxLen {
			t.Errorf("%q: Outbox has %d messages, want %d", tc.s.Instance(), len(ms), tc.outboxLen)
		}
		for _, m := range ms {
			if tc.s != all && ownerOf(t, all, m.ConversationID) != tc.s.Instance() {
				t.Errorf("%q: Outbox lists message %d of another instance's conversation", tc.s.Instance(), m.ID)
			}
		}
	}
}

// The owner is woken when another instance stores a message in its
// conversation, and not for its own writes nor for what it does not own.
func TestWakeOwnerOfAnotherInstancesWrite(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")
	c1 := inbound(t, a, customer(1), "SM1").Conversation.ID
	c2 := inbound(t, a, customer(2), "SM2").Conversation.ID
	la, lb := listen(t, a), listen(t, b)

	inbound(t, b, customer(1), "SM3") // a customer line that b's webhook took
	if got := la.nextWake(t); got != c1 {
		t.Fatalf("a woken for %d, want %d", got, c1)
	}
	// a's own writes wake nobody; notifications arrive in commit order, so
	// the next wake a sees must be the one b causes afterwards.
	inbound(t, a, customer(1), "SM4")
	if _, err := a.Apply(ctx, connector.Change{ConversationID: c1, Messages: []*connector.Message{
		{Direction: connector.ToCustomer, Kind: connector.KindText, Text: "hi", SourceID: "v1"}}}); err != nil {
		t.Fatal(err)
	}
	// An end the customer asked for, recorded by b.
	if _, err := b.Apply(ctx, connector.Change{ConversationID: c2, Messages: []*connector.Message{
		{Direction: connector.ToAgent, Kind: connector.KindEnd}}}); err != nil {
		t.Fatal(err)
	}
	if got := la.nextWake(t); got != c2 {
		t.Fatalf("a woken for %d after its own writes, want %d (b's write)", got, c2)
	}
	// b owns nothing of this: it is never woken. a's write to b's own
	// conversation comes last and must be the first b hears.
	c3 := inbound(t, b, customer(3), "SM5").Conversation.ID
	inbound(t, a, customer(3), "SM6")
	if got := lb.nextWake(t); got != c3 {
		t.Fatalf("b woken for %d, want only %d", got, c3)
	}
	// b ends a's conversation with lines waiting: they move to a next
	// conversation (a's), and the notice appended to the ended one is a's to
	// send. a is woken for both.
	res, err := b.Apply(ctx, connector.Change{ConversationID: c1, State: connector.StateEnded, EndReason: "customer",
		Move: &connector.Move{Vendor: "whoson.sales", Messages: []*connector.Message{
			{Direction: connector.ToCustomer, Kind: connector.KindNotice, Text: "a new chat starts"}}}})
	if err != nil || res.Next == nil {
		t.Fatalf("Apply with Move: %+v, %v", res, err)
	}
	woken := []int64{la.nextWake(t), la.nextWake(t)}
	slices.Sort(woken)
	if d := cmp.Diff([]int64{c1, res.Next.ID}, woken); d != "" {
		t.Fatalf("a woken after b's Move (-want +got):\n%s", d)
	}
}

// A line stored in a conversation nobody owns (handed back, not claimed
// yet) tells the other instances to claim.
func TestLineForAnUnownedConversationNotifiesClaimable(t *testing.T) {
	dsn := freshDSN(t)
	a, b, c := member(t, dsn, "a"), member(t, dsn, "b"), member(t, dsn, "c")
	conv := inbound(t, a, customer(1), "SM1").Conversation.ID
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	lc := listen(t, c)
	if got := inbound(t, b, customer(1), "SM2").Conversation; got.ID != conv || got.Owner != "" {
		t.Fatalf("b's line went to %d owned by %q, want %d owned by nobody", got.ID, got.Owner, conv)
	}
	lc.nextClaimable(t)
}

// An expired owner's open conversations and its ended ones with a message
// still to send are claimed; an ended one with nothing to send is not.
func TestClaimTakesWhatADeadInstanceServed(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")
	open1 := inbound(t, a, customer(1), "SM1").Conversation.ID
	withEndNotice, err := a.RecordOutbound(ctx, connector.Outbound{Vendor: "v", Channel: "sms.main", Customer: customer(2), SourceID: "o1", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := a.RecordOutbound(ctx, connector.Outbound{Vendor: "v", Channel: "sms.main", Customer: customer(3), SourceID: "o2", Text: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.MarkSent(ctx, done.Message.ID, "r1"); err != nil {
		t.Fatal(err)
	}
	bOwn := inbound(t, b, customer(4), "SM2").Conversation.ID

	if got, err := b.Claim(ctx, 100); err != nil || len(got) != 0 {
		t.Fatalf("Claim while a is live = %v, %v; want nothing", ids(got), err)
	}
	expireLease(t, dsn, "instance", "a")
	got, err := b.Claim(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{open1, withEndNotice.Message.ConversationID}
	if d := cmp.Diff(want, ids(got)); d != "" {
		t.Fatalf("Claim (-want +got):\n%s", d)
	}
	for _, c := range got {
		if c.Owner != "b" || ownerOf(t, a, c.ID) != "b" {
			t.Errorf("claimed conversation %d owner %q (stored %q), want b", c.ID, c.Owner, ownerOf(t, a, c.ID))
		}
	}
	if n, err := b.Owned(ctx); err != nil || n != 3 {
		t.Errorf("b.Owned = %d, %v; want 3 (its own %d and the two claimed)", n, err, bOwn)
	}
	if n, err := a.Owned(ctx); err != nil || n != 0 {
		t.Errorf("a.Owned = %d, %v; want 0", n, err)
	}
	if err := a.Renew(ctx); !errors.Is(err, connector.ErrLeaseLost) {
		t.Errorf("a.Renew after its conversations were claimed = %v, want ErrLeaseLost", err)
	}
	if _, err := a.Claim(ctx, 10); !errors.Is(err, connector.ErrLeaseLost) {
		t.Errorf("a.Claim with a lapsed lease = %v, want ErrLeaseLost", err)
	}
}

// A lease that lapsed on the database's clock is never renewed.
func TestRenewAfterLapseFails(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a := memberWith(t, dsn, "a", shortTTL)
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("Renew right after Join: %v", err)
	}
	waitFor(t, "a's lease to lapse", func() bool {
		return count(t, dsn, `SELECT count(*) FROM $schema.leases WHERE name = 'a' AND expires_at <= clock_timestamp()`) == 1
	})
	if err := a.Renew(ctx); !errors.Is(err, connector.ErrLeaseLost) {
		t.Fatalf("Renew after the lease lapsed = %v, want ErrLeaseLost", err)
	}
	if err := a.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("Renew after joining again: %v", err)
	}
}

// A second process joining under the same id replaces the first, which
// loses its lease; what the id owned is the second's.
func TestJoinUnderTheSameIDReplacesTheFirst(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	first := member(t, dsn, "a")
	conv := inbound(t, first, customer(1), "SM1").Conversation.ID
	second := member(t, dsn, "a")
	if err := first.Renew(ctx); !errors.Is(err, connector.ErrLeaseLost) {
		t.Fatalf("first process's Renew = %v, want ErrLeaseLost", err)
	}
	if err := second.Renew(ctx); err != nil {
		t.Fatalf("second process's Renew: %v", err)
	}
	cs, err := second.OpenConversations(ctx)
	if err != nil || !slices.Equal(ids(cs), []int64{conv}) {
		t.Fatalf("second process's conversations = %v, %v; want [%d]", ids(cs), err, conv)
	}
	// The first one's hand-back must not give away what is now the second's.
	if err := first.Release(ctx); !errors.Is(err, connector.ErrLeaseLost) {
		t.Fatalf("first process's Release = %v, want ErrLeaseLost", err)
	}
	if got := ownerOf(t, second, conv); got != "a" {
		t.Fatalf("after the first's Release the conversation is owned by %q, want a", got)
	}
}

// Three instances claiming at once get different conversations, and all of
// them between them, whether the owner died or handed them back.
func TestConcurrentClaimsAreDisjointAndComplete(t *testing.T) {
	for _, how := range []string{"lapsed", "released"} {
		t.Run(how, func(t *testing.T) {
			dsn := freshDSN(t)
			ctx := context.Background()
			dead := member(t, dsn, "dead")
			const n = 60
			var want []int64
			for i := range n {
				want = append(want, inbound(t, dead, customer(i), "SM"+customer(i)).Conversation.ID)
			}
			claimers := []*Store{member(t, dsn, "x"), member(t, dsn, "y"), member(t, dsn, "z")}
			if how == "lapsed" {
				expireLease(t, dsn, "instance", "dead")
			} else if err := dead.Release(ctx); err != nil {
				t.Fatal(err)
			}
			start := make(chan struct{})
			got := make([][]*connector.Conversation, len(claimers))
			errs := make([]error, len(claimers))
			var wg sync.WaitGroup
			for i, s := range claimers {
				wg.Go(func() {
					<-start
					got[i], errs[i] = s.Claim(ctx, 25)
				})
			}
			close(start)
			wg.Wait()
			var all []int64
			for i, s := range claimers {
				if errs[i] != nil {
					t.Fatalf("%s: Claim: %v", s.Instance(), errs[i])
				}
				for _, c := range got[i] {
					if c.Owner != s.Instance() || ownerOf(t, s, c.ID) != s.Instance() {
						t.Errorf("%s claimed %d, which is owned by %q", s.Instance(), c.ID, ownerOf(t, s, c.ID))
					}
				}
				all = append(all, ids(got[i])...)
			}
			slices.Sort(all)
			if d := cmp.Diff(want, all); d != "" {
				t.Fatalf("the claims together (-want +got), each taken once:\n%s", d)
			}
		})
	}
}

// A hand-back tells the other instances at once, and they take everything.
func TestReleaseNotifiesClaimable(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")
	var want []int64
	for i := range 3 {
		want = append(want, inbound(t, a, customer(i), "SM"+customer(i)).Conversation.ID)
	}
	if ok, err := a.Lead(ctx, "customerchannel.hub"); err != nil || !ok {
		t.Fatalf("a.Lead = %v, %v", ok, err)
	}
	la, lb := listen(t, a), listen(t, b)
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb.nextClaimable(t)
	got, err := b.Claim(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, ids(got)); d != "" {
		t.Fatalf("b's claim after a's Release (-want +got):\n%s", d)
	}
	if ok, err := b.Lead(ctx, "customerchannel.hub"); err != nil || !ok {
		t.Errorf("b.Lead of the role a released = %v, %v; want true", ok, err)
	}
	if n, err := a.Owned(ctx); err != nil || n != 0 {
		t.Errorf("a.Owned after Release = %d, %v; want 0", n, err)
	}
	if err := a.Renew(ctx); !errors.Is(err, connector.ErrLeaseLost) {
		t.Errorf("a.Renew after Release = %v, want ErrLeaseLost", err)
	}
	// a does not report its own hand-back: by the time a sees a wake
	// notified after b's Release, it has reported b's and only b's.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	notify(t, dsn, "wake 999999 a b")
	if got := la.nextWake(t); got != 999999 {
		t.Fatalf("a woken for %d, want the marker 999999", got)
	}
	if n := len(la.claims); n != 1 {
		t.Fatalf("a reported %d claimable notices, want 1 (b's Release, not its own)", n)
	}
}

func TestLeadResignAndTakeover(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")
	const role = "customerchannel.hub"
	steps := []struct {
		do   func() (bool, error)
		what string
		want bool
	}{
		{func() (bool, error) { return a.Lead(ctx, role) }, "a takes the free role", true},
		{func() (bool, error) { return b.Lead(ctx, role) }, "b cannot while a holds it", false},
		{func() (bool, error) { return a.Lead(ctx, role) }, "a renews it", true},
		{func() (bool, error) { return false, a.Resign(ctx, role) }, "a resigns", false},
		{func() (bool, error) { return b.Lead(ctx, role) }, "b takes it at once", true},
		{func() (bool, error) { return a.Lead(ctx, role) }, "a cannot while b holds it", false},
		{func() (bool, error) { return false, a.Resign(ctx, role) }, "a's resign of b's role changes nothing", false},
		{func() (bool, error) { return a.Lead(ctx, role) }, "so a still cannot", false},
		{func() (bool, error) { expireLease(t, dsn, "role", role); return a.Lead(ctx, role) }, "b's role lease lapsed: a takes it", true},
		{func() (bool, error) { return b.Lead(ctx, role) }, "b lost it", false},
		{func() (bool, error) { expireLease(t, dsn, "instance", "a"); return a.Lead(ctx, role) }, "a's own lease lapsed: it keeps no role", false},
		{func() (bool, error) { expireLease(t, dsn, "role", role); return b.Lead(ctx, role) }, "b takes it back", true},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		if got != st.want {
			t.Fatalf("%s: held = %v, want %v", st.what, got, st.want)
		}
	}
}

// Listen fails when its connection is killed (without the DSN in its
// error), and returns nil when cancelled (listen's cleanup checks that).
func TestListenFailsWhenItsBackendIsKilled(t *testing.T) {
	dsn := freshDSN(t)
	a := member(t, dsn, "killed-listener")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	a.onListen = func() { close(ready) }
	done := make(chan error, 1)
	go func() { done <- a.Listen(ctx, func(int64) {}, func() {}) }()
	<-ready
	rows := inSchema(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'connectord/killed-listener' AND query LIKE 'LISTEN%'`)
	killed := 0
	for rows.Next() {
		killed++
	}
	rows.Close()
	if killed != 1 {
		t.Fatalf("terminated %d listening backends, want 1", killed)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Listen returned nil after its backend was terminated")
		}
		if strings.Contains(err.Error(), dsn) || strings.Contains(err.Error(), testDB.dsn) {
			t.Errorf("Listen's error shows the DSN: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen still running 10s after its backend was terminated")
	}
	listen(t, a) // and listens again, to be cancelled at the end
}

// The race Claim must close: instance a restarts and joins again while b is
// claiming a's conversations. b's claim holds a's lease row from the moment
// it reads it as expired, so the Join waits for the claim to commit; then a
// reads as its own only what b did not take. Never do both own one.
func TestJoinWaitsForAClaimInProgress(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	a, b := member(t, dsn, "a"), member(t, dsn, "b")
	conv := inbound(t, a, customer(1), "SM1").Conversation.ID
	expireLease(t, dsn, "instance", "a") // a died
	restarted, err := OpenWith(ctx, dsn, Options{Instance: "a", LeaseTTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()

	locked, proceed := make(chan struct{}), make(chan struct{})
	b.claimLocked = func() { close(locked); <-proceed }
	claimed := make(chan []*connector.Conversation, 1)
	go func() {
		cs, err := b.Claim(ctx, 100)
		if err != nil {
			t.Errorf("b.Claim: %v", err)
		}
		claimed <- cs
	}()
	<-locked // b has read a's lease as expired, and is about to take its conversations

	joinErr, joinDone := make(chan error, 1), make(chan struct{})
	go func() { joinErr <- restarted.Join(ctx); close(joinDone) }()
	// Wait until the Join either waits for a lock or got through.
	deadline := time.Now().Add(10 * time.Second)
	for waiting := false; !waiting; {
		select {
		case <-joinDone:
			waiting = true // it did not wait: the check below fails
			continue
		default:
		}
		waiting = count(t, dsn, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'connectord/a' AND wait_event_type = 'Lock'`) > 0
		if time.Now().After(deadline) {
			t.Fatal("the Join neither waited for a lock nor returned within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// If the Join got through, the restarted instance now reads a's
	// conversation as its own (as a daemon does after joining) while b is
	// about to take it as well.
	var mine []*connector.Conversation
	select {
	case <-joinDone:
		if mine, err = restarted.OpenConversations(ctx); err != nil {
			t.Fatal(err)
		}
	default:
	}
	close(proceed)
	cs := <-claimed
	select {
	case err := <-joinErr:
		if err != nil {
			t.Fatalf("restarted Join: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not return within 10s of the claim's commit")
	}
	if len(mine) != 0 && slices.Contains(ids(cs), conv) {
		t.Fatalf("conversation %d is b's (claimed) and the restarted a's (read during the claim): both serve it", conv)
	}
	if !slices.Equal(ids(cs), []int64{conv}) {
		t.Fatalf("b claimed %v, want [%d]", ids(cs), conv)
	}
	after, err := restarted.OpenConversations(ctx)
	if err != nil || len(after) != 0 {
		t.Fatalf("restarted a's conversations after the claim = %v, %v; want none", ids(after), err)
	}
	if err := restarted.Renew(ctx); err != nil {
		t.Fatalf("restarted a's lease after the claim: %v", err)
	}
}
