package smstest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

func TestCreateRecordsMessage(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	var (
		mu   sync.Mutex
		seen []Sent
	)
	s.OnSent(func(m Sent) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m)
	})
	before := time.Now().Add(-time.Second)

	params := (&openapi.CreateMessageParams{}).
		SetTo("+15557654321").SetFrom("+15551230000").SetBody("héllo").
		SetStatusCallback("https://example.com/sms/main/status").
		SetMediaUrl([]string{"https://example.com/a.png", "https://example.com/b.png"})
	got, err := apiFor(t, s).CreateMessage(params)
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if !strings.HasPrefix(*got.Sid, "MM") || len(*got.Sid) != 34 {
		t.Errorf("sid = %q, want MM (a message with media) + 32 hex", *got.Sid)
	}
	created, err := time.Parse(time.RFC1123Z, *got.DateCreated)
	if err != nil || created.Before(before.Truncate(time.Second)) || !strings.HasSuffix(*got.DateCreated, "+0000") {
		t.Errorf("date_created = %q (%v), want a recent RFC 1123 date in +0000", *got.DateCreated, err)
	}
	uri := "/2010-04-01/Accounts/" + s.AccountSID() + "/Messages/" + *got.Sid
	want := openapi.ApiV2010Message{
		AccountSid: ptr(s.AccountSID()), ApiVersion: ptr("2010-04-01"), Body: ptr("héllo"),
		Direction: ptr("outbound-api"), From: ptr("+15551230000"), To: ptr("+15557654321"),
		NumMedia: ptr("2"), NumSegments: ptr("1"), PriceUnit: ptr("USD"), Status: ptr("queued"),
		Uri: ptr(uri + ".json"), Sid: got.Sid, DateCreated: got.DateCreated, DateUpdated: got.DateCreated,
		SubresourceUris: &map[string]any{"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
	}
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("created message (-want +got):\n%s", diff)
	}

	wantSent := []Sent{{
		SID: *got.Sid, AccountSID: s.AccountSID(), From: "+15551230000", To: "+15557654321",
		Body: "héllo", StatusCallback: "https://example.com/sms/main/status",
		MediaURLs: []string{"https://example.com/a.png", "https://example.com/b.png"},
		Status:    "queued",
	}}
	ignoreCreated := cmpopts.IgnoreFields(Sent{}, "Created")
	if diff := cmp.Diff(wantSent, s.Sent(), ignoreCreated); diff != "" {
		t.Errorf("Sent() (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(wantSent, seen, ignoreCreated); diff != "" {
		t.Errorf("OnSent saw (-want +got):\n%s", diff)
	}
}

func TestCreateWithMessagingServiceIsAccepted(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	got, err := apiFor(t, s).CreateMessage((&openapi.CreateMessageParams{}).
		SetTo("+15557654321").SetMessagingServiceSid("MG0123").SetBody("hi"))
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if *got.Status != "accepted" || got.From != nil || *got.MessagingServiceSid != "MG0123" {
		t.Errorf("status %q, from %v, messaging_service_sid %q; want accepted, null, MG0123",
			*got.Status, got.From, *got.MessagingServiceSid)
	}
}

func TestCreateErrors(t *testing.T) {
	valid := func() *openapi.CreateMessageParams {
		return (&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi")
	}
	tests := []struct {
		name       string
		user, pass string // empty: the right ones
		params     *openapi.CreateMessageParams
		status     int
		code       int
	}{
		{"wrong token", "", "0badbad0", valid(), 401, 20003},
		{"other account", "AC00000000000000000000000000000000", "", valid(), 401, 20003},
		{"other account in path", "", "", valid().SetPathAccountSid("AC11111111111111111111111111111111"), 401, 20003},
		{"no To", "", "", (&openapi.CreateMessageParams{}).SetFrom("+15551230000").SetBody("hi"), 400, 21604},
		{"no From", "", "", (&openapi.CreateMessageParams{}).SetTo("+15557654321").SetBody("hi"), 400, 21603},
		{"bad To", "", "", valid().SetTo("5557654321"), 400, 21211},
		{"no body", "", "", valid().SetBody(""), 400, 21602},
		{"body too long", "", "", valid().SetBody(strings.Repeat("é", 1601)), 400, 21617},
		{"opted out", "", "", valid().SetTo("+15550000000"), 400, 21610},
	}
	s := start(t, Config{StatusDelay: time.Hour})
	s.SetOptOut("+15550000000", true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pass := s.AccountSID(), s.AuthToken()
			if tt.user != "" {
				user = tt.user
			}
			if tt.pass != "" {
				pass = tt.pass
			}
			_, err := api(t, s, user, pass, 5*time.Second).CreateMessage(tt.params)
			re := restError(t, err)
			if re.Status != tt.status || re.Code != tt.code || re.Message == "" || !strings.HasSuffix(re.MoreInfo, "/errors/"+itoa(tt.code)) {
				t.Errorf("error = %+v, want status %d, code %d", re, tt.status, tt.code)
			}
		})
	}
	if n := len(s.Sent()); n != 0 {
		t.Errorf("%d messages recorded, want none", n)
	}
}

