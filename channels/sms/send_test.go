package sms

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
)

func text(id int64, s string) *connector.Message {
	return &connector.Message{ID: id, Direction: connector.ToCustomer, Kind: connector.KindText, Text: s,
		CreatedAt: time.Now()}
}

func waitSent(t *testing.T, w *world, n int) []smstest.Sent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sent, err := w.twilio.WaitSent(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

func TestSend(t *testing.T) {
	w := newWorld(t, setup{})
	sid, err := w.ch.Send(context.Background(), customerNumber, text(1, "Hello from Alice"))
	if err != nil {
		t.Fatal(err)
	}
	sent := waitSent(t, w, 1)
	want := smstest.Sent{SID: sid, AccountSID: w.twilio.AccountSID(), From: companyNumber, To: customerNumber,
		Body: "Hello from Alice", StatusCallback: w.public + "/sms/main/status"}
	got := sent[0]
	got.Status, got.Created = "", time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	// The fake reports sent, then delivered, to our signed status webhook;
	// only delivered is passed on (sent is what the core's mark says).
	eventually(t, "delivered status", func() bool {
		d := w.sink.delivery()
		return len(d) == 1 && d[0].State == connector.DeliveryDelivered
	})
	want2 := []statusCall{{"sms.main", sid, connector.DeliveryDelivered, ""}}
	if diff := cmp.Diff(want2, w.sink.delivery()); diff != "" {
		t.Errorf("DeliveryStatus calls (-want +got):\n%s", diff)
	}
	if h := w.ch.Health(); !h.Ready {
		t.Errorf("Health = %+v", h)
	}
}

func TestSendUndeliveredReportsFailure(t *testing.T) {
	w := newWorld(t, setup{})
	w.twilio.SetUndelivered(customerNumber, 30003)
	sid, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed status", func() bool {
		d := w.sink.delivery()
		return len(d) == 1 && d[0].State == connector.DeliveryFailed
	})
	if got := w.sink.delivery()[0]; got.RemoteID != sid || got.Reason != "twilio ErrorCode 30003 (unreachable destination handset)" {
		t.Errorf("failure = %+v", got)
	}
}

func TestSendOptions(t *testing.T) {
	const msid = "MG0123456789abcdef0123456789abcdef"
	w := newWorld(t, setup{extra: "from = \"\"\nmessaging_service_sid = \"" + msid + "\"\nstatus_callback = false\n"})
	m := text(1, "see attached")
	m.Attachments = []connector.Attachment{{URL: "https://files.example.com/a.png"}, {URL: "https://files.example.com/b.pdf"}}
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err != nil {
		t.Fatal(err)
	}
	got := waitSent(t, w, 1)[0]
	if got.From != "" || got.MessagingServiceSID != msid || got.StatusCallback != "" ||
		!cmp.Equal(got.MediaURLs, []string{"https://files.example.com/a.png", "https://files.example.com/b.pdf"}) {
		t.Errorf("sent %+v", got)
	}
}

