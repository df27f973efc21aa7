package sio

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/v3/pkg/utils"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeServerEnv) == "1" {
		runFakeServer() // child process of TestEIO4GoroutinesBounded
	}
	code := m.Run()
	if code == 0 {
		if err := settledLeaks(6 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// settledLeaks is goleak.Find, repeated for up to wait: a closing EIO4
// connection is forced shut forceCloseAfter (500 ms) after teardown when its
// last write does not drain, and on a loaded CI machine that and the
// library's own closing take longer than goleak's built-in retries allow.
func settledLeaks(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := goleak.Find(
			// zishang520 clients/engine/v3 init() starts utils.SetInterval to
			// poll the network interfaces every 3 s, for the life of the
			// process (only its own SIGINT/SIGTERM/SIGQUIT handler stops it,
			// and init() skips that in test binaries). One goroutine, not per
			// connection; see README.md.
			goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetInterval.func1"),
			// The library's timer and task-queue goroutines can park for good
			// (utils.Timer.Stop signals with a non-blocking send; see
			// README.md, "Known leaks"). The in-process test server has them
			// too, so they are ignored here and counted by side below: the
			// client's must be none.
			goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"),
			goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
		)
		if err == nil {
			err = clientLibraryLeaks()
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serverLabel marks the in-process test servers' goroutines: pprof labels are
// inherited by every goroutine a labelled one starts, so the library
// goroutines the test server leaves behind can be told from the client's.
const serverLabel = `{"sio_test_side":"server"}`

// asServer runs f, and every goroutine it starts, labelled as the test
// server's.
func asServer(f func()) {
	pprof.Do(context.Background(), pprof.Labels("sio_test_side", "server"), func(context.Context) { f() })
}

// clientLibraryLeaks reports the library's parked timer and task-queue
// goroutines that the test servers did not start, that is, the client's.
func clientLibraryLeaks() error {
	client, _, err := parkedLibraryGoroutines()
	if err != nil || len(client) == 0 {
		return err
	}
	var full strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&full, 2)
	var created []string
	for _, g := range strings.Split(full.String(), "\n\n") {
		if strings.Contains(g, "/pkg/queue.(*Queue).loop") || strings.Contains(g, "/pkg/utils.SetTimeout.func1") {
			created = append(created, g)
		}
	}
	return fmt.Errorf("the client left library goroutines parked:\n%s\n\nwith their creators:\n%s",
		strings.Join(client, "\n\n"), strings.Join(created, "\n\n"))
}

// parkedLibraryGoroutines returns the goroutine profile records (debug=1) of
// the library's timer and task-queue goroutines, by side.
func parkedLibraryGoroutines() (client, server []string, err error) {
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		return nil, nil, err
	}
	for _, block := range strings.Split(b.String(), "\n\n") {
		top := topFunction(block)
		if !strings.HasSuffix(top, "/pkg/utils.SetTimeout.func1") && !strings.Contains(block, "/pkg/queue.(*Queue).loop") {
			continue
		}
		if strings.Contains(block, "# labels: "+serverLabel) {
			server = append(server, block)
		} else {
			client = append(client, block)
		}
	}
	return client, server, nil
}

// topFunction is the first non-runtime function of a goroutine profile
// record (debug=1): "#\t0xADDR\tpkg.Func+0xOFF\tfile:line" lines, innermost
// first.
func topFunction(block string) string {
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "#"))
		if len(f) < 2 || !strings.HasPrefix(f[0], "0x") {
			continue
		}
		fn, _, _ := strings.Cut(f[1], "+")
		if !strings.HasPrefix(fn, "runtime.") {
			return fn
		}
	}
	return ""
}

// The leak check must see a parked library timer the client started and not
// one the test server started: a real utils.SetTimeout goroutine, parked in
// its select as a stuck one is, is started on each side and then released.
// Counts are relative: other tests' goroutines may still be winding down.
func TestLeakCheckTellsSidesApart(t *testing.T) {
	count := func() (client, server int) {
		c, s, err := parkedLibraryGoroutines()
		if err != nil {
			t.Fatal(err)
		}
		return goroutines(c), goroutines(s)
	}
	waitFor := func(what string, cond func(client, server int) bool) {
		t.Helper()
		for range 200 {
			if cond(count()) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		c, s := count()
		t.Fatalf("%s: parked library goroutines: client %d, server %d", what, c, s)
	}
	settleClientTimers(5 * time.Second)
	c0, s0 := count()
	client := utils.SetTimeout(func() {}, time.Hour)
	waitFor("client timer parked", func(c, s int) bool { return c == c0+1 && s == s0 })
	release(t, client)
	waitFor("client timer released", func(c, s int) bool { return c == c0 })

	var server *utils.Timer
	asServer(func() { server = utils.SetTimeout(func() {}, time.Hour) })
	defer release(t, server)
	waitFor("server timer parked", func(c, s int) bool { return s == s0+1 && c == c0 })
}

// settleClientTimers waits, up to limit, until no library timer or queue
// goroutine of a client is parked: connections of earlier tests wind down
// (their ping timers fire pingInterval+pingTimeout after the handshake), and
// a count that changes under a test's feet fails its relative check. One
// that stays past the limit is left for TestMain's leak check to report.
func settleClientTimers(limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, _, err := parkedLibraryGoroutines(); err == nil && len(c) == 0 {
			return
		}
	}
}

// release stops a library timer and hands its goroutine the stop signal with
// a blocking send: Timer.Stop's own send is dropped when the goroutine has
// not reached its select yet, the very fault the leak check is for.
func release(t *testing.T, timer *utils.Timer) {
	unexportedField[*time.Timer](timer, "timer").Stop()
	select {
	case unexportedField[chan struct{}](timer, "stopCh") <- struct{}{}:
	case <-time.After(2 * time.Second):
		t.Error("the timer's goroutine never took its stop signal")
	}
}

// goroutines sums the counts of goroutine profile records ("N @ ...").
func goroutines(records []string) int {
	n := 0
	for _, r := range records {
		r = strings.TrimPrefix(r, "goroutine profile: ")
		if strings.HasPrefix(r, "total ") { // the profile's first record carries its header line
			_, r, _ = strings.Cut(r, "\n")
		}
		var k int
		if _, err := fmt.Sscanf(r, "%d @", &k); err == nil {
			n += k
		}
	}
	return n
}

// awaitTimersParked is what lets a library timer be stopped at once safely:
// stopped straight after it was started, without the wait, its goroutine has
// usually not run yet and stays parked for good.
func TestAwaitTimersParked(t *testing.T) {
	count := func() int {
		c, _, err := parkedLibraryGoroutines()
		if err != nil {
			t.Fatal(err)
		}
		return goroutines(c)
	}
	settleClientTimers(5 * time.Second)
	before := count()
	for range 50 {
		timer := utils.SetTimeout(func() {}, time.Hour)
		if !awaitTimersParked(time.Second) {
			t.Fatal("the timer's goroutine was never seen parked")
		}
		timer.Stop()
	}
	for deadline := time.Now().Add(2 * time.Second); count() != before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d library timer goroutines left parked after 50 stopped timers", count()-before)
		}
	}
}
