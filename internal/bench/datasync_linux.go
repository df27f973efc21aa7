package bench

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the size, which a write past the end
// changed) to the disk, as SQLite's WAL commits do.
func datasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}
