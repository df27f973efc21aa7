package deploy

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// metricNames returns the metric names a PromQL expression reads, sorted and
// without repeats. It is a scanner, not a parser: it drops string literals,
// label matchers ({...}), ranges ([...]), numbers, Grafana variables ($x,
// ${x}), keywords, calls and the label lists of by/without/on/ignoring and
// group_left/group_right. What is left is the names of selectors. A name
// given only as {__name__="..."} is not seen: the files here never do that.
func metricNames(expr string) []string {
	var names []string
	s := promqlScanner{src: expr}
	for {
		word, ok := s.next()
		if !ok {
			break
		}
		if !slices.Contains(names, word) {
			names = append(names, word)
		}
	}
	slices.Sort(names)
	return names
}

// promqlScanner walks an expression and yields the identifiers that name
// metrics.
type promqlScanner struct {
	src string
	pos int
	// labelList is set after a keyword whose "(...)" lists label names.
	labelList bool
}

func (s *promqlScanner) next() (string, bool) {
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			s.pos++
			continue
		}
		if c == '(' && s.labelList {
			s.labelList = false
			s.skipTo(')')
			continue
		}
		// A label list must follow its keyword at once (group_left may
		// have none): anything else ends the wait for it.
		s.labelList = false
		switch {
		case c == '(':
			s.pos++
		case c == '"' || c == '\'' || c == '`':
			s.skipString(c)
		case c == '{':
			s.skipTo('}')
		case c == '[':
			s.skipTo(']')
		case c == '#': // a comment runs to the end of its line
			s.skipTo('\n')
		case c == '$':
			s.skipVariable()
		case isNameStart(c):
			if word, ok := s.word(); ok {
				return word, true
			}
		case isDigit(c) || c == '.':
			s.skipNumber()
		default:
			s.pos++
		}
	}
	return "", false
}

// word reads one identifier and says whether it names a metric.
func (s *promqlScanner) word() (string, bool) {
	start := s.pos
	for s.pos < len(s.src) && isNameChar(s.src[s.pos]) {
		s.pos++
	}
	word := s.src[start:s.pos]
	switch strings.ToLower(word) {
	case "by", "without", "on", "ignoring", "group_left", "group_right":
		s.labelList = true
		return "", false
	case "and", "or", "unless", "bool", "offset", "inf", "nan",
		// Aggregations are keywords too: "sum by (x) (...)" puts no "(" right after the name.
		"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio":
		return "", false
	}
	return word, !s.callFollows()
}

// callFollows says whether the next non-blank character opens a call.
func (s *promqlScanner) callFollows() bool {
	rest := strings.TrimLeft(s.src[s.pos:], " \t\r\n")
	return strings.HasPrefix(rest, "(")
}

// skipString skips a quoted literal, honouring backslash escapes except in
// raw (backquoted) strings.
func (s *promqlScanner) skipString(quote byte) {
	s.pos++
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		s.pos++
		switch {
		case c == '\\' && quote != '`':
			s.pos++
		case c == quote:
			return
		}
	}
}

// skipTo skips past the next end byte, stepping over quoted strings on the
// way (a label value may hold "}" or "]").
func (s *promqlScanner) skipTo(end byte) {
	s.pos++
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == end:
			s.pos++
			return
		case c == '"' || c == '\'' || c == '`':
			s.skipString(c)
		default:
			s.pos++
		}
	}
}

// skipVariable skips a Grafana variable: $name, ${name} or ${name:format}.
func (s *promqlScanner) skipVariable() {
	s.pos++
	if s.pos < len(s.src) && s.src[s.pos] == '{' {
		s.skipTo('}')
		return
	}
	for s.pos < len(s.src) && isNameChar(s.src[s.pos]) {
		s.pos++
	}
}

// skipNumber skips a number, with its exponent or duration unit letters, so
// that "5m" or "1e3" yields no name.
func (s *promqlScanner) skipNumber() {
	for s.pos < len(s.src) && (isNameChar(s.src[s.pos]) || s.src[s.pos] == '.') {
		s.pos++
	}
}

func isNameStart(c byte) bool {
	return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || isDigit(c) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"bare selector", "connectord_adapter_up == 0", []string{"connectord_adapter_up"}},
		{"matchers hide label names and values",
			`connectord_adapter_up{adapter="sms.main", instance=~"a|b}"} == 0`, []string{"connectord_adapter_up"}},
		{"range and function", `increase(connectord_delivery_failures_total[10m]) > 0`,
			[]string{"connectord_delivery_failures_total"}},
		{"aggregation with by before", `sum by (job, instance) (rate(x_total[5m]))`, []string{"x_total"}},
		{"aggregation with by after", `sum(rate(x_total[5m])) by (le, route)`, []string{"x_total"}},
		{"without", `max without (pod) (y)`, []string{"y"}},
		{"binary op with on and group_left", `a / on (instance) group_left (role) b`, []string{"a", "b"}},
		{"group_left without labels", `a * on (x) group_left b + rate(c[1m])`, []string{"a", "b", "c"}},
		{"ignoring and bool", `a > bool ignoring (code) b`, []string{"a", "b"}},
		{"set operators", `a > 0 or b > 0 unless c and d`, []string{"a", "b", "c", "d"}},
		{"histogram quantile", `histogram_quantile(0.99, sum by (le) (rate(h_bucket{route="x"}[$__rate_interval])))`,
			[]string{"h_bucket"}},
		{"grafana variables", `rate(m_total{instance=~"$instance"}[$__rate_interval]) * ${factor}`, []string{"m_total"}},
		{"numbers and durations", `m offset 5m > 1e3 * 0x1f + .5`, []string{"m"}},
		{"repeats once, sorted", `b + a + b`, []string{"a", "b"}},
		{"recording rule name with colons", `job:m:rate5m > 1`, []string{"job:m:rate5m"}},
		{"string argument", `label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{"raw string", "m{a=~`x}y`}", []string{"m"}},
		{"comment", "m # n\n+ o", []string{"m", "o"}},
		{"keywords in any case", `a AND b OR c BY`, []string{"a", "b", "c"}},
		{"call with space before paren", `rate (m[5m])`, []string{"m"}},
		{"no metric", `vector(1)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, metricNames(tt.expr)); diff != "" {
				t.Errorf("metricNames(%q) (-want +got):\n%s", tt.expr, diff)
			}
		})
	}
}

// FuzzMetricNames checks that any input ends, and that what comes out is
// bounded by what went in: each name is a distinct identifier taken from
// the input, so they cannot add up to more bytes than it has.
func FuzzMetricNames(f *testing.F) {
	for _, seed := range []string{"a{b=\"c\"}[5m]", "sum by (x) (rate(y[1m]))", "\"unterminated", "{[(", "$", "${", "a\\"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names := metricNames(expr)
		total := 0
		for _, n := range names {
			if n == "" || !strings.Contains(expr, n) {
				t.Fatalf("name %q is not in the input %q", n, expr)
			}
			if !utf8.ValidString(n) {
				t.Fatalf("name %q is not valid UTF-8", n)
			}
			total += len(n)
		}
		if total > len(expr) {
			t.Fatalf("%d bytes of names from %d bytes of input", total, len(expr))
		}
	})
}
