package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// figure is one number a run measured.
type figure struct {
	Name, Unit string
	Value      float64
}

// runResult is everything one run measured.
type runResult struct {
	Floors     floors
	Steps      []stepResult
	Knee       float64
	Footprints []footprintResult
}

// figures flattens a run into named figures, in table order.
func (r runResult) figures() []figure {
	var fs []figure
	add := func(name, unit string, v float64) { fs = append(fs, figure{name, unit, v}) }
	add("floor fsync p50", "ms", ms(r.Floors.FsyncP50))
	add("floor fsync p99", "ms", ms(r.Floors.FsyncP99))
	add("floor loopback HTTP p50", "ms", ms(r.Floors.LoopP50))
	add("floor loopback HTTP p99", "ms", ms(r.Floors.LoopP99))
	for _, s := range r.Steps {
		p := fmt.Sprintf("load %g/s ", s.Rate)
		add(p+"achieved", "msg/s", s.Achieved)
		add(p+"ack p50", "ms", ms(s.AckP50))
		add(p+"ack p99", "ms", ms(s.AckP99))
		add(p+"ack max", "ms", ms(s.AckMax))
		add(p+"errors", "count", float64(s.Errors))
		add(p+"customer->agent p50", "ms", ms(s.InP50))
		add(p+"customer->agent p99", "ms", ms(s.InP99))
		add(p+"agent->customer p50", "ms", ms(s.OutP50))
		add(p+"agent->customer p99", "ms", ms(s.OutP99))
		add(p+"not relayed in 30s", "count", float64(s.Missing))
		add(p+"ack p50 / floor", "x", s.Ratio)
		add(p+"writes per commit", "writes", s.WritesPerCommit)
		add(p+"synced writes per relayed msg", "writes", s.SyncedWritesPerMsg)
		add(p+"daemon CPU per relayed msg", "ms", s.CPUPerMsg)
		add(p+"daemon CPU", "cores", s.DaemonCores)
		add(p+"bench CPU (load + fakes)", "cores", s.BenchCores)
		add(p+"other processes' CPU", "cores", s.OtherCores)
	}
	if len(r.Steps) > 0 {
		add("knee (ack p99 < 50 ms, no errors)", "msg/s", r.Knee)
	}
	for _, f := range r.Footprints {
		p := fmt.Sprintf("footprint %d conv ", f.N)
		add(p+"base RSS", "MiB", float64(f.BaseRSS)/(1<<20))
		add(p+"RSS per conversation", "KiB", f.RSSPerConv/1024)
		add(p+"goroutines per conversation", "count", f.GoroutinesPerConv)
		add(p+"Go heap in use per conversation", "KiB", f.HeapPerConv/1024)
		add(p+"Go stacks per conversation", "KiB", f.StackPerConv/1024)
		add(p+"open fds", "count", float64(f.FDs))
		add(p+"fake goroutines per chat", "count", f.FakeGoroutines)
		add(p+"time to open all", "s", f.Open.Seconds())
		add(fmt.Sprintf("restart %d conv /readyz 200", f.N), "s", f.Ready.Seconds())
		add(fmt.Sprintf("restart %d conv all chats resumed", f.N), "s", f.Resumed.Seconds())
		add(fmt.Sprintf("restart %d conv chats resumed", f.N), "count", float64(f.ResumedChats))
	}
	return fs
}

// summaryRow is one figure over every run.
type summaryRow struct {
	Name, Unit       string
	Min, Median, Max float64
}

// summarise gives each figure's min, median and max over the runs, in the
// first run's order.
func summarise(runs []runResult) []summaryRow {
	var order []figure
	values := make(map[string][]float64)
	for _, r := range runs {
		for _, f := range r.figures() {
			if _, seen := values[f.Name]; !seen {
				order = append(order, f)
			}
			values[f.Name] = append(values[f.Name], f.Value)
		}
	}
	rows := make([]summaryRow, 0, len(order))
	for _, f := range order {
		s := spreadOf(values[f.Name])
		rows = append(rows, summaryRow{f.Name, f.Unit, s.Min, s.Median, s.Max})
	}
	return rows
}

// writeTable prints the summary: names left-aligned, numbers right-aligned.
func writeTable(w io.Writer, rows []summaryRow, runs int) error {
	width := len("figure")
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tunit\tmin\tmedian\tmax\t\n", width, "figure")
	for _, r := range rows {
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t\n", width, r.Name, r.Unit, num(r.Min), num(r.Median), num(r.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "(%d run%s; min / median / max over runs)\n", runs, plural(runs))
	return err
}

// num formats a figure with about three significant digits; "-" when it
// could not be measured.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// jsonReport is what -json prints.
type jsonReport struct {
	Cap     int         `json:"conversation_cap"`
	CapWhy  string      `json:"conversation_cap_reason"`
	Summary []jsonRow   `json:"summary"`
	Runs    [][]jsonFig `json:"runs"`
}

type jsonRow struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Min    jsonFloat `json:"min"`
	Median jsonFloat `json:"median"`
	Max    jsonFloat `json:"max"`
}

type jsonFig struct {
	Name  string    `json:"name"`
	Unit  string    `json:"unit"`
	Value jsonFloat `json:"value"`
}

// jsonFloat is a figure in JSON: null when it could not be measured (NaN),
// which JSON numbers cannot say.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// writeJSON prints the summary and every run's figures.
func writeJSON(w io.Writer, capN int, capWhy string, rows []summaryRow, runs []runResult) error {
	rep := jsonReport{Cap: capN, CapWhy: capWhy}
	for _, r := range rows {
		rep.Summary = append(rep.Summary, jsonRow{r.Name, r.Unit, jsonFloat(r.Min), jsonFloat(r.Median), jsonFloat(r.Max)})
	}
	for _, r := range runs {
		var fs []jsonFig
		for _, f := range r.figures() {
			fs = append(fs, jsonFig{f.Name, f.Unit, jsonFloat(f.Value)})
		}
		rep.Runs = append(rep.Runs, fs)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "p99 < 50 ms" stays readable
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
