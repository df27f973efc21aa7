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

// settledLeaks is goleak.Find, repeated for up to wait: on a loaded machine
// the test servers' connections take a while to wind down. There is no
// exception: every goroutine the clients and the test servers start must be
// gone.
func settledLeaks(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
