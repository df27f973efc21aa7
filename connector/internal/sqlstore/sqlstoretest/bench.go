package sqlstoretest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// BenchRecordInboundSerial records messages one at a time on s: one
// transaction (and fsync) per message, the baseline group commit improves on.
func BenchRecordInboundSerial(b *testing.B, s connector.Store) {
	ctx := context.Background()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		_, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main",
			Customer: fmt.Sprintf("+1555%07d", i%1000), SourceID: fmt.Sprint("SM", i), Text: "hello"}, "whoson.sales")
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchRecordInbound measures inbound throughput on s with about 64
// concurrent writers (as many webhooks in flight), each message durable on
// return. writes/tx shows how many writes shared each commit.
func BenchRecordInbound(b *testing.B, s connector.Store) {
	ctx := context.Background()
	before, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // about 64 goroutines
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			_, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main",
				Customer: fmt.Sprintf("+1555%07d", n%1000), SourceID: fmt.Sprint("SM", n), Text: "hello"}, "whoson.sales")
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	elapsed := time.Since(start)
	after, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	writes, txs := after.Writes-before.Writes, after.Transactions-before.Transactions
	b.ReportMetric(float64(seq.Load())/elapsed.Seconds(), "msgs/s")
	if txs > 0 {
		b.ReportMetric(float64(writes)/float64(txs), "writes/tx")
	}
}

// BenchRelaySerial relays messages one at a time on s, as a quiet daemon
// does: each is recorded (RecordInbound, synced) and then marked sent
// (MarkSent, lazy), every write its own transaction. synced/msg shows how
// many of those waited for the disk: one per message, the mark riding
// free.
func BenchRelaySerial(b *testing.B, s connector.Store) {
	ctx := context.Background()
	before, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		in, err := s.RecordInbound(ctx, connector.Inbound{Channel: "sms.main",
			Customer: fmt.Sprintf("+1555%07d", i%64), SourceID: fmt.Sprint("SM", i), Text: "hello"}, "whoson.sales")
		if err != nil {
			b.Fatal(err)
		}
		if err := s.MarkSent(ctx, in.Message.ID, fmt.Sprint("remote-", i)); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	after, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(after.SyncedTransactions-before.SyncedTransactions)/float64(b.N), "synced/msg")
	b.ReportMetric(float64(after.Transactions-before.Transactions)/float64(b.N), "tx/msg")
}

// BenchOptedOut measures OptedOut on s as the SMS channel calls it, once
// per relayed message each way: 1,000 customers opted out, and reads of
// them and of as many who did not, in turn.
func BenchOptedOut(b *testing.B, s connector.Store) {
	ctx := context.Background()
	const opted = 1000
	for i := range opted {
		if err := s.SetOptOut(ctx, "sms.main", "+15550000000", fmt.Sprintf("+1555%07d", 2*i), true); err != nil {
			b.Fatal(err)
		}
	}
	customers := make([]string, 2*opted)
	for i := range customers {
		customers[i] = fmt.Sprintf("+1555%07d", i)
	}
	for i := 0; b.Loop(); i++ {
		out, err := s.OptedOut(ctx, "sms.main", "+15550000000", customers[i%len(customers)])
		if err != nil {
			b.Fatal(err)
		}
		if out != (i%2 == 0) {
			b.Fatalf("OptedOut(%s) = %v", customers[i%len(customers)], out)
		}
	}
}
