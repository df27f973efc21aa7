package sqlite

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// walSync makes a batch's commit durable by syncing the WAL's data itself.
//
// The writer's connection commits with synchronous=NORMAL: SQLite writes the
// commit's frames to the WAL (the OS page cache, which outlives a killed
// process) and returns without syncing. After a batch that must reach the
// disk the writer calls sync, which fdatasyncs the WAL: the frames, and the
// file's size when it grew, are then on the disk, and that is all a commit
// is in WAL mode (the database file changes only at checkpoints, which sync
// both files themselves, and SQLite syncs a new WAL header before the
// frames that follow it also under NORMAL). This is synchronous=FULL in
// effect, with a data sync where this build of SQLite, compiled without
// HAVE_FDATASYNC, calls fsync: fsync also writes the file's times, which on
// ext4 costs a journal commit of its own, about four times the data sync on
// the disks measured (see BENCHMARKS.md).
type walSync struct {
	path string // the WAL: the database file's path and "-wal"

	syncs atomic.Uint64 // WAL syncs that succeeded

	mu sync.Mutex
	f  *os.File // the WAL, kept open: see open
}

// sync flushes the WAL's data to the disk.
func (w *walSync) sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.open(); err != nil {
		return err
	}
	if err := datasync(w.f); err != nil {
		return fmt.Errorf("sync the WAL: %w", withoutPath(err))
	}
	w.syncs.Add(1)
	return nil
}

// open keeps a descriptor of the WAL file, opened again only when the file
// was replaced (SQLite removes it when its last connection closes). It is
// never closed while SQLite may hold a lock on the same file: closing any
// descriptor of a file drops every POSIX lock the process holds on it.
func (w *walSync) open() error {
	now, err := os.Stat(w.path)
	if err != nil {
		return fmt.Errorf("sync the WAL: %w", withoutPath(err))
	}
	if w.f != nil {
		if held, err := w.f.Stat(); err == nil && os.SameFile(held, now) {
			return nil
		}
		w.f.Close() // a WAL that no longer exists: nobody locks it
		w.f = nil
	}
	f, err := os.Open(w.path)
	if err != nil {
		return fmt.Errorf("sync the WAL: %w", withoutPath(err))
	}
	w.f = f
	return nil
}

// close releases the descriptor; only once SQLite's connections are closed.
func (w *walSync) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
