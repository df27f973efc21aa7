package deploy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sampleNames returns the names of the samples in a Prometheus text
// exposition, sorted and without repeats. Only samples count: a metric
// family that is described (# HELP, # TYPE) but has no series yet is
// nothing a query can read. Histograms appear as their _bucket, _sum and
// _count samples, which is also how queries name them.
func sampleNames(exposition string) []string {
	var names []string
	for line := range strings.Lines(exposition) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 {
			continue // a name with no value is no sample
		}
		if name := line[:end]; name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestSampleNames(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"counter with labels",
			"# HELP a_total A.\n# TYPE a_total counter\na_total{adapter=\"sms.main\"} 1\na_total{adapter=\"x\"} 0\n",
			[]string{"a_total"}},
		{"gauge without labels", "g 3.5\n", []string{"g"}},
		{"histogram samples", "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.05\nh_count 1\n",
			[]string{"h_bucket", "h_count", "h_sum"}},
		{"described only", "# HELP e_total Never seen.\n# TYPE e_total counter\n", nil},
		{"timestamps and tabs", "t\t1 1700000000000\n", []string{"t"}},
		{"blank lines and CRLF", "\r\n\nc 1\r\n", []string{"c"}},
		{"name alone is no sample", "lonely\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, sampleNames(tt.text)); diff != "" {
				t.Errorf("sampleNames (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzSampleNames checks that any scrape body is read to the end and that
// the names it yields, distinct pieces of the input, add up to no more
// bytes than the input.
func FuzzSampleNames(f *testing.F) {
	for _, seed := range []string{"a 1\n", "# TYPE a counter\na{b=\"c\"} 1\n", "{x} 1", "\n\n", "a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		total := 0
		for _, n := range sampleNames(text) {
			if n == "" || !strings.Contains(text, n) {
				t.Fatalf("name %q is not in the input", n)
			}
			total += len(n)
		}
		if total > len(text) {
			t.Fatalf("%d bytes of names from %d bytes of input", total, len(text))
		}
	})
}
