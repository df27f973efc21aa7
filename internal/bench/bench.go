package bench

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// Run runs the benchmark o.Runs times and prints the table (and with
// o.JSON the figures as JSON) to stdout, progress to stderr, and writes
// the plot to o.PNG. o.Binary must be set.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	hard, err := raiseNoFile()
	if err != nil {
		return err
	}
	capN, why := fdCap(hard)
	convs := capConversations(o.Conversations, capN)
	progress := func(s string) { fmt.Fprintf(stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), s) }
	fmt.Fprintf(stdout, "load average at start: %s (%d CPUs)\n", loadAverage(), runtime.NumCPU())
	var runs []runResult
	for k := range o.Runs {
		progress(fmt.Sprintf("run %d of %d", k+1, o.Runs))
		r, err := runOnce(ctx, o, k+1, convs, progress)
		if err != nil {
			return fmt.Errorf("run %d: %w", k+1, err)
		}
		runs = append(runs, r)
	}
	rows := summarise(runs)
	fmt.Fprintf(stdout, "load average at end: %s\n", loadAverage())
	if len(convs) > 0 {
		fmt.Fprintln(stdout, why)
	}
	if err := writeTable(stdout, rows, len(runs)); err != nil {
		return err
	}
	if o.JSON {
		if err := writeJSON(stdout, capN, why, rows, runs); err != nil {
			return err
		}
	}
	if o.PNG != "" {
		if err := writePlot(o.PNG, runs); err != nil {
			return err
		}
	}
	return nil
}

// runOnce measures the floors, the load steps and the footprints once.
func runOnce(ctx context.Context, o Options, k int, convs []int, progress func(string)) (runResult, error) {
	var r runResult
	progress("floors")
	var err error
	if r.Floors, err = measureFloors(ctx, o.Dir, o.Samples); err != nil {
		return r, err
	}
	if len(o.Rates) > 0 {
		if r.Steps, err = runLoad(ctx, o, k, r.Floors, progress); err != nil {
			return r, err
		}
		r.Knee = knee(r.Steps)
	}
	for _, n := range convs {
		var profiles footprintProfiles
		if o.Profile != "" {
			profiles.restart = filepath.Join(o.Profile, fmt.Sprintf("restart-%d-run%d.pprof", n, k))
			profiles.heap = filepath.Join(o.Profile, fmt.Sprintf("heap-%d-run%d.pprof", n, k))
		}
		f, err := measureFootprint(ctx, o.Dir, o.Binary, n, profiles, progress)
		if err != nil {
			return r, fmt.Errorf("footprint of %d conversations: %w", n, err)
		}
		r.Footprints = append(r.Footprints, f)
	}
	return r, nil
}

// runLoad runs every load step on one daemon, after opening the load
// customers' conversations; run numbers the profiles.
func runLoad(ctx context.Context, o Options, run int, fl floors, progress func(string)) ([]stepResult, error) {
	w, err := newWorld(o.Dir, o.Binary, o.Profile != "")
	if err != nil {
		return nil, err
	}
	defer w.close()
	if _, err := w.start(ctx); err != nil {
		return nil, err
	}
	client := webhookClient()
	defer client.CloseIdleConnections()
	progress(fmt.Sprintf("opening %d customers' conversations", o.Customers))
	if err := warmUp(ctx, w, client, o.Customers); err != nil {
		return nil, err
	}
	var steps []stepResult
	for i, rate := range o.Rates {
		progress(fmt.Sprintf("load %g/s for %s", rate, o.Duration))
		var prof *profile
		var stopSelf func() error
		if o.Profile != "" {
			prof = w.profileCPU(ctx, filepath.Join(o.Profile, fmt.Sprintf("cpu-%g-run%d.pprof", rate, run)), o.Duration)
			if stopSelf, err = profileSelf(filepath.Join(o.Profile, fmt.Sprintf("bench-%g-run%d.pprof", rate, run))); err != nil {
				return nil, err
			}
		}
		s, err := runStep(ctx, w, client, fl, i, rate, o.Duration, o.Customers)
		if stopSelf != nil {
			err = errors.Join(err, stopSelf())
		}
		if err == nil && prof != nil {
			err = prof.wait()
		}
		if err != nil {
			return nil, fmt.Errorf("load %g/s: %w", rate, err)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// raiseNoFile raises this process's soft limit of open files to the hard
// one (the daemon, a child, inherits it) and returns the hard limit.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raising the open files limit: %w", err)
		}
	}
	return lim.Max, nil
}

// capConversations caps each size at capN, dropping repeats.
func capConversations(ns []int, capN int) []int {
	var out []int
	for _, n := range ns {
		n = min(n, capN)
		if n > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// writePlot draws the median of every run's load steps.
func writePlot(path string, runs []runResult) error {
	d := plotData{}
	if len(runs) == 0 || len(runs[0].Steps) == 0 {
		return nil
	}
	med := func(get func(r runResult, i int) float64, i int) float64 {
		var vs []float64
		for _, r := range runs {
			if i < len(r.Steps) {
				vs = append(vs, get(r, i))
			}
		}
		return spreadOf(vs).Median
	}
	ack50 := series{Name: "ack p50", Color: color.RGBA{31, 119, 180, 255}}
	ack99 := series{Name: "ack p99", Color: color.RGBA{214, 39, 40, 255}}
	e2e99 := series{Name: "customer->agent p99", Color: color.RGBA{44, 160, 44, 255}}
	for i, s := range runs[0].Steps {
		d.Rates = append(d.Rates, s.Rate)
		ack50.Ms = append(ack50.Ms, med(func(r runResult, i int) float64 { return ms(r.Steps[i].AckP50) }, i))
		ack99.Ms = append(ack99.Ms, med(func(r runResult, i int) float64 { return ms(r.Steps[i].AckP99) }, i))
		e2e99.Ms = append(e2e99.Ms, med(func(r runResult, i int) float64 { return ms(r.Steps[i].InP99) }, i))
	}
	d.Series = []series{ack50, ack99, e2e99}
	var floorsMs []float64
	for _, r := range runs {
		floorsMs = append(floorsMs, ms(r.Floors.FsyncP50+r.Floors.LoopP50))
	}
	d.FloorMs = spreadOf(floorsMs).Median
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := encodePlot(f, d); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
