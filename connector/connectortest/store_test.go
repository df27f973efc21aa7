package connectortest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/connector/sqlite"
)

// The suite must be able to fail: each mutant below is the SQLite store with
// one contract clause broken, and the suite must catch it in the named
// subtest. A failing suite fails its test, so each mutant runs in a child
// process (this test binary, re-executed) whose failure is the expected outcome.

const mutantEnv = "CONNECTORTEST_MUTANT"

// mutants maps a broken clause to the subtest that must catch it.
var mutants = map[string]string{
	"no-inbound-dedup":     "InboundDuplicate",
	"ended-reopens":        "InboundEndedNotReused",
	"no-group-commit":      "ConcurrentInboundGroupCommit",
	"plain-not-found":      "ConversationNotFound",
	"ignore-fail-pending":  "ApplyFailPending",
	"outbox-reversed":      "OutboxOrderAndSettling",
	"delivery-unscoped":    "UpdateDeliveryScopedByChannel",
	"attempts-always-one":  "CountAttempt",
	"purge-ignores-cutoff": "PurgeCutoff",
	"purge-ignores-limit":  "PurgeLimitOldestFirst",
	"open-counts-unscoped": "OpenCounts",
	"list-ignores-vendor":  "ListConversationsFilters",
	"stuck-ignores-age":    "ListConversationsStuck",
	"retry-unchecked":      "RetryMessage",
	"optout-failed-writes": "OptOutFailedWriteChangesNothing",
	"optout-stale-reads":   "OptOutSeenOnReturn",
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	runMutants(t, "TestMutant", mutants)
}

// runMutants runs test (a test of this binary that runs a suite against the
// mutant named in the environment) once per mutant in a child process, and
// fails unless the subtest each mutant maps to fails there.
func runMutants(t *testing.T, test string, mutants map[string]string) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("running as a mutant")
	}
	for mutant, subtest := range mutants {
		t.Run(mutant, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$/^"+subtest+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+mutant)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--- FAIL: "+test+"/"+subtest) {
				t.Errorf("mutant %s: subtest %s did not fail (%v):\n%s", mutant, subtest, err, out)
			}
		})
	}
}

// TestMutant runs the suite against the mutant named in the environment; it
// is only run by TestSuiteCatchesBrokenStores.
func TestMutant(t *testing.T) {
	mutant := os.Getenv(mutantEnv)
	if mutant == "" {
		t.Skip("only run as a child of TestSuiteCatchesBrokenStores")
	}
	connectortest.TestStore(t, func(t *testing.T) connector.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return &broken{Store: s, mutant: mutant}
	})
}

// broken is a Store with one clause of the contract broken.
type broken struct {
	*sqlite.Store
	mutant string
	seen   sync.Map // "optout-stale-reads": the first answer OptedOut gave for each key
}

func (b *broken) RecordInbound(ctx context.Context, in connector.Inbound, vendor string) (connector.InboundResult, error) {
	if b.mutant == "no-inbound-dedup" {
		res, err := b.Store.RecordInbound(ctx, in, vendor)
		if err == nil && res.Duplicate {
			in.SourceID += "'"
			return b.Store.RecordInbound(ctx, in, vendor)
		}
		return res, err
	}
	return b.Store.RecordInbound(ctx, in, vendor)
}

func (b *broken) Apply(ctx context.Context, ch connector.Change) (connector.ChangeResult, error) {
	switch {
	case b.mutant == "ended-reopens" && ch.State == connector.StateEnded:
		ch.State = connector.StateActive
	case b.mutant == "ignore-fail-pending":
		ch.FailPending = ""
	}
	return b.Store.Apply(ctx, ch)
}

func (b *broken) Stats(ctx context.Context) (connector.Stats, error) {
	st, err := b.Store.Stats(ctx)
	if b.mutant == "no-group-commit" {
		st.Transactions = st.Writes
	}
	return st, err
}

