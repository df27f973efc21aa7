package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlstore/sqlstoretest"
)

// BenchmarkRecordInboundSerial is the baseline: one writer, so one
// transaction (and fsync) per message.
func BenchmarkRecordInboundSerial(b *testing.B) {
	sqlstoretest.BenchRecordInboundSerial(b, open(b, freshDSN(b)))
}

// BenchmarkRecordInbound: 64 concurrent writers, each message durable
// (synchronous_commit as the server has it) on return.
func BenchmarkRecordInbound(b *testing.B) {
	sqlstoretest.BenchRecordInbound(b, open(b, freshDSN(b)))
}

// BenchmarkRelaySerial: a message recorded, then marked sent, one at a
// time: one WAL flush waited for per message (the mark is lazy).
func BenchmarkRelaySerial(b *testing.B) {
	sqlstoretest.BenchRelaySerial(b, open(b, freshDSN(b)))
}

// benchMember opens and joins a store as id with a lease long enough not
// to lapse during a benchmark.
func benchMember(b *testing.B, dsn, id string) *Store {
	b.Helper()
	s, err := OpenWith(context.Background(), dsn, Options{Instance: id, LeaseTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Join(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkClaim1000 measures one Claim that takes over 1000 open
// conversations of an instance whose lease lapsed: what a survivor does
// when a loaded instance dies. Between iterations they are given back to
// the dead instance.
func BenchmarkClaim1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	dsn := freshDSN(b)
	dead, claimer := benchMember(b, dsn, "dead"), benchMember(b, dsn, "claimer")
	var wg sync.WaitGroup
	for w := range 8 { // concurrent writers share commits: a quicker setup
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				_, err := dead.RecordInbound(ctx, connector.Inbound{Channel: "sms.main", Customer: fmt.Sprintf("+1555%07d", i),
					SourceID: fmt.Sprint("SM", i), Text: "hello"}, "whoson.sales")
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for b.Loop() {
		b.StopTimer()
		inSchema(b, dsn, `UPDATE $schema.conversations SET owner = 'dead'`).Close()
		inSchema(b, dsn, `UPDATE $schema.leases SET expires_at = now() - interval '1 second' WHERE name = 'dead'`).Close()
		b.StartTimer()
		cs, err := claimer.Claim(ctx, n)
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != n {
			b.Fatalf("claimed %d, want %d", len(cs), n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "convs/s")
}

// BenchmarkRenew measures one lease renewal (one UPDATE in its own
// transaction on the cluster pool).
func BenchmarkRenew(b *testing.B) {
	s := benchMember(b, freshDSN(b), "renewer")
	for b.Loop() {
		if err := s.Renew(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
