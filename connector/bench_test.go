package connector_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/postgres"
)

// countingVendor counts what reaches it and signals when a target is met.
type countingVendor struct {
	fakeVendor
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (v *countingVendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	if v.n.Add(1) == v.target.Load() {
		close(v.done)
	}
	return nil
}

// BenchmarkRouterSQLite measures the core end to end with the real store:
// customer messages of 64 concurrent conversations committed (RecordInbound),
// routed by their lanes to a vendor, and marked sent. It reports messages per
// second and how many messages share one committed transaction (one fsync).
//
//	go test -run '^$' -bench 'Router(SQLite|Postgres)' -benchtime 20000x ./connector/
func BenchmarkRouterSQLite(b *testing.B) { benchRouter(b, nil) }

// BenchmarkRouterPostgres is BenchmarkRouterSQLite on the PostgreSQL store,
// in a database of its own on the server CONNECTORD_TEST_PG_DSN names (the
// machine's own by default).
func BenchmarkRouterPostgres(b *testing.B) {
	dsn := benchDatabase(b)
	benchRouter(b, func(ctx context.Context) (connector.Store, error) { return postgres.Open(ctx, dsn) })
}

func benchRouter(b *testing.B, open func(ctx context.Context) (connector.Store, error)) {
	const conversations = 64
	v := &countingVendor{done: make(chan struct{})}
	h := newHarness(b, func(h *harness) {
		h.notices = connector.Notices{} // measure messages, not notices
		v.fakeVendor = fakeVendor{name: "whoson.sales", rec: h.toAgent}
		h.vendor = &v.fakeVendor
		h.open = open
	})
	// The harness registered the embedded fakeVendor; route to the counter instead.
	h.router.AddVendor(v)
	ctx := context.Background()
	// Open every conversation first, so the loop measures steady-state traffic.
	v.target.Store(conversations)
	for i := range conversations {
		h.inbound(customer(i), fmt.Sprintf("warm-%d", i), "hello")
	}
	<-v.done
	before, err := h.store.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	v.n.Store(0)
	v.done = make(chan struct{})
	v.target.Store(int64(b.N))

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conversations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < b.N; j += conversations {
				err := h.router.Receive(ctx, connector.Inbound{Channel: "sms.main",
					Customer: customer(i), Text: "m", SourceID: fmt.Sprintf("SM%d", j)})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-v.done
	elapsed := time.Since(start)
	b.StopTimer()

	after, err := h.store.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Lazy commits (marks of sent messages alone) wait for no fsync: only
	// synced transactions count.
	synced := after.SyncedTransactions - before.SyncedTransactions
	writes := after.Writes - before.Writes
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(synced), "msgs/fsync")
	b.ReportMetric(float64(writes)/float64(synced), "writes/fsync")
	b.ReportMetric(float64(after.SyncedWrites-before.SyncedWrites)/float64(b.N), "synced-writes/msg")
}

func customer(i int) string { return fmt.Sprintf("+1555%07d", i) }

// benchDatabase makes a database for one benchmark and drops it after.
func benchDatabase(b *testing.B) string {
	server := os.Getenv("CONNECTORD_TEST_PG_DSN")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	name := fmt.Sprintf("connectord_bench_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		b.Skipf("PostgreSQL is not reachable (%s): start it or set CONNECTORD_TEST_PG_DSN", connector.RedactText(err.Error()))
	}
	b.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			b.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
