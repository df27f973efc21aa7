package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	rulesFile     = "prometheus/alerts.yml"
	rulesTestFile = "prometheus/alerts_test.yml"
	dashboardFile = "grafana/connectord.json"
)

// promtool returns the path of promtool, from Debian's prometheus package.
// Without it the test fails in CI and is skipped elsewhere, saying why.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	const why = "promtool is not installed (Debian: apt-get install --no-install-recommends prometheus; scripts/test.sh does it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// runPromtool runs promtool with args in this directory and returns what it
// printed, failing the test if it exits non-zero.
func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ruleExprs returns the expr of every rule in a rules file, in file order.
// Without a YAML parser it reads "expr:" lines, so every expr must be on one
// line; TestRulesCheck compares the count with promtool's.
func ruleExprs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var exprs []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(text, "expr:")
		if !ok {
			continue
		}
		expr := strings.TrimSpace(rest)
		if expr == "" || expr == "|" || expr == ">" || strings.HasPrefix(expr, "|") || strings.HasPrefix(expr, ">") {
			t.Fatalf("%s:%d: write the expr on one line (this test reads rules line by line)", path, line)
		}
		if unq, err := strconv.Unquote(expr); err == nil {
			expr = unq
		}
		exprs = append(exprs, expr)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return exprs
}

// rulesFound reads the count out of promtool check rules' "SUCCESS: N rules found".
func rulesFound(t *testing.T, out string) int {
	t.Helper()
	m := regexp.MustCompile(`SUCCESS: (\d+) rules found`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("promtool check rules printed no rule count:\n%s", out)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRulesCheck(t *testing.T) {
	out := runPromtool(t, "check", "rules", rulesFile)
	exprs := ruleExprs(t, rulesFile)
	if n := rulesFound(t, out); n != len(exprs) {
		t.Errorf("promtool found %d rules, this test read %d exprs from %s: an expr it cannot see goes unchecked against /metrics",
			n, len(exprs), rulesFile)
	}
}

// TestRulesFire runs the unit tests of the rules: each alert fires when and
// only when its case says, with the text it says.
func TestRulesFire(t *testing.T) {
	runPromtool(t, "test", "rules", rulesTestFile)
}

// TestRulesTested checks that every alert has a case in the unit-test file,
// so a new rule cannot go untested.
func TestRulesTested(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) == 0 {
		t.Fatalf("no alerts in %s", rulesFile)
	}
	var untested []string
	for _, a := range alerts {
		if !regexp.MustCompile(`(?m)^\s*alertname:\s*` + regexp.QuoteMeta(a[1]) + `\s*$`).Match(cases) {
			untested = append(untested, a[1])
		}
	}
	if diff := cmp.Diff([]string(nil), untested); diff != "" {
		t.Errorf("alerts with no case in %s (-want +got):\n%s", rulesTestFile, diff)
	}
}

// TestRuleExprsNameMetrics guards the name check against a scanner that
// misses a rule's metric: every rule reads at least one.
func TestRuleExprsNameMetrics(t *testing.T) {
	for i, expr := range ruleExprs(t, rulesFile) {
		if len(metricNames(expr)) == 0 {
			t.Errorf("rule %d: no metric name found in %q", i+1, expr)
		}
	}
}

// ruleMetricNames maps each metric the rules read to where it is used.
func ruleMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for i, expr := range ruleExprs(t, rulesFile) {
		for _, n := range metricNames(expr) {
			used[n] = append(used[n], fmt.Sprintf("%s rule %d", rulesFile, i+1))
		}
	}
	return used
}
