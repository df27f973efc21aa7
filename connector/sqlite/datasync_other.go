//go:build !linux

package sqlite

import "os"

// datasync flushes f to the disk; fsync where fdatasync is not at hand.
func datasync(f *os.File) error { return f.Sync() }
