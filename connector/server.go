package connector

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handler builds the daemon's HTTP surface: channel webhooks, /livez,
// /readyz, /metrics, and a JSON 404 for everything else.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{} // path -> methods, for 405 instead of 404
	route := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		if method, path, ok := strings.Cut(pattern, " "); ok {
			allow[path] = append(allow[path], method)
		}
	}
	for _, ch := range d.channels {
		hc, ok := ch.(HTTPChannel)
		if !ok {
			continue
		}
		for pattern, h := range hc.Routes() {
			route(pattern, d.instrument(pattern, h))
		}
	}
	route("GET /livez", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"alive": true})
	}))
	route("GET /readyz", http.HandlerFunc(d.serveReady))
	route("GET /metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	// The catch-all would otherwise answer a known path's wrong method with 404.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if methods, ok := allow[r.URL.Path]; ok {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed", "allow": methods})
			return
		}
		notFound(w, r)
	})
	return http.MaxBytesHandler(mux, d.cfg.HTTP.MaxBodyBytes)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	msg := "no such endpoint"
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 2 && (parts[0] == "sms" || parts[0] == "slack") {
		msg = "no " + parts[0] + " channel named " + strconv.Quote(parts[1])
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"error": msg, "path": r.URL.Path})
}

// instrument records webhook latency, commit included.
func (d *Daemon) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		d.metrics.Webhook.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
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

// Ready checks the store and every adapter's real connection state.
func (d *Daemon) Ready(ctx context.Context) Readiness {
	rd := Readiness{Ready: d.started.Load(), Adapters: map[string]Health{}}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := d.store.Ping(pctx); err != nil {
		rd.Store = Health{Detail: err.Error()}
		rd.Ready = false
	} else {
		rd.Store = Health{Ready: true}
	}
	for name, c := range d.checkers() {
		h := c.Health()
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
	return out
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
