package main

// End-to-end tests of the SMS channel as carriers and Twilio expect it
// (issue 17): keywords and opt-outs, segments, pacing and several numbers,
// MMS links, catch-up after downtime, signatures through a proxy. The real
// binary against the fake Twilio and the fake WhosOn.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/segment"
	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

const secondNumber = "+15551230001"

// carrierWorld is newWorld with a fake Twilio configured as tw, more keys
// for [channels.sms.main] (smsKeys) and, when public is not "", another
// http.public_url than the listener's own address.
func carrierWorld(t *testing.T, tw smstest.Config, op whosontest.Operator, smsKeys, public string) *world {
	t.Helper()
	twilio, err := smstest.New(tw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twilio.Close)
	whoson, err := whosontest.New(whosontest.Config{Operator: op})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(whoson.Close)
	addrs := freeAddrs(t, 2)
	w := &world{t: t, twilio: twilio, whoson: whoson, dir: t.TempDir(), addr: addrs[0], admin: addrs[1]}
	if public == "" {
		public = "http://" + w.addr
	}
	w.cfgPath = filepath.Join(w.dir, "config.toml")
	text := fmt.Sprintf(e2eHeader+e2eRetry+e2eSMSBase+smsKeys+e2eWhoson+`
[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`, filepath.Join(w.dir, "state"), w.addr, public, twilio.AccountSID(), companyNumber, twilio.URL(), whoson.URL())
	if err := os.WriteFile(w.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// say posts a customer's SMS to our number to as Twilio does (signed,
// Twilio's fields), and returns the webhook's status and TwiML answer,
// which smstest's own poster does not keep.
func (w *world) say(to, body string) (int, string) {
	w.t.Helper()
	return w.sayVia(smstest.Webhook{URL: w.webhook()}, to, body)
}

// sayVia is say posted to hook.
func (w *world) sayVia(hook smstest.Webhook, to, body string) (int, string) {
	w.t.Helper()
	sid := fmt.Sprintf("SM%032x", time.Now().UnixNano())
	form := url.Values{"MessageSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {w.twilio.AccountSID()},
		"From": {customerNumber}, "To": {to}, "Body": {body}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"}}
	u, err := url.Parse(hook.URL)
	if err != nil {
		w.t.Fatal(err)
	}
	target := hook.URL
	if hook.Via != "" {
		target = hook.Via + u.RequestURI()
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Host = u.Host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", w.twilio.Sign(hook.URL, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sentTo returns the SMS the fake accepted for number, in order.
func (w *world) sentTo(number string) []smstest.Sent {
	var out []smstest.Sent
	for _, s := range w.twilio.Sent() {
		if s.To == number {
			out = append(out, s)
		}
	}
	return out
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart kills the daemon (SIGKILL) once its outbox is empty and starts it
// again on the same state. Waiting matters: a line that reached WhosOn but
// was not yet marked sent is sent again after a crash, as it should be
// (WhosOn has no message ids to tell a repeat by), and these tests check
// what a restart adds, not that resend.
func (w *world) restart() {
	w.t.Helper()
	waitFor(w.t, "an empty outbox", func() bool {
		n, err := outboxDepth(w.admin)
		return err == nil && n == 0
	})
	w.signal(syscall.SIGKILL, 10*time.Second)
	w.start()
}

// TestSMSOptOut: STOP is answered once, recorded in the store (it outlives
// a restart), ends the chat telling the agent, and nothing reaches the
// customer or the agent until START.
func TestSMSOptOut(t *testing.T) {
	w := carrierWorld(t, smstest.Config{}, echoOperator(), "", "")
	w.start()
	w.sms("hello")
	w.smsTo("echo: hello")
	status, answer := w.say(companyNumber, " Stop! ")
	if status != http.StatusOK || !strings.Contains(answer, "<Message>You have been unsubscribed") {
		t.Fatalf("STOP answered %d %s, want the opt-out reply in TwiML", status, answer)
	}
	waitFor(t, "the agent told and the chat ended", func() bool {
		chats := w.whoson.Chats()
		return len(chats) == 1 && chats[0].Ended &&
			slices.ContainsFunc(w.whoson.AllVisitorLines(), func(l string) bool { return strings.Contains(l, "opted out") })
	})
	sentBefore := len(w.sentTo(customerNumber))
	w.restart()
	// Dropped: no chat, nothing sent, no reply; HELP unanswered as well.
	for _, body := range []string{"hello again", "HELP"} {
		if status, answer := w.say(companyNumber, body); status != http.StatusOK || strings.Contains(answer, "<Message>") {
			t.Errorf("%q from an opted-out customer answered %d %s", body, status, answer)
		}
	}
	// Nothing went to the customer since STOP: no end notice, no echo.
	if sent := w.sentTo(customerNumber)[sentBefore:]; len(sent) != 0 {
		t.Errorf("sent to the opted-out customer: %+v", sent)
	}
	status, answer = w.say(companyNumber, "start")
	if status != http.StatusOK || !strings.Contains(answer, "<Message>You have been resubscribed") {
		t.Fatalf("START answered %d %s", status, answer)
	}
	w.sms("back again")
	w.smsTo("echo: back again")
	if chats := w.whoson.Chats(); len(chats) != 2 {
		t.Errorf("%d chats, want 2 (none for the lines written while opted out)", len(chats))
	}
	for _, l := range w.whoson.AllVisitorLines() {
		if strings.Contains(l, "hello again") || l == "HELP" || l == "start" {
			t.Errorf("the agent got %q", l)
		}
	}
}

// TestSMSSegments: an agent's long line in smart quotes is normalised to
// GSM-7 and cut to max_segments with the mark; the segments are counted
// on /metrics.
func TestSMSSegments(t *testing.T) {
	long := "It’s “done” — " + strings.Repeat("word ", 80)
	op := whosontest.Operator{Name: "Alice", Reply: func(string) string { return long }}
	w := carrierWorld(t, smstest.Config{}, op, "gsm_normalize = true\nmax_segments = 2\nmps = 0.0\n", "")
	w.start()
	w.sms("tell me everything")
	got := w.smsTo(`It's "done" - word`)
	if info := segment.Count(got.Body); info.Encoding != segment.GSM7 || info.Segments != 2 || !strings.HasSuffix(got.Body, " [cut]") {
		t.Errorf("sent %q: %d %s segments, want 2 GSM-7 ending in the mark", got.Body, info.Segments, info.Encoding)
	}
	resp, err := http.Get("http://" + w.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `connectord_sms_segments_total{adapter="sms.main",encoding="GSM-7"}`) {
		t.Errorf("/metrics lacks the segment counter:\n%s", b)
	}
}

// TestSMSPacingAndNumbers: a customer who writes to our second number is
// answered from it, also after a restart (the number lives in the stored
// address); the answers leave at the sender's rate, so none waits in
// Twilio's queue, and loop protection (14107) never fails one.
func TestSMSPacingAndNumbers(t *testing.T) {
	tw := smstest.Config{MPS: 2, LoopProtection: true, LoopLimit: 4, LoopWindow: 2 * time.Second}
	w := carrierWorld(t, tw, echoOperator(), `numbers = ["`+secondNumber+`"]
mps = 2.0
burst = 1
recipient_limit = 4
recipient_window = "2s"
`, "")
	w.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	write := func(text string) {
		if _, status, err := w.twilio.Inbound(ctx, w.webhook(), customerNumber, secondNumber, text); err != nil || status != http.StatusOK {
			t.Fatalf("inbound %q: %d, %v", text, status, err)
		}
	}
	for i := range 5 {
		write(fmt.Sprint("hi ", i))
	}
	w.smsTo("echo: hi 4")
	w.restart()
	write("after the restart")
	w.smsTo("echo: after the restart")
	sent := w.sentTo(customerNumber)
	for _, s := range sent {
		if s.From != secondNumber {
			t.Errorf("%q sent from %s, want %s", s.Body, s.From, secondNumber)
		}
	}
	// The pace is kept in memory: the first answer after the restart may
	// join what the killed process left in Twilio's queue, at most one
	// interval (0.5 s) of it.
	for _, d := range w.twilio.Departures(secondNumber) {
		if q := d.Departed.Sub(d.Created); q > 600*time.Millisecond {
			t.Errorf("%s waited %v in Twilio's queue", d.SID, q)
		}
	}
	waitFor(t, "final statuses", func() bool {
		for _, s := range sent {
			if m, _ := w.twilio.Get(s.SID); m.Status != "delivered" && m.Status != "failed" {
				return false
			}
		}
		return true
	})
	for _, s := range sent {
		if m, _ := w.twilio.Get(s.SID); m.Status != "delivered" {
			t.Errorf("%q ended %s (error %d)", s.Body, m.Status, m.ErrorCode)
		}
	}
}

// TestSMSCatchUp: messages Twilio received while connectord was down
// (longer than Twilio retries webhooks) are read from its list at start and
// relayed once, in order.
func TestSMSCatchUp(t *testing.T) {
	w := carrierWorld(t, smstest.Config{}, echoOperator(), "mps = 0.0\n", "")
	w.start()
	w.sms("first")
	w.visitorLines(1)
	if code, _ := w.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	w.twilio.InboundOffline(customerNumber, companyNumber, "missed one")
	w.twilio.InboundOffline(customerNumber, companyNumber, "missed two")
	w.start()
	waitFor(t, "the missed lines at the agent", func() bool { return len(w.whoson.AllVisitorLines()) >= 3 })
	w.restart() // a second catch-up finds nothing new
	w.sms("third")
	waitFor(t, "the third line", func() bool { return slices.Contains(w.whoson.AllVisitorLines(), "third") })
	lines := w.whoson.AllVisitorLines()
	var got []string
	for _, l := range lines {
		if l == "first" || strings.HasPrefix(l, "missed") || l == "third" {
			got = append(got, l)
		}
	}
	if want := []string{"first", "missed one", "missed two", "third"}; !slices.Equal(got, want) {
		t.Errorf("the agent got %q (all: %q), want %q", got, lines, want)
	}
}

// TestSMSMedia: a customer's photo reaches the agent as a connectord link;
// opening it fetches the file from Twilio with the account's credentials
// and from its CDN without them.
func TestSMSMedia(t *testing.T) {
	w := carrierWorld(t, smstest.Config{MediaRedirect: true}, echoOperator(), "mps = 0.0\n", "")
	w.start()
	photo := []byte("\xff\xd8\xff a photo")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, status, err := w.twilio.InboundMedia(ctx, w.webhook(), customerNumber, companyNumber, "see",
		[]smstest.Media{{ContentType: "image/jpeg", Data: photo}}); err != nil || status != http.StatusOK {
		t.Fatal(status, err)
	}
	line := w.visitorLines(1)[0]
	i := strings.Index(line, "http://"+w.addr+"/sms/main/media/")
	if i < 0 || strings.Contains(line, w.twilio.URL()) {
		t.Fatalf("the agent got %q, want a connectord link and no Twilio URL", line)
	}
	link := strings.Fields(line[i:])[0]
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != string(photo) {
		t.Fatalf("link answered %d %q", resp.StatusCode, body)
	}
	f := w.twilio.MediaFetches()
	if len(f) != 2 || !f[0].Authorized || !f[1].CDN || f[1].Credentials {
		t.Errorf("Twilio saw %+v", f)
	}
}

// TestSMSSignatureThroughProxy: Twilio signs the URL configured in its
// console (port, query string); the request reaches connectord through a
// proxy at another address. Signed for another host, it is refused.
func TestSMSSignatureThroughProxy(t *testing.T) {
	const public = "https://connector.example.com:8443"
	w := carrierWorld(t, smstest.Config{MessagingServiceSID: "MG0123456789abcdef0123456789abcdef"}, echoOperator(),
		"mps = 0.0\nstatus_callback = false\n", public)
	w.start()
	via := "http://" + w.addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sid := w.twilio.InboundOffline(customerNumber, companyNumber, "through the proxy")
	if status, err := w.twilio.PostInbound(ctx, smstest.Webhook{URL: public + "/sms/main?tenant=a%20b", Via: via}, sid); err != nil || status != http.StatusOK {
		t.Fatalf("signed as configured: %d, %v", status, err)
	}
	if status, _ := w.sayVia(smstest.Webhook{URL: "https://other.example.com/sms/main", Via: via}, companyNumber, "forged"); status != http.StatusForbidden {
		t.Errorf("signed for another host: %d, want 403", status)
	}
	if got := w.visitorLines(1); got[0] != "through the proxy" {
		t.Errorf("the agent got %q", got)
	}
}
