package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// metrics are the samples of one /metrics scrape, summed by metric name over
// their labels (the figures the benchmark reads have none, or are totals).
type metrics map[string]float64

// parseMetrics reads the Prometheus text exposition format. Comments,
// blank lines and lines it cannot read are skipped; a sample's optional
// timestamp is ignored.
func parseMetrics(r io.Reader) (metrics, error) {
	m := make(metrics)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := splitName(line)
		fields := strings.Fields(rest)
		if name == "" || len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		m[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	return m, nil
}

// splitName cuts a sample line into its metric name and what follows its
// labels.
func splitName(line string) (name, rest string) {
	if i := strings.IndexAny(line, "{ \t"); i >= 0 {
		name, rest = line[:i], line[i:]
	} else {
		return line, ""
	}
	if strings.HasPrefix(rest, "{") {
		// Label values may hold '}' only quoted; find the closing brace
		// outside quotes.
		inQuote, escaped := false, false
		for i := 1; i < len(rest); i++ {
			switch c := rest[i]; {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inQuote = !inQuote
			case c == '}' && !inQuote:
				return name, rest[i+1:]
			}
		}
		return "", ""
	}
	return name, rest
}

// get returns a metric's value, or NaN when the daemon does not export it
// (older daemons lack some counters).
func (m metrics) get(name string) float64 {
	if v, ok := m[name]; ok {
		return v
	}
	return math.NaN()
}

// scrape reads url (an admin /metrics).
func scrape(ctx context.Context, client *http.Client, url string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: status %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}
