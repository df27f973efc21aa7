package xima

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/xima/ximatest"
)

// BenchmarkLiveChats measures what XIMA_BENCH_CHATS (default 1000) idle live
// chats cost with the default timings (still-here 20-25 s, 20 s long polls,
// max_pollers 1000): the adapter's goroutines, the heap of adapter and fake
// together, and the calls per second over XIMA_BENCH_WINDOW (default 30s).
// It runs once whatever b.N is:
//
//	go test -run '^$' -bench LiveChats -benchtime 1x ./vendors/xima
func BenchmarkLiveChats(b *testing.B) {
	n := envInt("XIMA_BENCH_CHATS", 1000)
	window, err := time.ParseDuration(envOr("XIMA_BENCH_WINDOW", "30s"))
	if err != nil {
		b.Fatal(err)
	}
	srv := ximatest.NewServer(b, ximatest.Config{})
	keys := baseKeys(srv)
	for _, k := range []string{"still_here_interval", "still_here_jitter", "poll_wait", "health_interval"} {
		delete(keys, k) // the defaults
	}
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: newSink()})
	if err != nil {
		b.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer v.Stop(context.Background())
	heap0, g0 := heapInUse(), runtime.NumGoroutine()
	start := time.Now()
	for range n {
		if _, err := v.Open(context.Background(), conversation()); err != nil {
			b.Fatal(err)
		}
	}
	opened := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func() bool { return srv.Polling() >= n }); err != nil {
		b.Fatalf("%d of %d chats polled: %v", srv.Polling(), n, err)
	}
	calls0, reqs0 := len(srv.SQSCalls()), len(srv.Requests())
	time.Sleep(window) // idle chats: what is measured is the traffic over time
	calls, reqs := len(srv.SQSCalls())-calls0, len(srv.Requests())-reqs0
	dead := 0
	for _, c := range srv.Chats() {
		if c.Ended != "" {
			dead++
		}
	}
	b.ReportMetric(float64(n), "chats")
	b.ReportMetric(float64(adapterGoroutines())/float64(n), "adapter-goroutines/chat")
	b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(n), "all-goroutines/chat")
	b.ReportMetric(float64(heapInUse()-heap0)/float64(n)/1024, "KiB-heap/chat(adapter+fake)")
	b.ReportMetric(float64(calls)/window.Seconds(), "sqs-calls/s")
	b.ReportMetric(float64(reqs)/window.Seconds(), "rest-calls/s")
	b.ReportMetric(float64(opened.Milliseconds())/float64(n), "ms/open")
	b.ReportMetric(float64(dead), "chats-died")
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// adapterGoroutines counts the goroutines on the adapter's side: its own
// and its HTTP clients' connections (the fake's server side is not counted).
func adapterGoroutines() int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ximatest.") || strings.Contains(g, "net/http.(*conn).serve") {
			continue
		}
		if strings.Contains(g, "vendors/xima.") || strings.Contains(g, "net/http.(*persistConn)") {
			n++
		}
	}
	return n
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