func TestBodyAtLimitIsAccepted(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	got, err := apiFor(t, s).CreateMessage((&openapi.CreateMessageParams{}).
		SetTo("+15557654321").SetFrom("+15551230000").SetBody(strings.Repeat("é", 1600)))
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if *got.NumSegments != "11" { // é is GSM-7: 1600 septets / 153
		t.Errorf("num_segments = %s, want 11", *got.NumSegments)
	}
}

func TestFailNext(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	c := apiFor(t, s)
	valid := (&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi")
	invalid := (&openapi.CreateMessageParams{}).SetFrom("+15551230000").SetBody("hi")

	s.FailNext(2, 429, 20429, "Too Many Requests")
	for i, p := range []*openapi.CreateMessageParams{invalid, valid} {
		_, err := c.CreateMessage(p)
		if re := restError(t, err); re.Status != 429 || re.Code != 20429 || re.Message != "Too Many Requests" {
			t.Errorf("create %d: error %+v, want 429/20429", i, re)
		}
	}
	s.FailNext(1, 500, 0, "Internal Server Error")
	if _, err := c.CreateMessage(valid); restError(t, err).Status != 500 {
		t.Errorf("create after FailNext(500): %v, want status 500", err)
	}
	if _, err := c.CreateMessage(valid); err != nil {
		t.Fatalf("create after the failures: %v", err)
	}
	if n := len(s.Sent()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
}

func TestFetch(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	c := apiFor(t, s)
	m, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.FetchMessage(*m.Sid, nil)
	if err != nil {
		t.Fatalf("FetchMessage: %v", err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("fetched (-created +fetched):\n%s", diff)
	}
	_, err = c.FetchMessage("SM00000000000000000000000000000000", nil)
	if re := restError(t, err); re.Status != 404 || re.Code != 20404 {
		t.Errorf("fetch unknown: %+v, want 404/20404", re)
	}
}

func TestList(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Millisecond})
	c := apiFor(t, s)
	const us, alice, bob = "+15551230000", "+15557654321", "+15559876543"
	for _, to := range []string{alice, bob, alice, alice} {
		if _, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo(to).SetFrom(us).SetBody("to " + to)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Inbound(t.Context(), newHook(t).srv.URL, alice, us, "hello"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, "delivered")
	all := s.Sent()
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Minute)

	tests := []struct {
		name   string
		params *openapi.ListMessageParams
		want   []string // sids, newest first; "in" is the inbound message
	}{
		{"all in pages of 2", (&openapi.ListMessageParams{}).SetPageSize(2), []string{"in", all[3].SID, all[2].SID, all[1].SID, all[0].SID}},
		{"To", (&openapi.ListMessageParams{}).SetTo(alice), []string{all[3].SID, all[2].SID, all[0].SID}},
		{"From", (&openapi.ListMessageParams{}).SetFrom(alice), []string{"in"}},
		{"To and DateSent>", (&openapi.ListMessageParams{}).SetTo(bob).SetDateSentAfter(past), []string{all[1].SID}},
		{"DateSent> in the future", (&openapi.ListMessageParams{}).SetDateSentAfter(future), nil},
		{"DateSent< in the past", (&openapi.ListMessageParams{}).SetDateSentBefore(past), nil},
		{"Limit", (&openapi.ListMessageParams{}).SetTo(alice).SetLimit(1), []string{all[3].SID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ListMessage(tt.params)
			if err != nil {
				t.Fatalf("ListMessage: %v", err)
			}
			var sids []string
			for _, m := range got {
				sid := *m.Sid
				if *m.Direction == "inbound" {
					sid = "in"
				}
				sids = append(sids, sid)
			}
			if diff := cmp.Diff(tt.want, sids); diff != "" {
				t.Errorf("listed sids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListDateFilterSkipsQueued(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	c := apiFor(t, s)
	if _, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi")); err != nil {
		t.Fatal(err)
	}
	got, err := c.ListMessage((&openapi.ListMessageParams{}).SetDateSentAfter(time.Now().Add(-time.Hour)))
	if err != nil || len(got) != 0 {
		t.Errorf("DateSent> list of a queued message = %d messages, %v; want none", len(got), err)
	}
	got, err = c.ListMessage((&openapi.ListMessageParams{}).SetTo("+15557654321"))
	if err != nil || len(got) != 1 || got[0].DateSent != nil {
		t.Errorf("To list = %d messages, %v; want the queued one without date_sent", len(got), err)
	}
}

func TestListPageDocument(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	c := apiFor(t, s)
	for range 3 {
		if _, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi")); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.PageMessage((&openapi.ListMessageParams{}).SetTo("+15557654321").SetPageSize(2), "", "")
	if err != nil {
		t.Fatalf("PageMessage: %v", err)
	}
	base := "/2010-04-01/Accounts/" + s.AccountSID() + "/Messages.json?"
	want := openapi.ListMessageResponse{
		End: 1, Page: 0, PageSize: 2, Start: 0,
		FirstPageUri: base + "Page=0&PageSize=2&To=%2B15557654321",
		Uri:          base + "Page=0&PageSize=2&To=%2B15557654321",
		NextPageUri:  ptr(base + "Page=1&PageSize=2&To=%2B15557654321"),
	}
	if diff := cmp.Diff(want, *page, cmpopts.IgnoreFields(openapi.ListMessageResponse{}, "Messages")); diff != "" || len(page.Messages) != 2 {
		t.Errorf("page (-want +got):\n%s\n%d messages", diff, len(page.Messages))
	}
}

func TestLatencyLeavesUnknownOutcome(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	s.SetLatency(time.Second)
	impatient := api(t, s, s.AccountSID(), s.AuthToken(), 100*time.Millisecond)
	_, err := impatient.CreateMessage((&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi"))
	if err == nil {
		t.Fatal("CreateMessage with 1s latency and a 100ms timeout succeeded")
	}
	s.SetLatency(0)
	got, err := apiFor(t, s).ListMessage((&openapi.ListMessageParams{}).SetTo("+15557654321"))
	if err != nil || len(got) != 1 {
		t.Fatalf("list after the timeout: %d messages, %v; want the message created anyway", len(got), err)
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	s.SetLatency(200 * time.Millisecond)
	begin := time.Now()
	if _, err := apiFor(t, s).FetchMessage("SM00000000000000000000000000000000", nil); err == nil {
		t.Fatal("fetch of an unknown message succeeded")
	}
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("answer came after %v, want at least 200ms", d)
	}
}

func TestWaitSent(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Hour})
	c := apiFor(t, s)
	created := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo("+15557654321").SetFrom("+15551230000").SetBody("hi"))
		created <- err
	}()
	got, err := s.WaitSent(ctxTimeout(t, 5*time.Second), 1)
	if err != nil || len(got) != 1 || got[0].Body != "hi" {
		t.Fatalf("WaitSent(1) = %v, %v; want the message", got, err)
	}
	if err := <-created; err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	_, err = s.WaitSent(ctxTimeout(t, 50*time.Millisecond), 2)
	if err == nil || !strings.Contains(err.Error(), "waiting for 2 sent messages, have 1") || !errorIs(err, context.DeadlineExceeded) {
		t.Errorf("WaitSent(2) error = %v, want a deadline error saying it has 1", err)
	}
}

func TestUnknownPath(t *testing.T) {
	s := start(t, Config{})
	req, _ := http.NewRequest("GET", s.URL()+"/2010-04-01/Accounts/"+s.AccountSID()+"/Calls.json", nil)
	req.SetBasicAuth(s.AccountSID(), s.AuthToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != 404 {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

// waitStatus waits until every sent message has the given status.
func waitStatus(t *testing.T, s *Server, status string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		done := true
		for _, m := range s.Sent() {
			done = done && m.Status == status
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages never all %s: %+v", status, s.Sent())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
