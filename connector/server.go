package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// publicHandler builds what http.listen serves, which Twilio and Slack must
// reach and so anyone may: channel webhooks, and /livez and /readyz as a
// status code and one word for load balancers. Nothing here names a host,
// an adapter or an error.
func (d *Daemon) publicHandler() http.Handler {
	mux, route := newMux()
	for _, ch := range d.channels {
		hc, ok := ch.(HTTPChannel)
		if !ok {
			continue
		}
		for pattern, h := range hc.Routes() {
			route(pattern, d.instrument(pattern, h))
		}
	}
	route("GET /livez", http.HandlerFunc(serveLive))
	route("GET /readyz", http.HandlerFunc(d.serveReadyWord))
	return http.MaxBytesHandler(mux, d.cfg.HTTP.MaxBodyBytes)
}

// adminHandler builds what http.admin_listen serves, for operators and
// Prometheus only: the detailed /readyz, /metrics, the operator API and the
// status page, behind http.admin_token when one is set (adminAuth).
func (d *Daemon) adminHandler() http.Handler {
	mux, route := newMux()
	route("GET /livez", http.HandlerFunc(serveLive))
	route("GET /readyz", http.HandlerFunc(d.serveReady))
	route("GET /metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	d.adminRoutes(route)
	if d.cfg.HTTP.AdminPprof {
		route("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
		route("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
		route("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		route("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
		route("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	return adminAuth(d.cfg.HTTP.AdminToken, http.MaxBytesHandler(mux, 1<<10))
}

// newMux returns a mux whose catch-all answers a known path's wrong method
// with 405 and Allow (instead of 404), and every other path with a JSON 404,
// and the function that adds routes to it. A known path is a route's,
// wildcards included ("/api/v1/conversations/{id}/end").
func newMux() (*http.ServeMux, func(pattern string, h http.Handler)) {
	mux := http.NewServeMux()
	allow := map[string][]string{} // path pattern -> methods
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if methods := allowedMethods(allow, r.URL.Path); len(methods) > 0 {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed", "allow": methods})
			return
		}
		notFound(w, r)
	})
	return mux, func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		if method, path, ok := strings.Cut(pattern, " "); ok {
			allow[path] = append(allow[path], method)
		}
	}
}

// allowedMethods returns the methods of the route paths that path matches:
// equal, or equal but for "{name}" segments, which match any one segment.
func allowedMethods(allow map[string][]string, path string) []string {
	if methods, ok := allow[path]; ok {
		return methods
	}
	segs := strings.Split(path, "/")
	var out []string
	for pattern, methods := range allow {
		if !strings.Contains(pattern, "{") {
			continue
		}
		ps := strings.Split(pattern, "/")
		if len(ps) != len(segs) {
			continue
		}
		match := true
		for i, p := range ps {
			if p != segs[i] && !(strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && p != "{$}" && segs[i] != "") {
				match = false
				break
			}
		}
		if match {
			out = append(out, methods...)
		}
	}
	slices.Sort(out)
	return out
}

func serveLive(w http.ResponseWriter, _ *http.Request) { writeWord(w, http.StatusOK, "alive") }

// serveReadyWord is the public /readyz: the same decision as the admin one,
// without the details.
func (d *Daemon) serveReadyWord(w http.ResponseWriter, r *http.Request) {
	if d.Ready(r.Context()).Ready {
		writeWord(w, http.StatusOK, "ready")
		return
	}
	writeWord(w, http.StatusServiceUnavailable, "unready")
}

func writeWord(w http.ResponseWriter, code int, word string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, word+"\n") // a write error means the client left
}

func notFound(w http.ResponseWriter, r *http.Request) {
	msg := "no such endpoint"
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 2 && (parts[0] == "sms" || parts[0] == "slack") {
		msg = "no " + parts[0] + " channel named " + strconv.Quote(parts[1])
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"error": msg, "path": r.URL.Path})
}

// instrument admits a webhook (see admit) and records its latency, commit
// included.
func (d *Daemon) instrument(route string, h http.Handler) http.Handler {
	d.metrics.Refused.WithLabelValues(route) // at zero from the start, for rates and alerts
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		if release, ok := d.admit(); ok {
			// Released even if the handler panics (net/http recovers it):
			// a slot lost per panic would shrink the limit for good.
			defer release()
			h.ServeHTTP(rec, r)
		} else {
			d.metrics.Refused.WithLabelValues(route).Inc()
			rec.Header().Set("Retry-After", "1")
			writeJSON(rec, http.StatusServiceUnavailable, map[string]any{
				"error": "busy: " + strconv.Itoa(d.cfg.HTTP.MaxInflight) + " webhooks in flight (http.max_inflight); retry"})
		}
		d.metrics.Webhook.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}

// admit takes one of http.max_inflight webhook slots, without waiting. A
// webhook past the limit is refused at once rather than queued: when the
// store stalls, a queue would only grow, and every queued sender would wait
// for seconds; refused, Twilio and Slack retry later (and the SMS channel's
// catch-up relays what they did not).
func (d *Daemon) admit() (release func(), ok bool) {
	if d.inflight.Add(1) > int64(d.cfg.HTTP.MaxInflight) {
		d.inflight.Add(-1)
		return nil, false
	}
	return func() { d.inflight.Add(-1) }, true
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

// Readiness is the body of /readyz.
type Readiness struct {
	Ready    bool              `json:"ready"`
	Store    Health            `json:"store"`
	Adapters map[string]Health `json:"adapters"`
}

// Ready reports the store's write health and every adapter's real
// connection state. It never blocks: each part is read from state kept up to
// date elsewhere.
func (d *Daemon) Ready(context.Context) Readiness {
	rd := Readiness{Ready: d.started.Load(), Adapters: map[string]Health{}}
	rd.Store = d.probe.Health()
	rd.Ready = rd.Ready && rd.Store.Ready
	for name, c := range d.checkers() {
		h := c.Health()
		h.Detail = RedactText(h.Detail) // whatever an adapter put there
		rd.Adapters[name] = h
		rd.Ready = rd.Ready && h.Ready
	}
	return rd
}

// notReady names what is not ready, with why: "store (...), whoson.sales (...)".
func (rd Readiness) notReady() string {
	var parts []string
	if !rd.Store.Ready {
		parts = append(parts, "store ("+rd.Store.Detail+")")
	}
	for _, name := range slices.Sorted(maps.Keys(rd.Adapters)) {
		if h := rd.Adapters[name]; !h.Ready {
			parts = append(parts, name+" ("+h.Detail+")")
		}
	}
	if len(parts) == 0 {
		return "start-up"
	}
	return strings.Join(parts, ", ")
}

func (d *Daemon) checkers() map[string]Checker {
	out := map[string]Checker{}
	for _, ch := range d.channels {
		if c, ok := ch.(Checker); ok {
			out[ch.Name()] = c
		} else {
			out[ch.Name()] = readyChecker{}
		}
	}
	for _, v := range d.vendors {
		if c, ok := v.(Checker); ok {
			out[v.Name()] = c
		} else {
			out[v.Name()] = readyChecker{}
		}
	}
	if d.member != nil {
		out["cluster"] = d.member
	}
	if d.router != nil {
		out["resume"] = resumeChecker{r: d.router, wait: d.cfg.Daemon.ReadyWait}
	}
	return out
}

// resumeChecker is ready once every vendor session stored at start has
// resumed or been given up on, or once daemon.ready_wait has passed since
// the Router started: a vendor that is down must not keep an instance
// unready for ever (its own checker says it is down).
type resumeChecker struct {
	r    *Router
	wait time.Duration
}

func (c resumeChecker) Health() Health {
	left, total := c.r.Resuming()
	switch {
	case total == 0:
		return Health{Ready: true, Detail: "no stored vendor sessions to resume"}
	case left == 0:
		return Health{Ready: true, Detail: fmt.Sprintf("%d stored vendor sessions resumed or given up on", total)}
	case c.r.startedFor() > c.wait:
		return Health{Ready: true, Detail: fmt.Sprintf("%d of %d stored vendor sessions still resuming after daemon.ready_wait", left, total)}
	}
	return Health{Ready: false, Detail: fmt.Sprintf("resuming %d of %d stored vendor sessions", left, total)}
}

// readyChecker stands in for an adapter with nothing to check.
type readyChecker struct{}

func (readyChecker) Health() Health { return Health{Ready: true, Detail: "no connection to check"} }

func (d *Daemon) serveReady(w http.ResponseWriter, r *http.Request) {
	rd := d.Ready(r.Context())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// An error here means the client went away; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
