package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file. Each turn also makes the lazy commits before it durable
// (a checkpoint syncs the WAL first).
const checkpointEvery = 500 * time.Millisecond

// checkpointer moves WAL checkpoints off the writer. With SQLite's default
// the connection whose commit takes the WAL past 1,000 pages runs the
// checkpoint inside that commit: it copies up to 4 MB and syncs the
// database file while every webhook waiting in the batch behind it waits
// too. The writer's connection has wal_autocheckpoint off, and this
// goroutine runs a PASSIVE checkpoint on a connection of its own: it copies
// what no reader still needs and never blocks the writer or a reader.
type checkpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done sync.WaitGroup
}

func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("connector/sqlite: open the checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connector/sqlite: open the checkpointer: %w", withoutPath(err))
	}
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c := &checkpointer{db: db, stop: stop}
	c.done.Add(1)
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer c.done.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// An error (a busy lock, a full disk) leaves the WAL to the next
			// turn; the writer's own probe reports a disk that fails.
			_, _, _ = c.checkpoint(ctx)
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and reports the WAL's frames and
// how many of them are now in the database file.
func (c *checkpointer) checkpoint(ctx context.Context) (walFrames, copied int, err error) {
	var busy int
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walFrames, &copied)
	return walFrames, copied, err
}

// close stops the loop and closes its connection.
func (c *checkpointer) close() error {
	c.stop()
	c.done.Wait()
	return c.db.Close()
}
