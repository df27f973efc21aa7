package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the daemon if the benchmark dies
// (SIGKILL, a crash): no orphaned daemon keeps the ports and the state.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
