package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// dashboard is the part of Grafana's dashboard model these tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	GridPos    gridPos        `json:"gridPos"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []target       `json:"targets"`
	// Panels are those of a collapsed row.
	Panels []panel `json:"panels"`
}

type gridPos struct{ X, Y, W, H int }

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	Expr  string `json:"expr"`
	RefID string `json:"refId"`
}

// variable is a dashboard variable; a query variable's query is a string
// in old dashboards and an object with a "query" in new ones.
type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// queryText is a query variable's PromQL-ish query, whichever way it is kept.
func (v variable) queryText() (string, error) {
	if len(v.Query) == 0 {
		return "", nil
	}
	var text string
	if err := json.Unmarshal(v.Query, &text); err == nil {
		return text, nil
	}
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &obj); err != nil {
		return "", fmt.Errorf("variable %s: query is neither a string nor an object with one: %w", v.Name, err)
	}
	return obj.Query, nil
}

// loadDashboard reads the dashboard, strictly: a key this model lacks is
// fine (Grafana has many), malformed JSON is not.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows: the panels of collapsed rows count too.
func allPanels(d dashboard) []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// variableExpr turns a query variable's query into the PromQL it reads:
// label_values(selector, label) reads selector; query_result(expr) reads
// expr; label_names() and metrics() name no metric.
func variableExpr(query string) string {
	query = strings.TrimSpace(query)
	if m := regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`).FindStringSubmatch(query); m != nil {
		return m[1]
	}
	if m := regexp.MustCompile(`^query_result\((.*)\)$`).FindStringSubmatch(query); m != nil {
		return m[1]
	}
	return ""
}

func TestVariableExpr(t *testing.T) {
	tests := []struct{ query, want string }{
		{"label_values(connectord_adapter_up, instance)", "connectord_adapter_up"},
		{`label_values(connectord_adapter_up{job="connectord"}, adapter)`, `connectord_adapter_up{job="connectord"}`},
		{"query_result(topk(5, m))", "topk(5, m)"},
		{"label_names()", ""},
		{"label_values(instance)", ""},
	}
	for _, tt := range tests {
		if got := variableExpr(tt.query); got != tt.want {
			t.Errorf("variableExpr(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: a Grafana dashboard has all three", d.UID, d.Title, d.SchemaVersion)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	for _, p := range allPanels(d) {
		if p.ID == 0 || ids[p.ID] != "" {
			t.Errorf("panel %q: id %d is missing or also %q's", p.Title, p.ID, ids[p.ID])
		}
		ids[p.ID] = p.Title
		checkPanel(t, p)
	}
	for _, v := range d.Templating.List {
		if _, err := v.queryText(); err != nil {
			t.Error(err)
		}
	}
}

// checkPanel checks one panel's shape: a row only groups; any other panel
// has a title, a place on the 24-column grid, and queries with an expr and
// a distinct refId each.
func checkPanel(t *testing.T, p panel) {
	t.Helper()
	if p.Type == "" || p.Title == "" {
		t.Errorf("panel %d: type %q, title %q: both are needed", p.ID, p.Type, p.Title)
	}
	if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
		t.Errorf("panel %q: gridPos %+v is off Grafana's 24-column grid", p.Title, p.GridPos)
	}
	if p.Type == "row" {
		return
	}
	if p.Datasource == nil || p.Datasource.Type != "prometheus" {
		t.Errorf("panel %q: datasource %+v, want a prometheus one", p.Title, p.Datasource)
	}
	if len(p.Targets) == 0 {
		t.Errorf("panel %q: no targets", p.Title)
	}
	var refs []string
	for _, tg := range p.Targets {
		if strings.TrimSpace(tg.Expr) == "" {
			t.Errorf("panel %q: target %q has no expr", p.Title, tg.RefID)
		}
		if len(metricNames(tg.Expr)) == 0 {
			t.Errorf("panel %q: target %q reads no metric: %q", p.Title, tg.RefID, tg.Expr)
		}
		if tg.RefID == "" || slices.Contains(refs, tg.RefID) {
			t.Errorf("panel %q: refId %q is empty or repeated", p.Title, tg.RefID)
		}
		refs = append(refs, tg.RefID)
	}
}

// TestDashboardCoversIssue checks that the dashboard shows what it was asked
// for: throughput, latency, outbox depth and age, adapter up, conversations
// by state, failures.
func TestDashboardCoversIssue(t *testing.T) {
	used := dashboardMetricNames(t, loadDashboard(t))
	var lacking []string
	for _, want := range []string{
		"connectord_messages_in_total", "connectord_messages_out_total", // throughput
		"connectord_webhook_duration_seconds_bucket",                      // latency
		"connectord_outbox_depth", "connectord_outbox_oldest_age_seconds", // outbox
		"connectord_adapter_up", "connectord_conversations", "connectord_delivery_failures_total",
	} {
		if _, ok := used[want]; !ok {
			lacking = append(lacking, want)
		}
	}
	if diff := cmp.Diff([]string(nil), lacking); diff != "" {
		t.Errorf("metrics the dashboard should show and does not (-want +got):\n%s", diff)
	}
}

// TestDashboardExprsParse has promtool parse every dashboard query, by
// handing them over as recording rules, with Grafana's variables replaced
// by values of the right kind.
func TestDashboardExprsParse(t *testing.T) {
	d := loadDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
		"${instance:regex}", ".*", "$instance", ".*", "${instance}", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range allPanels(d) {
		for _, tg := range p.Targets {
			n++
			expr := vars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: %q uses a variable this test does not know", p.Title, tg.Expr)
			}
			quoted, err := json.Marshal(expr) // JSON strings are YAML strings
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&rules, "      - record: dashboard:expr%d\n        expr: %s\n", n, quoted)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, "check", "rules", path)
	if got := rulesFound(t, out); got != n {
		t.Errorf("promtool parsed %d of the dashboard's %d queries", got, n)
	}
}

// dashboardMetricNames maps each metric the dashboard reads, in panels and
// in variables, to where it is used.
func dashboardMetricNames(t *testing.T, d dashboard) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for _, p := range allPanels(d) {
		for _, tg := range p.Targets {
			for _, n := range metricNames(tg.Expr) {
				used[n] = append(used[n], fmt.Sprintf("%s panel %q", dashboardFile, p.Title))
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := v.queryText()
		if err != nil {
			t.Fatal(err)
		}
		expr := variableExpr(q)
		if expr == "" {
			t.Errorf("variable %s: cannot tell which metric %q reads", v.Name, q)
		}
		for _, n := range metricNames(expr) {
			used[n] = append(used[n], fmt.Sprintf("%s variable %s", dashboardFile, v.Name))
		}
	}
	return used
}