func TestSendHTML(t *testing.T) {
	w := newWorld(t, setup{})
	m := text(1, `Hi, I'm <b>Alice</b>.<br>See <a href="https://example.com/faq">our FAQ</a> &ndash; ok?`)
	m.Format = connector.FormatHTML
	if _, err := w.ch.Send(context.Background(), customerNumber, m); err != nil {
		t.Fatal(err)
	}
	if got, want := waitSent(t, w, 1)[0].Body, "Hi, I'm Alice.\nSee our FAQ (https://example.com/faq) – ok?"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestSendEmptyHTMLSendsNothing(t *testing.T) {
	w := newWorld(t, setup{})
	m := text(1, "<p> </p><br>")
	m.Format = connector.FormatHTML
	if sid, err := w.ch.Send(context.Background(), customerNumber, m); err != nil || sid != "" {
		t.Errorf("Send = %q, %v", sid, err)
	}
	if n := len(w.twilio.Sent()); n != 0 {
		t.Errorf("%d sent", n)
	}
}

// TestSendLongHTML: HTML is not split by the router; what is still too long
// once rendered goes as several SMS, and a retry resumes after the parts that
// went out.
func TestSendLongHTML(t *testing.T) {
	w := newWorld(t, setup{})
	m := text(7, "<p>"+strings.Repeat("word ", 400)+"</p>")
	m.Format = connector.FormatHTML
	failed := false
	w.twilio.OnSent(func(smstest.Sent) {
		if !failed {
			failed = true
			w.twilio.FailNext(1, 500, 0, "Internal Server Error")
		}
	})
	_, err := w.ch.Send(context.Background(), customerNumber, m)
	if err == nil || connector.IsPermanent(err) {
		t.Fatalf("first attempt: %v, want a retryable error for the second part", err)
	}
	sid, err := w.ch.Send(context.Background(), customerNumber, m)
	if err != nil {
		t.Fatal(err)
	}
	sent := waitSent(t, w, 2)
	if len(sent) != 2 || sent[1].SID != sid {
		t.Fatalf("sent %d messages, SID %s; want 2 ending with it", len(sent), sid)
	}
	if got := sent[0].Body + " " + sent[1].Body; got != strings.TrimSpace(strings.Repeat("word ", 400)) {
		t.Errorf("parts do not add up: %d + %d runes", len(sent[0].Body), len(sent[1].Body))
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		code      int
		permanent bool
		after     time.Duration // 0: no RetryAfter
		healthy   bool
	}{
		{"rate limited", 429, 20429, false, rateLimitedWait, true},
		{"429 without code", 429, 0, false, rateLimitedWait, true},
		{"pair limit", 400, 14107, false, 100 * time.Millisecond, true}, // recipient_window
		{"opted out", 400, 21610, true, 0, true},
		{"invalid to", 400, 21211, true, 0, true},
		{"not sms-capable", 400, 21614, true, 0, true},
		{"region not enabled", 400, 21408, true, 0, true},
		{"server error", 500, 0, false, 0, true},
		{"unavailable", 503, 20500, false, 0, true},
		{"auth", 401, 20003, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, setup{extra: `recipient_window = "100ms"` + "\n"})
			w.twilio.FailNext(1, tt.status, tt.code, tt.name)
			_, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
			if err == nil {
				t.Fatal("no error")
			}
			if connector.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v", err, !tt.permanent)
			}
			if after, _ := connector.RetryDelay(err); after != tt.after {
				t.Errorf("RetryDelay(%v) = %v, want %v", err, after, tt.after)
			}
			if h := w.ch.Health(); h.Ready != tt.healthy {
				t.Errorf("Health = %+v, want ready %v", h, tt.healthy)
			}
			if n := len(w.twilio.Sent()); n != 0 {
				t.Errorf("%d recorded", n)
			}
			if tt.code == codeOptedOut {
				// Recorded: the next attempt makes no call at all.
				_, err := w.ch.Send(context.Background(), customerNumber, text(2, "hi"))
				if !errors.As(err, new(errOptedOut)) || !connector.IsPermanent(err) {
					t.Errorf("after 21610: %v, want a permanent opted-out error", err)
				}
				return
			}
			// The next attempt goes through and clears the health failure.
			if _, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi")); err != nil {
				t.Fatal(err)
			}
			if h := w.ch.Health(); !h.Ready {
				t.Errorf("Health after a success = %+v", h)
			}
		})
	}
}

func TestSendOptedOutForReal(t *testing.T) {
	w := newWorld(t, setup{})
	w.twilio.SetOptOut(customerNumber, true)
	_, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "21610") {
		t.Errorf("error %v, want permanent 21610", err)
	}
}

