package wsocktest

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

	"github.com/connectord/connectord/connector"
)

// The live-chat benchmarks run their fake in a child process, so that what
// they measure in their own process is the adapter's alone. The test binary
// starts itself again (StartChild) with an environment variable set, and its
// TestMain then serves the fake instead of running tests (ServeChild).

// StartChild runs this test binary again with env=mode and returns the n
// lines it prints first (ServeChild's); the child ends with the benchmark.
func StartChild(tb testing.TB, env, mode string, n int) []string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	out := bufio.NewReader(stdout)
	lines := make([]string, n)
	for i := range lines {
		line, err := out.ReadString('\n')
		if err != nil {
			tb.Fatalf("fake server: %v", err)
		}
		lines[i] = strings.TrimSpace(line)
	}
	return lines
}

// ServeChild prints lines for StartChild and returns once the parent ends.
func ServeChild(lines ...string) {
	for _, l := range lines {
		fmt.Println(l)
	}
	io.Copy(io.Discard, os.Stdin)
}

// TLSProxy serves an https:// reverse proxy to target, as production's
// wss:// is, and returns its URL, its certificate as a Go-quoted PEM (a TOML
// string), and what closes it.
func TLSProxy(target *url.URL) (string, string, func()) {
	proxy := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw})
	return proxy.URL, strconv.Quote(string(ca)), proxy.Close
}

// CountSink counts the text events it is given and keeps nothing, so that a
// benchmark's own memory does not grow with the chats.
type CountSink struct{ Texts atomic.Int64 }

// Event implements connector.EventSink.
func (s *CountSink) Event(_ context.Context, e connector.Event) error {
	if e.Type == connector.EventText {
		s.Texts.Add(1)
	}
	return nil
}

// Mark is the process's goroutines and memory at one moment.
type Mark struct {
	goroutines int
	mem        runtime.MemStats
}

// Now takes a Mark after collecting the garbage.
func Now() Mark {
	for range 5 {
		runtime.GC()
	}
	m := Mark{goroutines: runtime.NumGoroutine()}
	runtime.ReadMemStats(&m.mem)
	return m
}

// Figures are what was opened between two marks costs.
type Figures struct {
	Goroutines int    // runtime.NumGoroutine delta
	Live       uint64 // HeapInuse+StackInuse delta after a GC
	Stack      uint64 // the StackInuse part of Live
	Alloc      uint64 // bytes allocated meanwhile
}

// Since returns what changed from m to now.
func (m Mark) Since() Figures {
	n := Now()
	return Figures{Goroutines: n.goroutines - m.goroutines,
		Live:  (n.mem.HeapInuse + n.mem.StackInuse) - (m.mem.HeapInuse + m.mem.StackInuse),
		Stack: n.mem.StackInuse - m.mem.StackInuse, Alloc: n.mem.TotalAlloc - m.mem.TotalAlloc}
}

// Report reports f per chat, for chats chats.
func (f Figures) Report(b *testing.B, chats int) {
	n := float64(chats)
	b.ReportMetric(float64(f.Goroutines)/n, "goroutines/chat")
	b.ReportMetric(float64(f.Live)/n, "live-B/chat")
	b.ReportMetric(float64(f.Stack)/n, "stack-B/chat")
	b.ReportMetric(float64(f.Alloc)/n, "alloc-B/chat")
	b.ReportMetric(0, "ns/op")
}

// OpenAll calls open for conversations 1 to n, 16 at a time as the core's
// workers would, and fails tb with the first error.
func OpenAll(tb testing.TB, n int, open func(id int64) error) {
	tb.Helper()
	next := make(chan int64)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 16 {
		wg.Go(func() {
			for id := range next {
				if err := open(id); err != nil {
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
}

// BenchLive runs the live-chat benchmark over ws:// ("plain") and, as in
// production, wss:// ("tls"): open starts the fake in that mode, opens b.N
// chats against it (with the timer running only while it opens them) and
// returns their figures and the vendor's Stop, which BenchLive calls after
// reporting.
func BenchLive(b *testing.B, open func(b *testing.B, mode string) (Figures, func(context.Context) error)) {
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) {
			f, stop := open(b, mode)
			f.Report(b, b.N)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := stop(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
