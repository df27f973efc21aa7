//go:build !linux

package bench

import "os"

// datasync flushes f to the disk; fsync where fdatasync is missing.
func datasync(f *os.File) error {
	return f.Sync()
}
