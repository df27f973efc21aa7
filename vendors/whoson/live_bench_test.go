package whoson

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock/wsocktest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// fakeEnv, when set in a test binary's environment, makes it serve a
// whosontest fake instead of running tests (serveFake): the benchmark runs
// the fake in a child process so that the figures it reports are the
// adapter's alone.
const fakeEnv = "WHOSON_BENCH_FAKE"

// serveFake runs a fake server with a greeting operator, prints its URL on
// stdout, and closes it once stdin ends. With fakeEnv "tls" the URL is a
// wss:// reverse proxy to it, and a second line holds the proxy's
// certificate (PEM, Go-quoted).
func serveFake() int {
	srv, err := whosontest.New(whosontest.Config{APIKey: testServerKey,
		Operator: whosontest.Operator{Name: "Alice", Greeting: "Hello"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Close()
	if os.Getenv(fakeEnv) != "tls" {
		wsocktest.ServeChild(srv.URL(), `""`)
		return 0
	}
	target, err := url.Parse(strings.Replace(srv.URL(), "ws://", "http://", 1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	proxy, ca, stop := wsocktest.TLSProxy(target)
	defer stop()
	wsocktest.ServeChild(strings.Replace(proxy, "https://", "wss://", 1), ca)
	return 0
}

// startFake starts the fake in a child process (mode: "plain" or "tls", see
// serveFake) and returns the block keys that reach it; the child ends when
// the benchmark does.
func startFake(b *testing.B, mode string) map[string]string {
	b.Helper()
	lines := wsocktest.StartChild(b, fakeEnv, mode, 2)
	keys := baseKeys(lines[0])
	if mode == "tls" {
		keys["ca"] = lines[1]
	}
	return keys
}

// openLive builds a started vendor from keys, opens n chats through it
// (a few at a time, as the core's workers would), waits until each has its
// operator's greeting and is idle, and returns what they cost, with a
// function that stops the vendor.
func openLive(tb testing.TB, keys map[string]string, n int) (wsocktest.Figures, func(context.Context) error) {
	tb.Helper()
	keys["ping_interval"] = `"30s"`
	sk := &wsocktest.CountSink{}
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sk})
	if err != nil {
		tb.Fatal(err)
	}
	v.probeEvery = time.Hour
	if err := v.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	waitIdle(tb, v, sk, 0)
	mark := wsocktest.Now()

	wsocktest.OpenAll(tb, n, func(id int64) error {
		c := &connector.Conversation{ID: id, Channel: "sms.main", Customer: "+15557654321", Vendor: "whoson.test"}
		_, err := v.Open(context.Background(), c)
		return err
	})
	waitIdle(tb, v, sk, n)

	f := mark.Since()
	if p := os.Getenv("WHOSON_BENCH_HEAP"); p != "" {
		writeHeap(tb, p)
	}
	return f, v.Stop
}

// waitIdle waits until n chats are open and each has had its greeting.
func waitIdle(tb testing.TB, v *Vendor, sk *wsocktest.CountSink, n int) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v.mu.Lock()
		open := len(v.sessions)
		v.mu.Unlock()
		if open == n && sk.Texts.Load() == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d chats open, %d greeted; want %d", open, sk.Texts.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkLiveChats opens b.N chats (run it with -benchtime 5000x) against
// a fake in another process and reports what each costs while idle:
// goroutines, live bytes (heap and stacks in use) and bytes allocated; over
// ws:// and, as in production, wss://.
func BenchmarkLiveChats(b *testing.B) {
	wsocktest.BenchLive(b, func(b *testing.B, mode string) (wsocktest.Figures, func(context.Context) error) {
		keys := startFake(b, mode)
		b.ResetTimer()
		f, stop := openLive(b, keys, b.N)
		b.StopTimer()
		return f, stop
	})
}

func writeHeap(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
	g, err := os.Create(path + ".goroutines")
	if err != nil {
		tb.Fatal(err)
	}
	defer g.Close()
	pprof.Lookup("goroutine").WriteTo(g, 1)
}