func TestSendWrongToken(t *testing.T) {
	w := newWorld(t, setup{token: "0000000000000000ffffffffffffffff"})
	_, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
	if err == nil || connector.IsPermanent(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	h := w.ch.Health()
	if h.Ready || !strings.HasPrefix(h.Detail, "last send failed: ") {
		t.Errorf("Health = %+v", h)
	}
	if strings.Contains(err.Error()+h.Detail, "0000000000000000ffffffffffffffff") {
		t.Errorf("the token shows in %v / %q", err, h.Detail)
	}
}

func TestSendNetworkDown(t *testing.T) {
	// Port 1 refuses: a port freed by closing a listener could be taken
	// again by another test's server before the send (a 404 was seen).
	w := newWorld(t, setup{extra: `api_url = "http://127.0.0.1:1"`})
	_, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
	if err == nil || connector.IsPermanent(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	if _, ok := connector.RetryDelay(err); ok {
		t.Errorf("RetryDelay set on %v", err)
	}
	if h := w.ch.Health(); h.Ready || !strings.Contains(h.Detail, "refused") {
		t.Errorf("Health = %+v", h)
	}
	// Refused before anything went out: nothing to reconcile next time.
	if p := w.record(1); !p.Pending.IsZero() || p.Sent != 0 {
		t.Errorf("progress = %+v", p)
	}
}

func TestSendContextDone(t *testing.T) {
	w := newWorld(t, setup{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.ch.Send(ctx, customerNumber, text(1, "hi")); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n := len(w.twilio.Sent()); n != 0 {
		t.Errorf("%d sent", n)
	}
}

// TestSendUnknownOutcomeReconciled: Twilio records the message but answers
// after request_timeout; Send finds it in the message list and returns its
// SID instead of sending it again.
func TestSendUnknownOutcomeReconciled(t *testing.T) {
	w := newWorld(t, setup{extra: `request_timeout = "300ms"`})
	w.twilio.SetLatency(time.Second)
	go func() { // the list call after the timeout is answered promptly
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := w.twilio.WaitSent(ctx, 1); err == nil {
			time.Sleep(50 * time.Millisecond) // the create has read its latency by now
			w.twilio.SetLatency(0)
		}
	}()
	sid, err := w.ch.Send(context.Background(), customerNumber, text(2, "same words"))
	if err != nil {
		t.Fatal(err)
	}
	sent := w.twilio.Sent()
	if len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want exactly the one new SMS", sid, sent)
	}
	if w.logs.FilterMessage("send outcome was unknown; Twilio has the message").Len() != 1 {
		t.Error("reconciliation not logged")
	}
}

// TestReconcileWindow: only a message with the same body to the same number,
// created since the attempt began, counts.
func TestReconcileWindow(t *testing.T) {
	w := newWorld(t, setup{})
	ctx := context.Background()
	sid, err := w.ch.Send(ctx, customerNumber, text(1, "same words"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.twilio.Inbound(ctx, w.public+"/sms/main", customerNumber, companyNumber, "same words"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name  string
		to    string
		body  string
		start time.Time
		skip  string
		want  string
	}{
		{"found", customerNumber, "same words", now.Add(-time.Second), "", sid},
		{"within clock skew", customerNumber, "same words", now.Add(clockSkew / 2), "", sid},
		{"created before the attempt", customerNumber, "same words", now.Add(5 * time.Second), "", ""},
		{"other body", customerNumber, "other words", now.Add(-time.Second), "", ""},
		{"other number", "+15550000000", "same words", now.Add(-time.Second), "", ""},
		{"an earlier part", customerNumber, "same words", now.Add(-time.Second), sid, ""},
	}
	for _, tt := range tests {
		got, err := w.ch.reconcile(ctx, w.ch.destination(tt.to), tt.body, tt.start, tt.skip)
		if err != nil || got != tt.want {
			t.Errorf("%s: reconcile = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// TestSendUnknownOutcomeReconciledOnRetry: when the list does not show the
// message either, Send returns a retryable error, and the next attempt for
// the same message looks again before sending.
func TestSendUnknownOutcomeReconciledOnRetry(t *testing.T) {
	w := newWorld(t, setup{extra: `request_timeout = "200ms"`})
	w.twilio.SetLatency(time.Second)
	_, err := w.ch.Send(context.Background(), customerNumber, text(3, "are you there?"))
	if err == nil || connector.IsPermanent(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	if h := w.ch.Health(); h.Ready {
		t.Errorf("Health = %+v after a timeout", h)
	}
	w.twilio.SetLatency(0)
	sid, err := w.ch.Send(context.Background(), customerNumber, text(3, "are you there?"))
	if err != nil {
		t.Fatal(err)
	}
	sent := w.twilio.Sent()
	if len(sent) != 1 || sent[0].SID != sid {
		t.Errorf("Send = %s; sent %+v; want exactly one SMS", sid, sent)
	}
	if b, err := w.ch.progress.LoadProgress(context.Background(), 3); b != nil || err != nil {
		t.Errorf("progress kept after success: %q, %v", b, err)
	}
	// A different message with the same words is sent, not reconciled.
	if _, err := w.ch.Send(context.Background(), customerNumber, text(4, "are you there?")); err != nil {
		t.Fatal(err)
	}
	if n := len(w.twilio.Sent()); n != 2 {
		t.Errorf("%d sent, want 2", n)
	}
}

func TestLifecycle(t *testing.T) {
	ch, err := New(connector.ChannelEnv{Instance: instance(`account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Stop(context.Background()); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if h := ch.Health(); h.Ready {
		t.Errorf("Health before Start = %+v", h)
	}
	if err := ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := ch.Health(); !h.Ready {
		t.Errorf("Health after Start = %+v", h)
	}
	if err := ch.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
