package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options are the flags of `connectord bench` (see the package doc).
type Options struct {
	Binary        string
	Rates         []float64
	Duration      time.Duration
	Customers     int
	Conversations []int
	Runs          int
	PNG           string
	JSON          bool
	Dir           string
	Profile       string // directory for CPU profiles of each load step; "" for none
	Samples       int    // floor samples; 1,000 (not a flag)
}

// ParseFlags parses the arguments after `bench`. With -h it prints the
// flags to stderr and returns flag.ErrHelp.
func ParseFlags(args []string, stderr io.Writer) (Options, error) {
	o := Options{Samples: 1000}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: connectord bench [flags]\n\nA black-box benchmark of connectord against the built-in fakes: floors, open-loop load, footprint, restart.\n\nflags:")
		fs.PrintDefaults()
	}
	rates := fs.String("rates", "250,1000,2000,3000,4000", "offered rates of the open-loop steps, messages/s")
	convs := fs.String("conversations", "5000,20000", "live conversations for the footprint and restart (capped by open files)")
	fs.StringVar(&o.Binary, "binary", "", "connectord binary to run (default: this executable)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each load step")
	fs.IntVar(&o.Customers, "customers", 200, "customers the load comes from")
	fs.IntVar(&o.Runs, "runs", 1, "repeat everything this many times (min / median / max)")
	fs.StringVar(&o.PNG, "png", "bench.png", `PNG plot of latency against rate ("" for none)`)
	fs.BoolVar(&o.JSON, "json", false, "also print the figures as JSON")
	fs.StringVar(&o.Dir, "dir", os.TempDir(), "directory for the state directories (its disk's fsync is measured)")
	fs.StringVar(&o.Profile, "profile", "", "write the daemon's CPU profiles here: each load step's (cpu-RATE-runN.pprof) and each restart's (restart-N-runK.pprof), and the heap with N conversations open (heap-N-runK.pprof), and this process's own, the load generator's and the fakes' (bench-RATE-runN.pprof); turns on http.admin_pprof")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if o.Rates, err = parseList(*rates, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return o, fmt.Errorf("-rates: %w", err)
	}
	if o.Conversations, err = parseList(*convs, strconv.Atoi); err != nil {
		return o, fmt.Errorf("-conversations: %w", err)
	}
	switch {
	case o.Duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.Customers <= 0:
		return o, errors.New("-customers must be positive")
	case o.Runs <= 0:
		return o, errors.New("-runs must be positive")
	}
	return o, nil
}

// parseList parses a comma-separated list of positive numbers; "" is none.
func parseList[T int | float64](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		if v <= 0 {
			return nil, fmt.Errorf("%v is not positive", v)
		}
		out = append(out, v)
	}
	return out, nil
}
