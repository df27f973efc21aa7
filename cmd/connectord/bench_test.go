package main

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A short `connectord bench` against the binary the end-to-end tests
// built: it runs the daemon, prints every part of the table and writes a
// PNG that decodes.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon several times")
	}
	dir := t.TempDir()
	plot := filepath.Join(dir, "bench.png")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "bench", "-rates", "50", "-duration", "2s", "-conversations", "200",
		"-runs", "1", "-png", plot, "-dir", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("connectord bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	table := stdout.String()
	for _, row := range []string{
		"floor fsync p50", "floor loopback HTTP p99",
		"load 50/s achieved", "load 50/s ack p99", "load 50/s errors", "load 50/s customer->agent p99",
		"load 50/s agent->customer p99", "load 50/s writes per commit", "load 50/s daemon CPU per relayed msg",
		"knee (ack p99 < 50 ms, no errors)",
		"footprint 200 conv RSS per conversation", "footprint 200 conv goroutines per conversation",
		"footprint 200 conv open fds", "restart 200 conv /readyz 200", "restart 200 conv all chats resumed",
		"conversations capped at",
	} {
		if !strings.Contains(table, row) {
			t.Errorf("the table has no row %q:\n%s", row, table)
		}
	}
	if f := strings.Fields(rowOf(table, "load 50/s errors")); len(f) < 3 || strings.Join(f[len(f)-3:], " ") != "0 0 0" {
		t.Errorf("errors at 50/s: %q", f)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("the plot does not decode: %v", err)
	}
}

func rowOf(table, name string) string {
	for line := range strings.Lines(table) {
		if strings.HasPrefix(strings.TrimSpace(line), name) {
			return line
		}
	}
	return ""
}
