package medialink

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// parse splits a link into its path parts under base and its query.
func parse(t *testing.T, base, link string) (id, name string, q url.Values) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), strings.TrimPrefix(base, "https://h"))
	if !ok {
		t.Fatalf("%s is not under %s", link, base)
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	id, _ = url.PathUnescape(parts[0])
	name, _ = url.PathUnescape(parts[1])
	return id, name, u.Query()
}

func TestRoundTripAndRefusals(t *testing.T) {
	const base = "https://h/sms/main/media"
	const src = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
	s := New("token", "sms.main", time.Hour)
	link, err := s.URL(base, "ME1", "photo 1.jpg", src, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(link, "twilio") || strings.Contains(link, "AC1") {
		t.Errorf("link %s tells where the file is", link)
	}
	id, name, q := parse(t, base, link)
	if got, status := s.Check(id, name, q, now.Add(time.Minute)); got != src || status != 0 {
		t.Fatalf("Check = %q, %d", got, status)
	}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for key, vs := range q {
			c[key] = append([]string(nil), vs...)
		}
		c.Set(k, v)
		return c
	}
	tests := []struct {
		name     string
		s        *Signer
		id, file string
		q        url.Values
		at       time.Time
		want     int
	}{
		{"expired", s, id, name, q, now.Add(2 * time.Hour), http.StatusGone},
		{"another id", s, "ME2", name, q, now, http.StatusForbidden},
		{"another name", s, id, "photo 2.jpg", q, now, http.StatusForbidden},
		{"a later expiry", s, id, name, with("exp", "99999999999"), now, http.StatusForbidden},
		{"exp spelled twice", s, id, name, with("exp", "0"+q.Get("exp")), now, http.StatusForbidden},
		{"a flipped token", s, id, name, with("l", flip(q.Get("l"))), now, http.StatusForbidden},
		{"padding", s, id, name, with("l", q.Get("l")+"="), now, http.StatusForbidden},
		{"an extra parameter", s, id, name, with("x", "1"), now, http.StatusForbidden},
		{"no token", s, id, name, url.Values{"exp": q["exp"]}, now, http.StatusForbidden},
		{"another secret", New("token2", "sms.main", time.Hour), id, name, q, now, http.StatusForbidden},
		{"another purpose", New("token", "sms.other", time.Hour), id, name, q, now, http.StatusForbidden},
		{"NUL", s, id + "\x00", name, q, now, http.StatusForbidden},
	}
	for _, tt := range tests {
		if got, status := tt.s.Check(tt.id, tt.file, tt.q, tt.at); status != tt.want || got != "" {
			t.Errorf("%s: Check = %q, %d; want %d", tt.name, got, status, tt.want)
		}
	}
	if _, err := s.URL(base, "a\x00", "b", src, now); err == nil {
		t.Error("a NUL in id was accepted")
	}
	if _, err := s.URL(base, "a", "b", strings.Repeat("x", MaxSource+1), now); err == nil {
		t.Error("a source over MaxSource was accepted")
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}

func TestServe(t *testing.T) {
	resp := func(body string, length int64) *http.Response {
		return &http.Response{Header: http.Header{"Content-Type": {"image/png"}}, ContentLength: length,
			Body: io.NopCloser(strings.NewReader(body))}
	}
	rec := httptest.NewRecorder()
	if n, err := Serve(rec, resp("abc", 3), "a.png", 10); err != nil || n != 3 {
		t.Fatalf("Serve = %d, %v", n, err)
	}
	h := rec.Header()
	if rec.Body.String() != "abc" || h.Get("Content-Type") != "image/png" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("answer %q with %v", rec.Body.String(), h)
	}
	rec = httptest.NewRecorder()
	if _, err := Serve(rec, resp("abcdef", 6), "a.png", 5); err != nil || rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a file over the bound by its length: %d, %v", rec.Code, err)
	}
	rec = httptest.NewRecorder()
	if _, err := Serve(rec, resp("abcdef", -1), "a.png", 5); err == nil {
		t.Error("a file over the bound without a length: no error")
	}
	r := resp("", -1)
	r.Body = io.NopCloser(iotest.ErrReader(errors.New("cut")))
	if _, err := Serve(httptest.NewRecorder(), r, "a.png", 5); err == nil {
		t.Error("a failed copy: no error")
	}
}

// FuzzCheck: whatever a link's holder sends, Check never panics, accepts
// nothing it did not make, and returns at most MaxSource bytes.
func FuzzCheck(f *testing.F) {
	s := New("token", "fuzz", time.Hour)
	link, _ := s.URL("https://h/m", "ME1", "a.jpg", "https://api.twilio.com/x", now)
	u, _ := url.Parse(link)
	f.Add("ME1", "a.jpg", u.RawQuery)
	f.Add("ME1", "a.jpg", "l=AAAA&exp=1")
	f.Add("", "", "l=&exp=&l=")
	f.Fuzz(func(t *testing.T, id, name, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		src, status := s.Check(id, name, q, now)
		if len(src) > MaxSource {
			t.Fatalf("%d bytes out", len(src))
		}
		if status == 0 && (src != "https://api.twilio.com/x" || id != "ME1" || name != "a.jpg") {
			t.Fatalf("accepted %q %q -> %q", id, name, src)
		}
	})
}
