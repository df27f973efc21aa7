package connector

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// The status page: one server-rendered HTML page on the admin listener
// (GET /status) for an operator's browser, with what the operator API's
// status says, the stuck and live conversations and the recent failures.
// It has no script and no asset of its own: a meta refresh reloads it.

// Bounds of what the page lists.
const (
	pageRefresh  = 10 * time.Second
	pageLive     = 50
	pageStuck    = 50
	pageFailures = 20
)

// statusPageData is what the page's template renders.
type statusPageData struct {
	StatusReport
	StuckList []ConversationView
	Live      []ConversationView
	Failures  []MessageView
	Refresh   int
}

// gather reads what the page shows at now.
func (d *Daemon) gatherPage(ctx context.Context, now time.Time) (statusPageData, error) {
	rep, err := d.statusReport(ctx, now)
	if err != nil {
		return statusPageData{}, err
	}
	p := statusPageData{StatusReport: rep, Refresh: int(pageRefresh.Seconds())}
	stuck, err := d.store.ListConversations(ctx, ConversationQuery{
		Stuck: stuckRule(now, defaultStuckAfter, defaultFailedWithin), Limit: pageStuck})
	if err != nil {
		return p, err
	}
	live, err := d.store.ListConversations(ctx, ConversationQuery{Open: true, Limit: pageLive})
	if err != nil {
		return p, err
	}
	failures, err := d.store.RecentFailures(ctx, now.Add(-defaultFailedWithin), pageFailures)
	if err != nil {
		return p, err
	}
	p.StuckList, p.Live, p.Failures = viewConversations(stuck), viewConversations(live), viewMessages(failures)
	return p, nil
}

func (d *Daemon) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	p, err := d.gatherPage(r.Context(), now)
	if err != nil {
		d.log.Error("status page", zap.Error(err))
		http.Error(w, "the status page could not be read: "+RedactError(err), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := statusTemplate(now).Execute(&buf, p); err != nil {
		d.log.Error("status page", zap.Error(err))
		http.Error(w, "the status page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// No script runs on it, and no other site may frame it.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	_, _ = buf.WriteTo(w) // a write error means the browser left
}

// statusTemplate parses the page's template with its functions at now.
// Parsing per request costs well under a millisecond, and keeps the
// functions free of shared state.
func statusTemplate(now time.Time) *template.Template {
	funcs := template.FuncMap{
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return now.Sub(t).Round(time.Second).String()
		},
		"clip":  func(s string) string { return clip(s, 80) },
		"count": func(m map[State]int, s string) int { return m[State(s)] },
	}
	return template.Must(template.New("status").Funcs(funcs).Parse(statusHTML))
}

const statusHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>connectord {{.Instance}}: {{if .Ready}}ready{{else}}NOT READY{{end}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f4f6f9; }
header { background: #22324a; color: #fff; padding: 14px 24px; display: flex; gap: 24px; align-items: baseline; }
header h1 { font-size: 20px; margin: 0; }
main { padding: 8px 24px 24px; }
section { background: #fff; border: 1px solid #d5dbe5; border-radius: 6px; margin: 14px 0; padding: 10px 16px; }
h2 { font-size: 16px; margin: 4px 0 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #e8ecf2; vertical-align: top; }
th { color: #5a6678; font-weight: 600; }
.up { background: #1e8a4c; color: #fff; border-radius: 4px; padding: 1px 8px; }
.down { background: #c62f2f; color: #fff; border-radius: 4px; padding: 1px 8px; }
.warn { background: #e3a008; color: #1d2430; border-radius: 4px; padding: 1px 8px; }
.cards { display: flex; gap: 14px; flex-wrap: wrap; }
.card { background: #eef3fb; border-radius: 6px; padding: 8px 16px; min-width: 110px; }
.card b { display: block; font-size: 22px; }
.none { color: #7a8597; }
</style>
</head>
<body>
<header>
<h1>connectord</h1>
<span>instance <b>{{.Instance}}</b></span>
<span>version {{.Build.Version}}{{with .Build.Revision}} ({{.}}){{end}}</span>
<span>{{if .Ready}}<span class="up">ready</span>{{else}}<span class="down">not ready</span>{{end}}</span>
<span>{{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}}, refreshes every {{.Refresh}} s</span>
</header>
<main>
<section id="overview">
<h2>Overview</h2>
<div class="cards">
<div class="card">pending<b>{{count .Conversations "pending"}}</b></div>
<div class="card">queued<b>{{count .Conversations "queued"}}</b></div>
<div class="card">active<b>{{count .Conversations "active"}}</b></div>
<div class="card">ended<b>{{count .Conversations "ended"}}</b></div>
<div class="card">outbox<b>{{.Outbox.Depth}}</b>{{if .Outbox.OldestAt}}oldest {{ago .Outbox.OldestAt.UTC}}{{else}}empty{{end}}</div>
<div class="card">stuck<b>{{if .Stuck.Count}}<span class="warn">{{.Stuck.Count}}{{if .Stuck.AtLeast}}+{{end}}</span>{{else}}0{{end}}</b></div>
</div>
</section>
<section id="adapters">
<h2>Health</h2>
<table>
<tr><th>part</th><th>state</th><th>detail</th></tr>
<tr><td>store</td><td>{{if .Store.Ready}}<span class="up">up</span>{{else}}<span class="down">down</span>{{end}}</td><td>{{.Store.Detail}}</td></tr>
{{range $name, $h := .Adapters}}<tr><td>{{$name}}</td><td>{{if $h.Ready}}<span class="up">up</span>{{else}}<span class="down">down</span>{{end}}</td><td>{{$h.Detail}}</td></tr>
{{end}}</table>
</section>
<section id="stuck">
<h2>Stuck conversations</h2>
<p class="none">A message waiting over {{.Stuck.WaitingOverSeconds}} s, or a message failed within {{.Stuck.FailedWithinSeconds}} s.</p>
{{template "conversations" .StuckList}}
</section>
<section id="live">
<h2>Live conversations</h2>
{{template "conversations" .Live}}
</section>
<section id="failures">
<h2>Recent failures</h2>
{{if .Failures}}<table>
<tr><th>message</th><th>conversation</th><th>to</th><th>kind</th><th>reason</th><th>failed</th></tr>
{{range .Failures}}<tr><td>{{.ID}}</td><td>{{.ConversationID}}</td><td>{{if eq .Direction "to_agent"}}agent{{else}}customer{{end}}</td><td>{{.Kind}}</td><td>{{clip .Reason}}</td><td>{{ago .UpdatedAt}} ago</td></tr>
{{end}}</table>{{else}}<p class="none">No failure in the last hour.</p>{{end}}
</section>
</main>
</body>
</html>
{{define "conversations"}}{{if .}}<table>
<tr><th>id</th><th>channel</th><th>customer</th><th>vendor</th><th>state</th><th>agent</th><th>age</th><th>last activity</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td>{{.Channel}}</td><td>{{.Customer}}</td><td>{{.Vendor}}</td><td>{{.State}}{{with .EndReason}}: {{clip .}}{{end}}</td><td>{{.Agent}}</td><td>{{ago .CreatedAt}}</td><td>{{ago .LastActivity}} ago</td></tr>
{{end}}</table>{{else}}<p class="none">None.</p>{{end}}{{end}}
`
