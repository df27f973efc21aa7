package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummariseOverRuns(t *testing.T) {
	run := func(p50 time.Duration, kneeRate float64) runResult {
		return runResult{
			Floors: floors{FsyncP50: p50},
			Steps:  []stepResult{{Rate: 250, AckP50: p50, SyncedWritesPerMsg: math.NaN()}},
			Knee:   kneeRate,
		}
	}
	rows := summarise([]runResult{run(3*time.Millisecond, 1000), run(time.Millisecond, 250), run(2*time.Millisecond, 2000)})
	byName := make(map[string]summaryRow)
	for _, r := range rows {
		byName[r.Name] = r
	}
	if diff := cmp.Diff(summaryRow{"floor fsync p50", "ms", 1, 2, 3}, byName["floor fsync p50"]); diff != "" {
		t.Errorf("fsync p50 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(summaryRow{"load 250/s ack p50", "ms", 1, 2, 3}, byName["load 250/s ack p50"]); diff != "" {
		t.Errorf("ack p50 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(summaryRow{"knee (ack p99 < 50 ms, no errors)", "msg/s", 250, 1000, 2000}, byName["knee (ack p99 < 50 ms, no errors)"]); diff != "" {
		t.Errorf("knee (-want +got):\n%s", diff)
	}
	if r := byName["load 250/s synced writes per relayed msg"]; !math.IsNaN(r.Median) {
		t.Errorf("unmeasured figure summarised as %v, want NaN", r.Median)
	}

	var out bytes.Buffer
	if err := writeTable(&out, rows, 3); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"figure", "load 250/s ack p50", "3 runs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(lineOf(out.String(), "synced writes"), " - ") {
		t.Errorf("an unmeasured figure does not show as -:\n%s", out.String())
	}

	out.Reset()
	if err := writeJSON(&out, 19000, "why", rows, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary []struct {
			Name   string
			Median *float64
		}
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON does not decode: %v\n%s", err, out.String())
	}
	for _, r := range doc.Summary {
		if strings.Contains(r.Name, "synced") != (r.Median == nil) {
			t.Errorf("%s: median %v; want null exactly for the unmeasured figure", r.Name, r.Median)
		}
	}
}

func lineOf(text, sub string) string {
	for l := range strings.Lines(text) {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestFDCap(t *testing.T) {
	for _, tc := range []struct {
		hard uint64
		want int
	}{
		{20000, 19000},
		{1 << 20, 1<<20 - 1000},
		{1024, 512},
		{math.MaxUint64, 1<<30 - 1000},
	} {
		if got, why := fdCap(tc.hard); got != tc.want || !strings.Contains(why, "open files") {
			t.Errorf("fdCap(%d) = %d, %q; want %d", tc.hard, got, why, tc.want)
		}
	}
	if diff := cmp.Diff([]int{5000, 19000}, capConversations([]int{5000, 20000, 30000}, 19000)); diff != "" {
		t.Errorf("capConversations (-want +got):\n%s", diff)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := ParseFlags([]string{"-rates", "50, 100", "-duration", "2s", "-conversations", "200", "-runs", "3", "-json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{50, 100}, o.Rates); diff != "" || o.Duration != 2*time.Second ||
		!cmp.Equal([]int{200}, o.Conversations) || o.Runs != 3 || !o.JSON || o.Customers != 200 || o.PNG != "bench.png" {
		t.Errorf("options %+v", o)
	}
	for _, bad := range [][]string{{"-rates", "0"}, {"-rates", "x"}, {"-runs", "0"}, {"-duration", "0s"}, {"extra"}} {
		if _, err := ParseFlags(bad, io.Discard); err == nil {
			t.Errorf("ParseFlags(%q): no error", bad)
		}
	}
}
