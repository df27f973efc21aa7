package sqlite

import (
	"os"
	"syscall"
)

// datasync flushes f's data, and its size, to the disk, not its times.
func datasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}
