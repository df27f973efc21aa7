package customerchannel

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The zishang520 engine's init() polls network interfaces for the
		// life of the process: one goroutine, not per connection.
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetInterval.func1"),
		// See sio/README.md, "Known leaks": a task-queue goroutine the
		// library may leave under load; sio measures the client's count.
		goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
	)
}