func (b *broken) Conversation(ctx context.Context, id int64) (*connector.Conversation, error) {
	c, err := b.Store.Conversation(ctx, id)
	if b.mutant == "plain-not-found" && errors.Is(err, connector.ErrNotFound) {
		return nil, errors.New("no such conversation")
	}
	return c, err
}

func (b *broken) Outbox(ctx context.Context) ([]*connector.Message, error) {
	ms, err := b.Store.Outbox(ctx)
	if b.mutant == "outbox-reversed" {
		for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
			ms[i], ms[j] = ms[j], ms[i]
		}
	}
	return ms, err
}

func (b *broken) UpdateDelivery(ctx context.Context, channel, remoteID string, state connector.Delivery, reason string) (bool, error) {
	if b.mutant == "delivery-unscoped" {
		for _, other := range []string{"sms.main", "slack.support"} {
			if found, err := b.Store.UpdateDelivery(ctx, other, remoteID, state, reason); found || err != nil {
				return found, err
			}
		}
		return false, nil
	}
	return b.Store.UpdateDelivery(ctx, channel, remoteID, state, reason)
}

func (b *broken) CountAttempt(ctx context.Context, id int64) (int, error) {
	n, err := b.Store.CountAttempt(ctx, id)
	if b.mutant == "attempts-always-one" && err == nil {
		n = 1
	}
	return n, err
}

func (b *broken) Purge(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	switch b.mutant {
	case "purge-ignores-cutoff":
		cutoff = time.Now().Add(time.Hour)
	case "purge-ignores-limit":
		limit = 1 << 20
	}
	return b.Store.Purge(ctx, cutoff, limit)
}

func (b *broken) OpenCounts(ctx context.Context, channel string) (map[connector.State]int, error) {
	if b.mutant != "open-counts-unscoped" {
		return b.Store.OpenCounts(ctx, channel)
	}
	all := map[connector.State]int{}
	for _, ch := range []string{"sms.main", "slack.support"} {
		m, err := b.Store.OpenCounts(ctx, ch)
		if err != nil {
			return nil, err
		}
		for st, n := range m {
			all[st] += n
		}
	}
	return all, nil
}

func (b *broken) ListConversations(ctx context.Context, q connector.ConversationQuery) ([]*connector.Conversation, error) {
	switch {
	case b.mutant == "list-ignores-vendor":
		q.Vendor = ""
	case b.mutant == "stuck-ignores-age" && q.Stuck != nil:
		q.Stuck = &connector.StuckRule{WaitingBefore: time.Now(), FailedSince: q.Stuck.FailedSince}
	}
	return b.Store.ListConversations(ctx, q)
}

func (b *broken) RetryMessage(ctx context.Context, id int64) (*connector.Message, error) {
	if b.mutant != "retry-unchecked" {
		return b.Store.RetryMessage(ctx, id)
	}
	// Whatever the state: a sent message goes out again.
	if err := b.Store.MarkFailed(ctx, id, "forced"); err != nil {
		return nil, err
	}
	return b.Store.RetryMessage(ctx, id)
}

func (b *broken) SetOptOut(ctx context.Context, channel, sender, customer string, out bool) error {
	if b.mutant == "optout-failed-writes" && ctx.Err() != nil {
		// Written all the same, and reported as failed.
		if err := b.Store.SetOptOut(context.WithoutCancel(ctx), channel, sender, customer, out); err != nil {
			return err
		}
		return ctx.Err()
	}
	return b.Store.SetOptOut(ctx, channel, sender, customer, out)
}

func (b *broken) OptedOut(ctx context.Context, channel, sender, customer string) (bool, error) {
	out, err := b.Store.OptedOut(ctx, channel, sender, customer)
	if b.mutant != "optout-stale-reads" || err != nil {
		return out, err
	}
	// A cache that no write updates: the first answer, forever.
	first, _ := b.seen.LoadOrStore(channel+"\x00"+sender+"\x00"+customer, out)
	return first.(bool), nil
}
