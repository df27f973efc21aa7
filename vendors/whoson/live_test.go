package whoson

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/wsock/wsocktest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// adapterGoroutines counts the goroutines running this package's code,
// other than tests' (the fake's own, in whosontest, are not counted).
func adapterGoroutines() int {
	return wsocktest.Goroutines(func(g string) bool {
		return strings.Contains(g, "/vendors/whoson.") && !strings.Contains(g, "testing.tRunner")
	})
}

// Live chats cost the adapter at most 2 goroutines each (the floor is one
// reader per socket, which also relays the chat's events), and every one of
// them ends on Stop. Not parallel: it counts the package's goroutines.
func TestLiveChatGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const chats = 200
	srv, err := whosontest.New(whosontest.Config{APIKey: testServerKey,
		Operator: whosontest.Operator{Name: "Alice", Greeting: "Hello"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	keys := baseKeys(srv.URL())
	keys["ping_interval"] = `"1s"` // -race, 200 sockets and the fake on 2 cores: 250ms is tight
	sk := &wsocktest.CountSink{}
	core, logs := observer.New(zapcore.WarnLevel)
	defer func() {
		if t.Failed() {
			for _, e := range logs.All() {
				t.Logf("%s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	}()
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.New(core), Sink: sk})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := adapterGoroutines()

	// A few at a time, as the core's workers open them.
	next := make(chan int64)
	errs := make(chan error, chats)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range next {
				c := &connector.Conversation{ID: id, Channel: "sms.main", Customer: "+15557654321", Vendor: "whoson.test"}
				if _, err := v.Open(ctx(t), c); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range chats {
		next <- int64(i + 1)
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Open: %v", err)
	}
	waitIdle(t, v, sk, chats)
	// Over a ping interval: pings come and go on their own goroutines, a
	// few at a time.
	deadline := time.Now().Add(1500 * time.Millisecond)
	most := 0
	for time.Now().Before(deadline) {
		most = max(most, adapterGoroutines()-before)
		time.Sleep(50 * time.Millisecond)
	}
	if most > 2*chats {
		t.Errorf("%d live chats ran up to %d adapter goroutines, want at most %d", chats, most, 2*chats)
	}
	t.Logf("%d live chats: at most %d adapter goroutines (%.2f a chat)", chats, most, float64(most)/chats)

	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Stop(stop); err != nil {
		t.Fatal(err)
	}
	// Stop has waited for them; the last may still be returning.
	waitFor(t, "no adapter goroutine", func() bool { return adapterGoroutines() == 0 })
	if warns := logs.FilterMessage("connection lost; reconnecting").Len(); warns > 0 {
		t.Errorf("%d chats reconnecting at Stop", warns)
	}
}
