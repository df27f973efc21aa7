package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// daemon is one connectord child process.
type daemon struct {
	cmd   *exec.Cmd
	pid   string
	done  chan struct{} // closed when the process has exited
	log   *tail
	admin string // http.admin_listen, host:port
}

// startDaemon runs binary "run -config cfg" with env added to ours.
func startDaemon(binary, cfg, admin string, env []string) (*daemon, error) {
	d := &daemon{log: &tail{max: 32 << 10}, done: make(chan struct{}), admin: admin}
	d.cmd = exec.Command(binary, "run", "-config", cfg)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	dieWithParent(d.cmd)
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	d.pid = strconv.Itoa(d.cmd.Process.Pid)
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// waitReady polls the admin /readyz until it answers 200, and returns how
// long that took from since.
func (d *daemon) waitReady(ctx context.Context, client *http.Client, since time.Time, within time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	url := "http://" + d.admin + "/readyz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(since), nil
			}
		}
		select {
		case <-d.done:
			return 0, fmt.Errorf("connectord exited before it was ready:\n%s", d.log)
		case <-ctx.Done():
			return 0, fmt.Errorf("connectord not ready after %s: %w\n%s", within, ctx.Err(), d.log)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// metrics scrapes the admin /metrics.
func (d *daemon) metrics(ctx context.Context, client *http.Client) (metrics, error) {
	return scrape(ctx, client, "http://"+d.admin+"/metrics")
}

// kill sends SIGKILL and waits for the exit.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// stop asks the daemon to drain (SIGTERM) and kills it if it has not
// exited within grace.
func (d *daemon) stop(grace time.Duration) {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.kill()
		return
	}
	select {
	case <-d.done:
	case <-time.After(grace):
		d.kill()
	}
}

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// tail keeps the last max bytes written to it: the end of a daemon's log,
// shown when it fails.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
