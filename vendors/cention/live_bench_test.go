package cention

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock/wsocktest"
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
		wsocktest.ServeChild(srv.URL(), `""`)
		return 0
	}
	base, err := url.Parse(srv.URL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	path := base.Path
	base.Path = ""
	proxy, ca, stop := wsocktest.TLSProxy(base)
	defer stop()
	wsocktest.ServeChild(proxy+path, ca)
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

// openLive builds a started vendor from keys, opens n chats through it (a
// few at a time, as the core's workers would), waits until each has had its
// agent's greeting and is idle, and returns what they cost, with a function
// that stops the vendor.
func openLive(tb testing.TB, keys map[string]string, n int) (wsocktest.Figures, func(context.Context) error) {
	tb.Helper()
	keys["ping_interval"] = `"30s"`
	keys["health_interval"] = `"1h"`
	keys["connect_timeout"] = `"30s"`
	sk := &wsocktest.CountSink{}
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sk})
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	waitIdle(tb, v, sk, 0)
	mark := wsocktest.Now()

	wsocktest.OpenAll(tb, n, func(id int64) error {
		c := &connector.Conversation{ID: id, Channel: "sms.main", Customer: "+15557654321", Vendor: "cention.test"}
		_, err := v.Open(context.Background(), c)
		return err
	})
	waitIdle(tb, v, sk, n)
	// The HTTP client's idle canchat connections are not a chat's.
	v.client.CloseIdleConnections()

	f := mark.Since()
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

// BenchmarkLiveChats opens b.N chats (run it with -benchtime 2000x) against
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
