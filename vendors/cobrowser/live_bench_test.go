package cobrowser

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cobrowser/cobrowsertest"
)

// nopSink takes every event and keeps nothing, so that the benchmark's own
// memory does not grow with the chats.
type nopSink struct{}

func (nopSink) Event(context.Context, connector.Event) error { return nil }

// liveFigures is what n live, idle chats cost the process.
type liveFigures struct {
	goroutines int    // runtime.NumGoroutine delta
	live       uint64 // HeapInuse+StackInuse freed when the vendor stopped
	stack      uint64 // the StackInuse part of live
	fake       int64  // HeapInuse+StackInuse still held after the stop: the REST fake's (noisy)
	alloc      uint64 // bytes allocated opening them
	retries    int64  // Opens tried again
}

func memNow() runtime.MemStats {
	for range 5 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func inUse(m runtime.MemStats) uint64 { return m.HeapInuse + m.StackInuse }

// openLive opens n chats over transport against the package's ejabberd (a
// process of its own) and the REST fake (in this process, with no agent
// logged in), a few at a time as the core's workers would, and returns what
// they cost once idle. The REST fake's share is what stays in use after the
// vendor stopped: the chats' share is what the stop freed.
func openLive(tb testing.TB, ej *cobrowsertest.Ejabberd, transport string, n int) liveFigures {
	tb.Helper()
	srv := cobrowsertest.NewServer(tb, cobrowsertest.Config{Ejabberd: ej,
		AgentUser: fmt.Sprintf("agent%d", agentSeq.Add(1)), AgentName: "James"})
	srv.SetAvailable("∞")
	h := &harness{srv: srv, ej: ej}
	keys := h.baseKeys(transport)
	keys["ping_interval"] = `"30s"`
	keys["health_interval"] = `"1h"`
	keys["send_timeout"] = `"10s"`
	keys["connect_timeout"] = `"30s"`
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: nopSink{}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := v.Stop(ctx); err != nil {
			tb.Error(err)
		}
	}
	defer stop()
	time.Sleep(100 * time.Millisecond) // the first campaign probe
	g0, m0 := runtime.NumGoroutine(), memNow()

	next := make(chan int64)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	var retries atomic.Int64
	for range 16 {
		wg.Go(func() {
			for id := range next {
				c := &connector.Conversation{ID: id, Channel: "sms.main", Customer: fmt.Sprintf("+1555%07d", id),
					Vendor: "cobrowser.test", State: connector.StatePending}
				// As the core does, an Open that failed is tried again.
				for try := 0; ; try++ {
					_, err := v.Open(context.Background(), c)
					if err == nil {
						break
					}
					if try == 2 {
						failed.CompareAndSwap(nil, &err)
						break
					}
					retries.Add(1)
					tb.Logf("Open of chat %d tried again: %v", id, err)
				}
			}
		})
	}
	for i := range n {
		next <- int64(i + 1)
	}
	close(next)
	wg.Wait()
	if err := failed.Load(); err != nil {
		tb.Fatalf("Open: %v", *err)
	}
	v.mu.Lock()
	open := len(v.sessions)
	v.mu.Unlock()
	if open != n {
		tb.Fatalf("%d chats open, want %d", open, n)
	}
	time.Sleep(time.Second) // settle: the server's first pings answered
	g1, m1 := runtime.NumGoroutine(), memNow()
	if p := os.Getenv("COBROWSER_BENCH_HEAP"); p != "" {
		writeProfiles(tb, p)
	}
	stop()
	m2 := memNow()
	return liveFigures{goroutines: g1 - g0, live: inUse(m1) - inUse(m2), stack: m1.StackInuse - m2.StackInuse,
		fake: int64(inUse(m2)) - int64(inUse(m0)), alloc: m1.TotalAlloc - m0.TotalAlloc,
		retries: retries.Load()}
}

// BenchmarkLiveChats opens b.N chats (run it with -benchtime 2000x) and
// reports what each costs while idle: goroutines, live bytes (heap and
// stacks in use), of which stack, and bytes allocated to open it; over
// ws://, wss:// (as in production) and TCP with STARTTLS. ejabberd runs in
// a process of its own; the REST fake's share is reported apart (fake-B).
func BenchmarkLiveChats(b *testing.B) {
	for _, tr := range []string{"ws", "wss", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			ej := needPeerB(b)
			b.ResetTimer()
			f := openLive(b, ej, tr, b.N)
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(f.goroutines)/n, "goroutines/chat")
			b.ReportMetric(float64(f.live)/n, "live-B/chat")
			b.ReportMetric(float64(f.stack)/n, "stack-B/chat")
			b.ReportMetric(float64(f.fake)/n, "fake-B/chat")
			b.ReportMetric(float64(f.alloc)/n, "alloc-B/chat")
			b.ReportMetric(float64(f.retries), "retries")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func needPeerB(b *testing.B) *cobrowsertest.Ejabberd {
	b.Helper()
	if peer == nil {
		b.Skipf("ejabberd: %v", peerErr)
	}
	return peer
}

// writeProfiles writes the heap profile to path and the goroutines to
// path.goroutines.
func writeProfiles(tb testing.TB, path string) {
	for name, p := range map[string]string{"heap": path, "goroutine": path + ".goroutines"} {
		f, err := os.Create(p)
		if err != nil {
			tb.Fatal(err)
		}
		debug := 0
		if name == "goroutine" {
			debug = 1
		}
		if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
			tb.Fatal(err)
		}
		f.Close()
	}
}
