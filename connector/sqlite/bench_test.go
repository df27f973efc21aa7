package sqlite_test

import (
	"testing"

	"github.com/connectord/connectord/connector/internal/sqlstore/sqlstoretest"
)

// BenchmarkRecordInboundSerial is the baseline: one writer, so one
// transaction (and fsync) per message.
func BenchmarkRecordInboundSerial(b *testing.B) {
	sqlstoretest.BenchRecordInboundSerial(b, open(b, dbPath(b)))
}

// BenchmarkRecordInbound: 64 concurrent writers, each message durable
// (synchronous=FULL) on return.
func BenchmarkRecordInbound(b *testing.B) {
	sqlstoretest.BenchRecordInbound(b, open(b, dbPath(b)))
}

// BenchmarkRelaySerial: a message recorded, then marked sent, one at a
// time: one fsync per message (the mark is lazy).
func BenchmarkRelaySerial(b *testing.B) {
	sqlstoretest.BenchRelaySerial(b, open(b, dbPath(b)))
}

// BenchmarkOptedOut: the opt-out check every relayed SMS makes.
func BenchmarkOptedOut(b *testing.B) {
	sqlstoretest.BenchOptedOut(b, open(b, dbPath(b)))
}
