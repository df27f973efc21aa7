package cention

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

// fakeEnv, when set in a test binary's environment, makes it serve a
// centiontest fake instead of running tests (serveFake): the benchmark runs
// the fake in a child process so that the figures it reports are the
// adapter's alone.
const fakeEnv = "CENTION_BENCH_FAKE"

// serveFake runs a fake whose agent joins every chat and greets, prints its
// base_url on stdout, and closes it once stdin ends. With fakeEnv "tls" the
// base_url is an https:// reverse proxy to it, and a second line holds the
// proxy's certificate (PEM, Go-quoted).
func serveFake() int {
	srv, err := centiontest.Start(centiontest.Config{Agent: &centiontest.Agent{Name: "Alice", Greeting: "Hello"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Close()
	if os.Getenv(fakeEnv) != "tls" {
		fmt.Println(srv.URL())
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	base, err := url.Parse(srv.URL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	path := base.Path
	base.Path = ""
	proxy := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(base))
	defer proxy.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw})
	fmt.Println(proxy.URL + path)
	fmt.Println(strconv.Quote(string(ca)))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startFake starts the fake in a child process (mode: "plain" or "tls", see
// serveFake) and returns the block keys that reach it; the child ends when
// the benchmark does.
func startFake(b *testing.B, mode string) map[string]string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fakeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("fake server: %v", err)
	}
	keys := baseKeys(strings.TrimSpace(line))
	if mode == "tls" {
		if keys["ca"], err = out.ReadString('\n'); err != nil {
			b.Fatalf("fake server: %v", err)
		}
	}
	return keys
}

// countSink counts agent text events and keeps nothing, so that the
// benchmark's own memory does not grow with the chats.
type countSink struct{ texts atomic.Int64 }

func (s *countSink) Event(_ context.Context, e connector.Event) error {
	if e.Type == connector.EventText {
		s.texts.Add(1)
	}
	return nil
}

// liveFigures is what N live, idle chats cost the process.
type liveFigures struct {
	goroutines int    // runtime.NumGoroutine delta
	live       uint64 // HeapInuse+StackInuse delta after a GC
	stack      uint64 // the StackInuse part of live
	alloc      uint64 // bytes allocated opening them
}

func memNow() runtime.MemStats {
	for range 5 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// openLive builds a started vendor from keys, opens n chats through it (a
// few at a time, as the core's workers would), waits until each has had its
// agent's greeting and is idle, and returns what they cost, with a function
// that stops the vendor.
func openLive(tb testing.TB, keys map[string]string, n int) (liveFigures, func(context.Context) error) {
	tb.Helper()
	keys["ping_interval"] = `"30s"`
	keys["health_interval"] = `"1h"`
	keys["connect_timeout"] = `"30s"`
	sk := &countSink{}
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sk})
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	waitIdle(tb, v, sk, 0)
	g0, m0 := runtime.NumGoroutine(), memNow()

	next := make(chan int64)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 16 {
		wg.Go(func() {
			for id := range next {
				c := &connector.Conversation{ID: id, Channel: "sms.main", Customer: "+15557654321", Vendor: "cention.test"}
				if _, err := v.Open(context.Background(), c); err != nil {
					failed.CompareAndSwap(nil, &err)
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
	waitIdle(tb, v, sk, n)
	// The HTTP client's idle canchat connections are not a chat's.
	v.client.CloseIdleConnections()

	m1 := memNow()
	f := liveFigures{goroutines: runtime.NumGoroutine() - g0,
		live:  (m1.HeapInuse + m1.StackInuse) - (m0.HeapInuse + m0.StackInuse),
		stack: m1.StackInuse - m0.StackInuse, alloc: m1.TotalAlloc - m0.TotalAlloc}
	return f, v.Stop
}

// waitIdle waits until n chats are open and each has had its greeting.
func waitIdle(tb testing.TB, v *Vendor, sk *countSink, n int) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v.mu.Lock()
		open := len(v.sessions)
		v.mu.Unlock()
		if open == n && sk.texts.Load() == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d chats open, %d greeted; want %d", open, sk.texts.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkLiveChats opens b.N chats (run it with -benchtime 2000x) against
// a fake in another process and reports what each costs while idle:
// goroutines, live bytes (heap and stacks in use) and bytes allocated; over
// ws:// and, as in production, wss://.
func BenchmarkLiveChats(b *testing.B) {
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) { benchLive(b, mode) })
	}
}

func benchLive(b *testing.B, mode string) {
	keys := startFake(b, mode)
	b.ResetTimer()
	f, stop := openLive(b, keys, b.N)
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(f.goroutines)/n, "goroutines/chat")
	b.ReportMetric(float64(f.live)/n, "live-B/chat")
	b.ReportMetric(float64(f.stack)/n, "stack-B/chat")
	b.ReportMetric(float64(f.alloc)/n, "alloc-B/chat")
	b.ReportMetric(0, "ns/op")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := stop(ctx); err != nil {
		b.Fatal(err)
	}
}
