package sio

import (
	"fmt"
	"os"
	"testing"
	"time"

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
			// Under parallel load (CI runs packages side by side) about one
			// run in three leaves one zishang520 task-queue goroutine parked
			// for good. The in-process zishang520 test server creates such
			// queues too, and the two are not told apart yet; the client's own
			// count is measured against a server in a child process by
			// TestEIO4GoroutinesBounded (0 per cycle over 200 cycles). See
			// README.md, "Known leaks".
			goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
		)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
