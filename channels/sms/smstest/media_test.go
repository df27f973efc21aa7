package smstest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// get fetches u with the given basic-auth credentials (none when user is empty),
// following no redirect, and returns the status, Content-Type and body.
func get(t *testing.T, u, user, pass string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusTemporaryRedirect {
		return resp.StatusCode, resp.Header.Get("Location"), body
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func TestInboundMedia(t *testing.T) {
	png, vcf := []byte("\x89PNG fake"), []byte("BEGIN:VCARD\r\nEND:VCARD\r\n")
	media := []Media{{"image/png", png}, {"text/vcard", vcf}}
	tests := []struct {
		name       string
		cfg        Config
		user, pass string // "!": the right one
		status     int
		authorized bool
	}{
		{"no credentials", Config{}, "", "", 401, false},
		{"wrong token", Config{}, "!", "0badbad0", 401, false},
		{"account and token", Config{}, "!", "!", 200, true},
		{"public media without credentials", Config{PublicMedia: true}, "", "", 200, false},
		{"redirect to the CDN", Config{MediaRedirect: true}, "!", "!", 307, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.cfg)
			h := newHook(t)
			sid, status, err := s.InboundMedia(t.Context(), h.srv.URL, customer, ours, "look", media)
			if err != nil || status != 200 || !strings.HasPrefix(sid, "MM") {
				t.Fatalf("InboundMedia = %s, %d, %v; want an MM sid and 200", sid, status, err)
			}
			form := h.wait(t, 1)[0].form
			if form.Get("NumMedia") != "2" || form.Get("MediaContentType0") != "image/png" || form.Get("MediaContentType1") != "text/vcard" {
				t.Errorf("webhook form %v: want NumMedia 2 and both content types", form)
			}
			prefix := s.URL() + "/2010-04-01/Accounts/" + s.AccountSID() + "/Messages/" + sid + "/Media/ME"
			if !strings.HasPrefix(form.Get("MediaUrl0"), prefix) || !strings.HasPrefix(form.Get("MediaUrl1"), prefix) {
				t.Errorf("media URLs %q, %q; want under %s", form.Get("MediaUrl0"), form.Get("MediaUrl1"), prefix)
			}
			user, pass := tt.user, tt.pass
			if user == "!" {
				user = s.AccountSID()
			}
			if pass == "!" {
				pass = s.AuthToken()
			}
			got, ct, body := get(t, form.Get("MediaUrl0"), user, pass)
			if got != tt.status {
				t.Fatalf("GET media = %d, want %d", got, tt.status)
			}
			want := []MediaFetch{{MessageSID: sid, MediaSID: form.Get("MediaUrl0")[len(prefix)-2:], Credentials: user != "",
				Authorized: tt.authorized, Status: tt.status}}
			switch got {
			case 200:
				if ct != "image/png" || !bytes.Equal(body, png) {
					t.Errorf("media = %q %q, want the PNG", ct, body)
				}
			case 307: // ct is the Location: a one-time URL that needs no credentials
				if s2, _, body := get(t, ct, "", ""); s2 != 200 || !bytes.Equal(body, png) {
					t.Errorf("CDN GET = %d %q, want the PNG", s2, body)
				}
				if s3, _, _ := get(t, ct, "", ""); s3 != 404 {
					t.Errorf("second CDN GET = %d, want 404", s3)
				}
				want = append(want,
					MediaFetch{MessageSID: sid, MediaSID: want[0].MediaSID, CDN: true, Status: 200},
					MediaFetch{CDN: true, Status: 404})
			}
			ignore := cmpopts.IgnoreFields(MediaFetch{}, "Path", "RemoteAddr", "UserAgent", "Time")
			if diff := cmp.Diff(want, s.MediaFetches(), ignore); diff != "" {
				t.Errorf("MediaFetches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMediaResources(t *testing.T) {
	s := start(t, Config{})
	sid := s.InboundOffline(customer, ours, "", Media{"image/jpeg", []byte("jpeg")})
	c := apiFor(t, s)
	list, err := c.ListMedia(sid, nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListMedia = %v, %v; want one", list, err)
	}
	m := list[0]
	want := openapi.ApiV2010Media{
		AccountSid: ptr(s.AccountSID()), ContentType: ptr("image/jpeg"), ParentSid: ptr(sid), Sid: m.Sid,
		Uri:         ptr("/2010-04-01/Accounts/" + s.AccountSID() + "/Messages/" + sid + "/Media/" + *m.Sid + ".json"),
		DateCreated: m.DateCreated, DateUpdated: m.DateCreated,
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("media (-want +got):\n%s", diff)
	}
	got, err := c.FetchMedia(sid, *m.Sid, nil)
	if err != nil || !cmp.Equal(*got, m) {
		t.Errorf("FetchMedia = %+v, %v; want the listed one", got, err)
	}
	msg, err := c.FetchMessage(sid, nil)
	if err != nil || *msg.NumMedia != "1" || *msg.Direction != "inbound" {
		t.Errorf("FetchMessage = %+v, %v; want inbound with num_media 1", msg, err)
	}
	if len(s.MediaFetches()) != 0 {
		t.Errorf("API calls were recorded as media fetches: %+v", s.MediaFetches())
	}
	if _, _, err := s.InboundMedia(t.Context(), "http://127.0.0.1:1/", customer, ours, "", make([]Media, 11)); err == nil {
		t.Error("InboundMedia with 11 files succeeded")
	}
}

func TestOutboundMedia(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3<<20)
	files := http.NewServeMux()
	serve := func(path, ct string, body []byte) {
		files.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			w.Write(body)
		})
	}
	serve("/a.png", "image/png", []byte("png"))
	serve("/card.vcf", "text/vcard; charset=utf-8", []byte("BEGIN:VCARD"))
	serve("/page.html", "text/html", []byte("<p>"))
	serve("/big.jpg", "image/jpeg", big)
	serve("/huge.jpg", "image/jpeg", append(big, big...))
	fs := httptest.NewServer(files)
	t.Cleanup(fs.Close)

	tests := []struct {
		name   string
		paths  []string
		status string
		code   int
		codes  []int // per file
	}{
		{"image and card", []string{"/a.png", "/card.vcf"}, "delivered", 0, []int{0, 0}},
		{"not found", []string{"/a.png", "/missing.png"}, "failed", 11200, []int{0, 11200}},
		{"HTML", []string{"/page.html"}, "failed", 12300, []int{12300}},
		{"one file over 5 MB", []string{"/huge.jpg"}, "failed", 11751, []int{11751}},
		{"two files over 5 MB together", []string{"/big.jpg", "/big.jpg"}, "failed", 11751, []int{0, 11751}},
	}
	s := start(t, Config{StatusDelay: time.Millisecond, FetchMedia: true})
	c := apiFor(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var urls []string
			for _, p := range tt.paths {
				urls = append(urls, fs.URL+p)
			}
			m, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo(customer).SetFrom(ours).SetMediaUrl(urls))
			if err != nil {
				t.Fatal(err)
			}
			waitFinal(t, s, *m.Sid, tt.status, tt.code)
			got := s.MediaFetched(*m.Sid)
			var codes []int
			for i, r := range got {
				codes = append(codes, r.ErrorCode)
				if r.URL != urls[i] || r.Size > maxMediaBytes+1 {
					t.Errorf("result %d = %+v", i, r)
				}
			}
			if diff := cmp.Diff(tt.codes, codes); diff != "" {
				t.Errorf("per-file codes (-want +got):\n%s\n%+v", diff, got)
			}
		})
	}
	if r := s.MediaFetched(s.Sent()[0].SID); r[0].Status != 200 || r[0].ContentType != "image/png" || r[0].Size != 3 {
		t.Errorf("first file %+v, want 200 image/png of 3 bytes", r[0])
	}
}

func TestCreateMediaErrors(t *testing.T) {
	tests := []struct {
		name string
		urls []string
		code int
	}{
		{"no scheme", []string{"example.com/a.png"}, 21620},
		{"ftp", []string{"ftp://example.com/a.png"}, 21620},
		{"no host", []string{"https:///a.png"}, 21620},
		{"eleven files", slices.Repeat([]string{"https://example.com/a.png"}, 11), 21623},
	}
	s := start(t, Config{StatusDelay: time.Hour})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apiFor(t, s).CreateMessage((&openapi.CreateMessageParams{}).SetTo(customer).SetFrom(ours).SetMediaUrl(tt.urls))
			if re := restError(t, err); re.Status != 400 || re.Code != tt.code {
				t.Errorf("error %+v, want 400/%d", re, tt.code)
			}
		})
	}
	if n := len(s.Sent()); n != 0 {
		t.Errorf("%d messages recorded, want none", n)
	}
}
