package bench

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const cannedMetrics = `# HELP connectord_store_transactions_total Write transactions committed (one fsync each).
# TYPE connectord_store_transactions_total counter
connectord_store_transactions_total 1234
connectord_store_writes_total 5678
connectord_outbox_depth 0
connectord_conversations{state="active"} 3
connectord_conversations{state="queued"} 2
connectord_messages_in_total{channel="sms.main",note="a } in {quotes}"} 7 1700000000000
go_goroutines 42
process_resident_memory_bytes 2.5e+07
weird_line_without_value
connectord_webhook_duration_seconds_bucket{le="+Inf"} 9
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(cannedMetrics))
	if err != nil {
		t.Fatal(err)
	}
	want := metrics{
		"connectord_store_transactions_total":        1234,
		"connectord_store_writes_total":              5678,
		"connectord_outbox_depth":                    0,
		"connectord_conversations":                   5,
		"connectord_messages_in_total":               7,
		"go_goroutines":                              42,
		"process_resident_memory_bytes":              2.5e7,
		"connectord_webhook_duration_seconds_bucket": 9,
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if v := m.get("connectord_store_synced_writes_total"); !math.IsNaN(v) {
		t.Errorf("a counter the daemon lacks = %v, want NaN", v)
	}
}

// A daemon without the synced counters gives "-" for synced writes, not 0
// or a failure.
func TestDeltasWithoutSyncedCounters(t *testing.T) {
	before := sample{at: time.Unix(0, 0), m: metrics{"connectord_store_transactions_total": 10, "connectord_store_writes_total": 20},
		daemonCPU: time.Second, selfCPU: time.Second, machine: 10 * time.Second}
	after := sample{at: time.Unix(2, 0), m: metrics{"connectord_store_transactions_total": 110, "connectord_store_writes_total": 320},
		daemonCPU: 2 * time.Second, selfCPU: 1500 * time.Millisecond, machine: 13 * time.Second}
	var r stepResult
	r.deltas(before, after, 500)
	if r.WritesPerCommit != 3 || !math.IsNaN(r.SyncedWritesPerMsg) || r.CPUPerMsg != 2 || r.DaemonCores != 0.5 || r.BenchCores != 0.25 || r.OtherCores != 0.75 {
		t.Errorf("deltas = %+v, want 3 writes per commit, NaN synced, 2 ms per message, 0.5, 0.25 and 0.75 cores", r)
	}
	before.m["connectord_store_synced_writes_total"] = 5
	after.m["connectord_store_synced_writes_total"] = 255
	r.deltas(before, after, 500)
	if r.SyncedWritesPerMsg != 0.5 {
		t.Errorf("synced writes per message = %v, want 0.5", r.SyncedWritesPerMsg)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks; the command
	// name holds a space and a parenthesis.
	stat := "1234 (conn ectord)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
	got, err := parseStatCPU(stat)
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("parseStatCPU(garbage): no error")
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS("Name:\tconnectord\nVmPeak:\t  9999 kB\nVmRSS:\t   2048 kB\nThreads:\t5\n")
	if err != nil || got != 2048<<10 {
		t.Errorf("parseVmRSS = %v, %v; want %v", got, err, 2048<<10)
	}
	if _, err := parseVmRSS("Name:\tx\n"); err == nil {
		t.Error("no VmRSS: no error")
	}
}

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseProcStat("cpu  100 5 50 1000 40 3 2 0 7 0\ncpu0 50 2 25 500 20 1 1 0 0 0\n")
	if err != nil || got != 160*time.Second/clockTick {
		t.Errorf("parseProcStat = %v, %v; want %v", got, err, 160*time.Second/clockTick)
	}
}
