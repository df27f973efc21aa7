package connector

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The operator API on http.admin_listen. Every answer is JSON; an error is
// {"error": "..."} with 400 (a bad parameter, named), 401 (no or a wrong
// token), 404 (an unknown id), 409 (the conversation or message is not in a
// state the operation applies to) or 500. README.md documents each route.

// adminRoutes adds the operator API and the status page to the admin mux.
func (d *Daemon) adminRoutes(route func(pattern string, h http.Handler)) {
	route("GET /api/v1/status", http.HandlerFunc(d.serveStatus))
	route("GET /api/v1/conversations", http.HandlerFunc(d.serveConversations))
	route("GET /api/v1/conversations/{id}", http.HandlerFunc(d.serveConversation))
	route("POST /api/v1/conversations/{id}/end", http.HandlerFunc(d.serveEnd))
	route("POST /api/v1/messages/{id}/retry", http.HandlerFunc(d.serveRetry))
	route("GET /status", http.HandlerFunc(d.serveStatusPage))
	route("GET /{$}", http.RedirectHandler("/status", http.StatusFound))
}

// adminAuth asks for http.admin_token, when one is set, on every route but
// /livez and /readyz (load balancers and systemd-style probes carry no
// token; they say nothing an operator's token protects). It takes the token
// as a bearer token (scripts, the CLI, Prometheus) or as the password of
// HTTP basic authentication with any user name (a browser, for the status
// page, which has no other way to send it). Both are compared in constant
// time, through their SHA-256, so that neither the content nor the length
// of the token shows in the time an answer takes.
func adminAuth(token Secret, h http.Handler) http.Handler {
	if token.Empty() {
		return h
	}
	want := sha256.Sum256([]byte(token.Reveal()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/livez" || r.URL.Path == "/readyz" || presented(r, want) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("WWW-Authenticate", `Bearer realm="connectord admin"`)
		w.Header().Add("WWW-Authenticate", `Basic realm="connectord admin", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"error": "this admin listener asks for http.admin_token: send Authorization: Bearer <token>"})
	})
}

// presented reports whether r carries the token whose SHA-256 is want.
func presented(r *http.Request, want [sha256.Size]byte) bool {
	got := "" // the token is never empty, so "" never matches
	if scheme, cred, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
		got = strings.TrimSpace(cred)
	} else if _, pass, basic := r.BasicAuth(); basic {
		got = pass
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

func (d *Daemon) serveStatus(w http.ResponseWriter, r *http.Request) {
	rep, err := d.statusReport(r.Context(), time.Now())
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// statusReport gathers GET /api/v1/status at now. The counts are the whole
// store's: with several instances on one PostgreSQL, every instance reports
// the same counts, and its own health.
func (d *Daemon) statusReport(ctx context.Context, now time.Time) (StatusReport, error) {
	rd := d.Ready(ctx)
	st, err := d.store.Stats(ctx)
	if err != nil {
		return StatusReport{}, err
	}
	rep := StatusReport{Instance: d.cfg.Instance(), Build: d.build, Time: now, Ready: rd.Ready, Store: rd.Store,
		Adapters: rd.Adapters, Conversations: st.Conversations, Outbox: OutboxStatus{Depth: st.OutboxDepth}}
	if !st.OldestPending.IsZero() {
		oldest := st.OldestPending
		rep.Outbox.OldestAt = &oldest
		rep.Outbox.OldestAgeSeconds = max(now.Sub(oldest).Seconds(), 0)
	}
	stuck, err := d.store.ListConversations(ctx, ConversationQuery{
		Stuck: stuckRule(now, defaultStuckAfter, defaultFailedWithin), Limit: maxListLimit})
	if err != nil {
		return StatusReport{}, err
	}
	rep.Stuck = StuckCount{Count: len(stuck), AtLeast: len(stuck) == maxListLimit,
		WaitingOverSeconds: defaultStuckAfter.Seconds(), FailedWithinSeconds: defaultFailedWithin.Seconds()}
	return rep, nil
}

func (d *Daemon) serveConversations(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r.URL.Query(), time.Now())
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	cs, err := d.store.ListConversations(r.Context(), q)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	out := ConversationList{Conversations: viewConversations(cs)}
	if len(cs) == q.Limit {
		out.NextBefore = cs[len(cs)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) serveConversation(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	c, err := d.store.Conversation(r.Context(), id)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	ms, err := d.store.Messages(r.Context(), id)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	omitted := max(0, len(ms)-maxDetailMessages)
	writeJSON(w, http.StatusOK, ConversationDetail{Conversation: viewConversation(c),
		Messages: viewMessages(ms[omitted:]), MessagesOmitted: omitted})
}

func (d *Daemon) serveEnd(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	c, err := d.router.EndByOperator(r.Context(), id)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ConversationDetail{Conversation: viewConversation(c)})
}

func (d *Daemon) serveRetry(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	m, err := d.router.RetryMessage(r.Context(), id)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, MessageDetail{Message: viewMessage(m)})
}

// apiError answers err with its status. A client's mistake is said as it
// is; an internal error is logged, and answered with its text redacted
// (a store error can carry a database address).
func (d *Daemon) apiError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorStatus(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		d.log.Error("admin API", zap.String("path", r.URL.Path), zap.Error(err))
		msg = RedactError(err)
	}
	writeJSON(w, code, map[string]any{"error": msg})
}
