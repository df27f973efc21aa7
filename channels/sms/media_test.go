package sms

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
)

// get fetches a link as an agent's browser would.
func (w *world) get(link string) (*http.Response, string) {
	w.t.Helper()
	resp, err := w.client.Get(link)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A customer's MMS reaches the agent as connectord links; opening one
// fetches the file from Twilio with the account's credentials, and follows
// Twilio's redirect to its CDN without them.
func TestInboundMediaLinks(t *testing.T) {
	w := newWorld(t, setup{twilio: smstest.Config{MediaRedirect: true}})
	photo := []byte("\xff\xd8\xff a jpeg")
	_, status, err := w.twilio.InboundMedia(context.Background(), w.public+"/sms/main", customerNumber, companyNumber,
		"look", []smstest.Media{{ContentType: "image/jpeg", Data: photo}, {ContentType: "application/pdf", Data: []byte("%PDF")}})
	if err != nil || status != http.StatusOK {
		t.Fatal(status, err)
	}
	atts := w.sink.received()[0].Attachments
	if len(atts) != 2 {
		t.Fatalf("attachments %+v", atts)
	}
	for _, a := range atts {
		if !strings.HasPrefix(a.URL, w.public+"/sms/main/media/ME") || strings.Contains(a.URL, w.twilio.URL()) ||
			strings.Contains(a.URL, w.twilio.AccountSID()) {
			t.Errorf("link %s: not connectord's, or tells where the file is", a.URL)
		}
	}
	resp, body := w.get(atts[0].URL)
	if resp.StatusCode != http.StatusOK || body != string(photo) || resp.Header.Get("Content-Type") != "image/jpeg" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("link answered %d %q %v", resp.StatusCode, body, resp.Header)
	}
	fetches := w.twilio.MediaFetches()
	if len(fetches) != 2 || !fetches[0].Authorized || fetches[0].Status != http.StatusTemporaryRedirect ||
		!fetches[1].CDN || fetches[1].Credentials {
		t.Errorf("Twilio saw %+v; want an authorized fetch, then the CDN without credentials", fetches)
	}
	// A link changed in any part is refused.
	if resp, _ := w.get(strings.Replace(atts[0].URL, "exp=", "exp=1", 1)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a changed link answered %d", resp.StatusCode)
	}
	if resp, _ := w.get(strings.Replace(atts[0].URL, ".jpg", ".exe", 1)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a renamed link answered %d", resp.StatusCode)
	}
}

func TestInboundMediaTooLarge(t *testing.T) {
	w := newWorld(t, setup{extra: "max_media_bytes = 8\n"})
	w.twilio.InboundMedia(context.Background(), w.public+"/sms/main", customerNumber, companyNumber,
		"", []smstest.Media{{ContentType: "image/png", Data: []byte("0123456789")}})
	resp, _ := w.get(w.sink.received()[0].Attachments[0].URL)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a file over max_media_bytes answered %d", resp.StatusCode)
	}
}

func TestMediaLinkExpires(t *testing.T) {
	w := newWorld(t, setup{extra: `media_link_ttl = "1s"` + "\n"})
	w.twilio.InboundMedia(context.Background(), w.public+"/sms/main", customerNumber, companyNumber,
		"", []smstest.Media{{ContentType: "image/png", Data: []byte("png")}})
	link := w.sink.received()[0].Attachments[0].URL
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := w.get(link)
		if resp.StatusCode == http.StatusGone {
			return
		}
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("link answered %d, want 200 until it expires, then 410", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An agent's files go as MediaUrl; one behind credentials goes through a
// connectord link that Twilio can fetch; files beyond Twilio's limits are
// left out with a notice.
func TestOutboundMedia(t *testing.T) {
	w := newWorld(t, setup{twilio: smstest.Config{FetchMedia: true}})
	private := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "agent" || p != "s3cret" {
			http.Error(rw, "who are you", http.StatusUnauthorized)
			return
		}
		rw.Header().Set("Content-Type", "image/png")
		io.WriteString(rw, "png data")
	}))
	defer private.Close()
	public := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/pdf")
		io.WriteString(rw, "%PDF")
	}))
	defer public.Close()
	privateURL := strings.Replace(private.URL, "http://", "http://agent:s3cret@", 1) + "/shot.png"
	m := text(1, "here you go")
	m.Attachments = []connector.Attachment{
		{URL: public.URL + "/terms.pdf", ContentType: "application/pdf"},
		{URL: privateURL, Name: "shot.png", ContentType: "image/png"},
		{URL: public.URL + "/tool.zip", Name: "tool.zip", ContentType: "application/zip"},
		{URL: public.URL + "/big.mov", Name: "big.mov", ContentType: "video/quicktime", Size: 6 << 20},
	}
	sid, err := w.ch.Send(context.Background(), customerNumber, m)
	if err != nil {
		t.Fatal(err)
	}
	sent := w.twilio.Sent()
	if len(sent) != 2 || sent[0].Body != "here you go" {
		t.Fatalf("sent %+v; want the text, then the notice with the media", sent)
	}
	last, _ := w.twilio.Get(sid)
	want := "(Not sent by SMS: tool.zip, a file type MMS does not carry (application/zip).)\n" +
		"(Not sent by SMS: big.mov, larger than 5 MB in all.)"
	if last.Body != want {
		t.Errorf("notice %q, want %q", last.Body, want)
	}
	if len(last.MediaURLs) != 2 || last.MediaURLs[0] != public.URL+"/terms.pdf" ||
		!strings.HasPrefix(last.MediaURLs[1], w.public+"/sms/main/media/") || strings.Contains(last.MediaURLs[1], "s3cret") {
		t.Errorf("MediaUrl %q", last.MediaURLs)
	}
	eventually(t, "Twilio's downloads", func() bool { return len(w.twilio.MediaFetched(sid)) == 2 })
	for _, f := range w.twilio.MediaFetched(sid) {
		if f.Status != http.StatusOK || f.ErrorCode != 0 {
			t.Errorf("Twilio fetched %s: %d (%s), error %d", f.URL, f.Status, f.Err, f.ErrorCode)
		}
	}
}

// Catch-up brings a missed MMS with its media (the list leaves them out).
func TestCatchUpMedia(t *testing.T) {
	rc := &fakeReceipts{}
	w := newWorld(t, setup{receipts: rc, extra: `catch_up_interval = "0s"` + "\n"})
	ctx := context.Background()
	sid, _, _ := w.twilio.Inbound(ctx, w.public+"/sms/main", customerNumber, companyNumber, "stored")
	rc.set(sid, time.Now())
	w.twilio.InboundOffline(customerNumber, companyNumber, "a photo", smstest.Media{ContentType: "image/gif", Data: []byte("GIF89a")})
	if err := w.ch.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := w.sink.received()
	if len(got) != 2 || len(got[1].Attachments) != 1 {
		t.Fatalf("relayed %+v", got)
	}
	if resp, body := w.get(got[1].Attachments[0].URL); resp.StatusCode != http.StatusOK || body != "GIF89a" {
		t.Errorf("link answered %d %q", resp.StatusCode, body)
	}
}
