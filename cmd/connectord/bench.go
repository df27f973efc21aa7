package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/connectord/connectord/internal/bench"
)

// cmdBench is `connectord bench`: the flags and the work are in
// internal/bench; this only finds the binary to run, by default this one.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := bench.ParseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "connectord bench:", err)
		}
		return usageError{err}
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this executable: %w", err)
		}
	}
	return bench.Run(ctx, opts, stdout, stderr)
}
