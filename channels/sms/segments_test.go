package sms

import (
	"context"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/connectord/connectord/channels/sms/segment"
)

func TestSplitPrepares(t *testing.T) {
	long := strings.Repeat("word ", 100) // 499 GSM-7 characters: 4 segments
	tests := []struct {
		name  string
		cfg   Config
		in    string
		want  []string
		check func(t *testing.T, parts []string)
	}{
		{name: "smart quotes kept by default", in: "It’s “fine” — really…",
			want: []string{"It’s “fine” — really…"}},
		{name: "gsm_normalize", cfg: Config{GSMNormalize: true}, in: "It’s “fine” — really…",
			want: []string{`It's "fine" - really...`}},
		{name: "max_segments cuts with the mark", cfg: Config{MaxSegments: 2, TruncationMark: " [cut]"}, in: long,
			check: func(t *testing.T, parts []string) {
				if len(parts) != 1 || !strings.HasSuffix(parts[0], " [cut]") || segment.Count(parts[0]).Segments != 2 {
					t.Errorf("parts = %q, want one body of 2 segments ending in the mark", parts)
				}
			}},
		{name: "max_segments leaves a short line alone", cfg: Config{MaxSegments: 1, TruncationMark: " [cut]"},
			in: "short", want: []string{"short"}},
		{name: "normalising first keeps more", cfg: Config{MaxSegments: 1, GSMNormalize: true, TruncationMark: "~"},
			in: strings.Repeat("’", 150), want: []string{strings.Repeat("'", 150)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Channel{cfg: tt.cfg}
			got := c.Split(tt.in)
			if tt.check != nil {
				tt.check(t, got)
			} else if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Split = %q, want %q", got, tt.want)
			}
			// Preparing again changes nothing: Send prepares stored parts again.
			for _, p := range got {
				if again := c.Split(p); len(again) != 1 || again[0] != p {
					t.Errorf("Split(%q) = %q, not the part itself", p, again)
				}
			}
		})
	}
}

// The segment counter counts what Twilio accepted, by encoding, on the
// registry the core gives the channel.
func TestSegmentsMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	// As the daemon hands it: wrapped with the adapter's label.
	w := newWorld(t, setup{metrics: prometheus.WrapRegistererWith(prometheus.Labels{"adapter": "sms.main"}, reg)})
	ctx := context.Background()
	if _, err := w.ch.Send(ctx, customerNumber, text(1, strings.Repeat("a", 200))); err != nil { // 2 GSM-7
		t.Fatal(err)
	}
	if _, err := w.ch.Send(ctx, customerNumber, text(2, "héllo ✓")); err != nil { // 1 UCS-2
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(w.ch.metrics.segments.WithLabelValues("GSM-7")); got != 2 {
		t.Errorf("GSM-7 segments = %v, want 2", got)
	}
	if got := testutil.ToFloat64(w.ch.metrics.segments.WithLabelValues("UCS-2")); got != 1 {
		t.Errorf("UCS-2 segments = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "connectord_sms_segments_total"); err != nil || n != 2 {
		t.Errorf("registry has %d series (%v), want 2", n, err)
	}
	// A second build on the same registry (a reload) shares the series.
	if _, err := New(w.env); err != nil {
		t.Errorf("rebuilding on the same registry: %v", err)
	}
}

// FuzzChannelSplit: whatever an agent writes, with every preparation on,
// the parts fit Twilio's limit and max_segments (one more segment per cut at
// most), and stay within a small multiple of the input.
func FuzzChannelSplit(f *testing.F) {
	f.Add("It’s “fine” — really…", 2)
	f.Add(strings.Repeat("ab ", 700), 3)
	f.Add("👋é{}[]", 1)
	f.Fuzz(func(t *testing.T, s string, maxSegs int) {
		if len(s) > 20000 {
			return
		}
		maxSegs = 1 + abs(maxSegs)%maxSegmentsLimit
		c := &Channel{cfg: Config{GSMNormalize: true, MaxSegments: maxSegs, TruncationMark: " [cut]"}}
		parts := c.Split(s)
		total, size := 0, 0
		for _, p := range parts {
			if p == "" || len(utf16.Encode([]rune(p))) > MaxBody {
				t.Fatalf("bad part %q", p)
			}
			total += segment.Count(p).Segments
			size += len(p)
		}
		if len(parts) > 0 && total > maxSegs+len(parts)-1 {
			t.Errorf("%d segments in %d parts, max_segments %d", total, len(parts), maxSegs)
		}
		if size > 3*len(s)+len(" [cut]") {
			t.Errorf("%d bytes out of %d in", size, len(s))
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
