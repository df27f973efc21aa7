package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"time"
)

// profileSelf starts the CPU profile of this process (the load generator
// and the fakes, which share the machine with the daemon); the function it
// returns stops it and writes it to path.
func profileSelf(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("profiling the bench process: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// profile is a CPU profile of the daemon being taken in the background.
type profile struct {
	done chan error
}

// profileCPU starts taking the daemon's CPU profile for most of a load step
// of length d (from half a second in to half a second before its end, so
// that the profile sees the steady load) and writes it to path.
func (w *world) profileCPU(ctx context.Context, path string, d time.Duration) *profile {
	p := &profile{done: make(chan error, 1)}
	secs := max(1, int((d-time.Second)/time.Second))
	go func() {
		select {
		case <-ctx.Done():
			p.done <- ctx.Err()
		case <-time.After(500 * time.Millisecond):
			p.done <- w.fetchProfile(ctx, path, secs)
		}
	}()
	return p
}

// profileStart takes the CPU profile of a daemon that is starting: from the
// moment its admin listener answers, for secs seconds.
func (w *world) profileStart(ctx context.Context, path string, secs int) *profile {
	p := &profile{done: make(chan error, 1)}
	go func() {
		for {
			if _, err := w.client.Get("http://" + w.admin + "/livez"); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				p.done <- ctx.Err()
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		p.done <- w.fetchProfile(ctx, path, secs)
	}()
	return p
}

func (w *world) fetchProfile(ctx context.Context, path string, secs int) error {
	endpoint := fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)
	if err := w.fetch(ctx, path, endpoint, time.Duration(secs)*time.Second+30*time.Second); err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	return nil
}

// fetch writes what the admin listener answers at endpoint to path.
func (w *world) fetch(ctx context.Context, path, endpoint string, timeout time.Duration) error {
	url := "http://" + w.admin + endpoint
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wait returns once the profile is written.
func (p *profile) wait() error { return <-p.done }
