package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// floors are the costs no webhook acknowledgement can go below on this
// machine: one durable write on the state disk and one HTTP round trip on
// loopback.
type floors struct {
	FsyncP50, FsyncP99 time.Duration
	LoopP50, LoopP99   time.Duration
}

// measureFloors measures both floors, n samples each; dir is on the disk
// whose fsync the daemon pays.
func measureFloors(ctx context.Context, dir string, n int) (floors, error) {
	var f floors
	fs, err := fsyncTimes(ctx, dir, n)
	if err != nil {
		return f, err
	}
	lb, err := loopbackTimes(ctx, n)
	if err != nil {
		return f, err
	}
	f.FsyncP50, f.FsyncP99 = percentile(fs, 50), percentile(fs, 99)
	f.LoopP50, f.LoopP99 = percentile(lb, 50), percentile(lb, 99)
	return f, nil
}

// fsyncTimes appends 4 KiB to a file in dir and fdatasyncs it, n times, as
// a write-ahead log commits: the file grows, so its size is synced too.
func fsyncTimes(ctx context.Context, dir string, n int) ([]time.Duration, error) {
	path := filepath.Join(dir, "fsync-floor")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fsync floor: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	block := make([]byte, 4096)
	out := make([]time.Duration, 0, n)
	for range n {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		start := time.Now()
		if _, err := f.Write(block); err != nil {
			return nil, fmt.Errorf("fsync floor: %w", err)
		}
		if err := datasync(f); err != nil {
			return nil, fmt.Errorf("fsync floor: %w", err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// loopbackTimes makes n sequential requests over one kept-alive connection
// to a trivial server on 127.0.0.1.
func loopbackTimes(ctx context.Context, n int) ([]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loopback floor: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	out := make([]time.Duration, 0, n)
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("loopback floor: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, time.Since(start))
	}
	return out, nil
}
