package connector

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseListQuery(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query   string
		want    ConversationQuery
		wantErr string // the start of the error, naming the parameter
	}{
		{"", ConversationQuery{Limit: 100}, ""},
		{"state=open&channel=sms.main&vendor=whoson.sales&limit=5&before=42",
			ConversationQuery{Open: true, Channel: "sms.main", Vendor: "whoson.sales", Limit: 5, Before: 42}, ""},
		{"state=active", ConversationQuery{State: StateActive, Limit: 100}, ""},
		{"older_than=1h&newer_than=24h",
			ConversationQuery{CreatedBefore: now.Add(-time.Hour), CreatedAfter: now.Add(-24 * time.Hour), Limit: 100}, ""},
		{"stuck=true", ConversationQuery{Limit: 100,
			Stuck: &StuckRule{WaitingBefore: now.Add(-time.Minute), FailedSince: now.Add(-time.Hour)}}, ""},
		{"stuck=1&stuck_after=5m&failed_within=10m", ConversationQuery{Limit: 100,
			Stuck: &StuckRule{WaitingBefore: now.Add(-5 * time.Minute), FailedSince: now.Add(-10 * time.Minute)}}, ""},
		{"stuck=false", ConversationQuery{Limit: 100}, ""},
		{"limit=1000", ConversationQuery{Limit: 1000}, ""},
		{"state=closed", ConversationQuery{}, "state: "},
		{"limit=0", ConversationQuery{}, "limit: "},
		{"limit=1001", ConversationQuery{}, "limit: "},
		{"limit=ten", ConversationQuery{}, "limit: "},
		{"before=-3", ConversationQuery{}, "before: "},
		{"older_than=yesterday", ConversationQuery{}, "older_than: "},
		{"newer_than=-1h", ConversationQuery{}, "newer_than: "},
		{"stuck=maybe", ConversationQuery{}, "stuck: "},
		{"stuck_after=5m", ConversationQuery{}, "stuck_after: needs stuck=true"},
		{"stuck=true&failed_within=0s", ConversationQuery{}, "failed_within: "},
		{"colour=red", ConversationQuery{}, "colour: unknown parameter"},
		{"state=open&state=ended", ConversationQuery{}, "state: given more than once"},
		{"channel=" + strings.Repeat("x", 257), ConversationQuery{}, "channel: "},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseListQuery(v, now)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || errorStatus(err) != http.StatusBadRequest {
					t.Fatalf("error %v (status %d), want one starting %q with 400", err, errorStatus(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("query mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzParseListQuery: any query string parses or is refused with a 400,
// and what parses stays within the API's bounds.
func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "state=open&limit=5", "stuck=true&stuck_after=1ms", "before=9&older_than=1h", "limit=99999999999999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := parseListQuery(v, now)
		if err != nil {
			if errorStatus(err) != http.StatusBadRequest {
				t.Fatalf("%q: error %v is not a 400", s, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > maxListLimit || q.Before < 0 || len(q.Channel) > maxFilterValue || len(q.Vendor) > maxFilterValue {
			t.Fatalf("%q parsed out of bounds: %+v", s, q)
		}
	})
}

func TestAdminAuth(t *testing.T) {
	const token = "s3cret-token-0123456789"
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, tc := range []struct {
		name, path string
		header     func(r *http.Request)
		want       int
	}{
		{"livez without a token", "/livez", nil, 200},
		{"readyz without a token", "/readyz", nil, 200},
		{"api without a token", "/api/v1/status", nil, 401},
		{"metrics without a token", "/metrics", nil, 401},
		{"status page without a token", "/status", nil, 401},
		{"a wrong token", "/api/v1/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"the token with a suffix", "/api/v1/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token+"x") }, 401},
		{"an empty bearer", "/api/v1/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, 401},
		{"the token", "/api/v1/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, 200},
		{"the token, scheme in lower case", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+token) }, 200},
		{"basic with the token", "/status", func(r *http.Request) { r.SetBasicAuth("operator", token) }, 200},
		{"basic with another password", "/status", func(r *http.Request) { r.SetBasicAuth(token, "x") }, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.path, nil)
			if tc.header != nil {
				tc.header(r)
			}
			w := httptest.NewRecorder()
			adminAuth(Secret(token), ok).ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if tc.want == 401 && len(w.Header().Values("WWW-Authenticate")) != 2 {
				t.Errorf("401 without both challenges: %q", w.Header().Values("WWW-Authenticate"))
			}
		})
	}
	t.Run("no token set", func(t *testing.T) {
		w := httptest.NewRecorder()
		adminAuth("", ok).ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/status", nil))
		if w.Code != 200 {
			t.Errorf("status %d without a configured token, want 200", w.Code)
		}
	})
}

func TestAdminListenNeedsToken(t *testing.T) {
	for _, tc := range []struct {
		listen, token string
		wantErr       string
	}{
		{"127.0.0.1:9464", "", ""},
		{"[::1]:9464", "", ""},
		{"localhost:9464", "", ""},
		{"", "", ""},
		{"0.0.0.0:9464", "", "http.admin_listen"},
		{":9464", "", "http.admin_listen"},
		{"10.0.0.5:9464", "", "http.admin_listen"},
		{"admin.example.com:9464", "", "http.admin_listen"},
		{"10.0.0.5:9464", "0123456789abcdef", ""},
		{"127.0.0.1:9464", "short", "http.admin_token"},
	} {
		errs := HTTPConfig{AdminListen: tc.listen, AdminToken: Secret(tc.token)}.validateAdminAuth()
		got := ""
		if len(errs) > 0 {
			got = errs[0].(*ConfigError).Path
		}
		if got != tc.wantErr || len(errs) > 1 {
			t.Errorf("admin_listen %q, token %q: errors %v, want one at %q", tc.listen, tc.token, errs, tc.wantErr)
		}
	}
}

func TestBuildInfoSettings(t *testing.T) {
	got := BuildInfo{Version: "", GoVersion: "go1"}.withSettings(nil)
	if got.Version != "(devel)" {
		t.Errorf("no version and no settings: %q", got.Version)
	}
	b := BuildInfo{Version: "1.4.0", GoVersion: "go1"}
	got = b.withSettings(settings("vcs.revision", "abc123", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true"))
	want := BuildInfo{Version: "1.4.0", Revision: "abc123", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Modified: true, GoVersion: "go1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("build info mismatch (-want +got):\n%s", d)
	}
	if ReadBuildInfo("9.9.9").Version != "9.9.9" {
		t.Error("the version given does not win over the module's")
	}
}

func settings(kv ...string) []debug.BuildSetting {
	var out []debug.BuildSetting
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
	}
	return out
}
