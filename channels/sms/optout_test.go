package sms

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectord/connectord/connector"
)

// fakeOptOuts is the core's opt-out store as the channel sees it.
type fakeOptOuts struct {
	mu    sync.Mutex
	out   map[[3]string]bool
	calls []string
	err   error
}

var _ connector.OptOuts = (*fakeOptOuts)(nil)

func (f *fakeOptOuts) SetOptOut(_ context.Context, channel, sender, customer string, out bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.out == nil {
		f.out = map[[3]string]bool{}
	}
	f.out[[3]string{channel, sender, customer}] = out
	verb := "in"
	if out {
		verb = "out"
	}
	f.calls = append(f.calls, channel+" "+sender+" "+customer+" "+verb)
	return nil
}

func (f *fakeOptOuts) OptedOut(_ context.Context, channel, sender, customer string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out[[3]string{channel, sender, customer}], f.err
}

func (f *fakeOptOuts) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeOptOuts) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// say posts body from the customer to number as Twilio would and returns
// the answer's status and TwiML.
func (w *world) say(sid, number, body string, extra ...string) (int, string) {
	w.t.Helper()
	form := inboundForm(w, sid, body)
	form.Set("To", number)
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	resp := w.signedPost("/sms/main", form)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func twimlReply(text string) string {
	if text == "" {
		return emptyTwiML
	}
	return `<?xml version="1.0" encoding="UTF-8"?><Response><Message>` + text + `</Message></Response>`
}

func TestNormalizeKeyword(t *testing.T) {
	for in, want := range map[string]string{
		"STOP": "STOP", " stop ": "STOP", "Stop!": "STOP", "¡stop!": "STOP", "\"Stop.\"\n": "STOP",
		"please stop calling": "", "stop it": "", "": "", "...": "", "st0p": "ST0P",
		strings.Repeat("x", 200): "",
	} {
		if got := normalizeKeyword(in); got != want {
			t.Errorf("normalizeKeyword(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeywordsAndOptOut(t *testing.T) {
	oo := &fakeOptOuts{}
	w := newWorld(t, setup{optOuts: oo})
	def := defaultConfig()
	steps := []struct {
		name, body string
		reply      string // the TwiML <Message>, "" for none
		toCore     *connector.Inbound
		optOuts    []string // recorded so far
	}{
		{name: "a chat line", body: "hello", toCore: &connector.Inbound{Text: "hello"}},
		{name: "yes while subscribed is a chat line", body: "Yes", toCore: &connector.Inbound{Text: "Yes"}},
		{name: "help is answered and relayed", body: "help", reply: def.HelpReply, toCore: &connector.Inbound{Text: "help"}},
		{name: "not a keyword", body: "please stop calling", toCore: &connector.Inbound{Text: "please stop calling"}},
		{name: "stop", body: " Stop! ", reply: def.OptOutReply,
			toCore:  &connector.Inbound{Text: " Stop! ", End: true, OptedOut: true},
			optOuts: []string{"sms.main " + companyNumber + " " + customerNumber + " out"}},
		{name: "dropped while opted out", body: "hello again",
			optOuts: []string{"sms.main " + companyNumber + " " + customerNumber + " out"}},
		{name: "no help while opted out", body: "INFO",
			optOuts: []string{"sms.main " + companyNumber + " " + customerNumber + " out"}},
		{name: "start", body: "start", reply: def.OptInReply,
			optOuts: []string{"sms.main " + companyNumber + " " + customerNumber + " out",
				"sms.main " + companyNumber + " " + customerNumber + " in"}},
		{name: "chat again", body: "back", toCore: &connector.Inbound{Text: "back"},
			optOuts: []string{"sms.main " + companyNumber + " " + customerNumber + " out",
				"sms.main " + companyNumber + " " + customerNumber + " in"}},
	}
	for i, st := range steps {
		before := len(w.sink.received())
		sid := newTestSID(int64(i + 1))
		status, body := w.say(sid, companyNumber, st.body)
		if status != http.StatusOK || body != twimlReply(st.reply) {
			t.Errorf("%s: answered %d %s, want 200 %s", st.name, status, body, twimlReply(st.reply))
		}
		got := w.sink.received()[before:]
		var want []connector.Inbound
		if st.toCore != nil {
			in := *st.toCore
			in.Channel, in.Customer, in.SourceID = "sms.main", customerNumber, sid
			in.Profile = connector.Profile{Phone: customerNumber}
			want = append(want, in)
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(connector.Inbound{}, "ReceivedAt"), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: to the core (-want +got):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(st.optOuts, oo.recorded(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: opt-outs recorded (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestSendToOptedOutMakesNoCall(t *testing.T) {
	oo := &fakeOptOuts{}
	w := newWorld(t, setup{optOuts: oo})
	w.say(newTestSID(1), companyNumber, "STOP")
	_, err := w.ch.Send(context.Background(), customerNumber, text(1, "are you there?"))
	if !connector.IsPermanent(err) || !errors.As(err, new(errOptedOut)) {
		t.Errorf("Send = %v, want a permanent opted-out error", err)
	}
	if n := len(w.twilio.Sent()); n != 0 {
		t.Errorf("%d messages reached Twilio", n)
	}
	// A store that cannot say is retryable: nothing is sent on a guess.
	oo.setErr(errors.New("store down"))
	_, err = w.ch.Send(context.Background(), customerNumber, text(2, "hi"))
	if err == nil || connector.IsPermanent(err) || len(w.twilio.Sent()) != 0 {
		t.Errorf("Send with the store down = %v (%d sent), want a retryable error and no call", err, len(w.twilio.Sent()))
	}
}

func TestOptOutStoreFailureIsRetried(t *testing.T) {
	oo := &fakeOptOuts{err: errors.New("store down")}
	w := newWorld(t, setup{optOuts: oo})
	for _, body := range []string{"STOP", "hello"} {
		if status, _ := w.say(newTestSID(1), companyNumber, body); status != http.StatusInternalServerError {
			t.Errorf("%s with the store down: %d, want 500 (Twilio retries)", body, status)
		}
	}
	if n := len(w.sink.received()); n != 0 {
		t.Errorf("%d messages reached the core", n)
	}
}

func TestOptOutRepliesOff(t *testing.T) {
	w := newWorld(t, setup{extra: "opt_out_replies = false\n"})
	if _, body := w.say(newTestSID(1), companyNumber, "STOP"); body != emptyTwiML {
		t.Errorf("STOP answered %s, want no reply (Twilio answers it)", body)
	}
}

// Advanced Opt-Out's OptOutType wins over our lists: its keywords may be
// ones we do not know.
func TestAdvancedOptOutType(t *testing.T) {
	oo := &fakeOptOuts{}
	w := newWorld(t, setup{optOuts: oo, extra: "opt_out_replies = false\n"})
	w.say(newTestSID(1), companyNumber, "ARRET", "OptOutType", "STOP")
	if got := oo.recorded(); len(got) != 1 || !strings.HasSuffix(got[0], " out") {
		t.Errorf("opt-outs = %q, want one", got)
	}
	if got := w.sink.received(); len(got) != 1 || !got[0].OptedOut || !got[0].End {
		t.Errorf("to the core: %+v, want an opted-out end", got)
	}
}

func TestConfiguredKeywords(t *testing.T) {
	oo := &fakeOptOuts{}
	w := newWorld(t, setup{optOuts: oo, extra: `opt_out_keywords = ["ARRET"]
opt_out_reply = "Bye from {{.Number}} ({{.Keyword}})"
`})
	if _, body := w.say(newTestSID(1), companyNumber, "stop"); body != emptyTwiML {
		t.Errorf("stop is no keyword here, answered %s", body)
	}
	if _, body := w.say(newTestSID(2), companyNumber, "Arrêt"); body != emptyTwiML {
		t.Errorf("Arrêt is not ARRET, answered %s", body)
	}
	if _, body := w.say(newTestSID(3), companyNumber, "arret."); body != twimlReply("Bye from "+companyNumber+" (ARRET)") {
		t.Errorf("arret answered %s", body)
	}
}

func TestKeywordReplyEscaped(t *testing.T) {
	w := newWorld(t, setup{extra: `help_reply = "Call <us> & ask"` + "\n"})
	if _, body := w.say(newTestSID(1), companyNumber, "HELP"); body != twimlReply("Call &lt;us&gt; &amp; ask") {
		t.Errorf("answered %s", body)
	}
}

// A message Twilio refused after accepting it (status callback with 21610)
// records the opt-out of the pair it went on.
func TestStatusCallbackOptOut(t *testing.T) {
	oo := &fakeOptOuts{}
	w := newWorld(t, setup{optOuts: oo})
	form := url.Values{"MessageSid": {sid1}, "MessageStatus": {"failed"}, "ErrorCode": {"21610"},
		"To": {customerNumber}, "From": {companyNumber}}
	resp := w.signedPost("/sms/main/status", form)
	resp.Body.Close()
	want := []string{"sms.main " + companyNumber + " " + customerNumber + " out"}
	if diff := cmp.Diff(want, oo.recorded()); diff != "" {
		t.Errorf("opt-outs (-want +got):\n%s", diff)
	}
}

func TestKeywordConfigErrors(t *testing.T) {
	_, err := decodeConfig(instance(`account_sid = "` + testSID + `"
auth_token = "` + testToken + `"
from = "+15551230000"
opt_out_keywords = ["STOP", "stop now"]
opt_in_keywords = ["START", "STOP"]
help_reply = "{{.Nope}}"
`))
	got := strings.Join(configErrors(t, err), "\n")
	for _, want := range []string{`opt_out_keywords: "stop now" is not one word`, `opt_in_keywords: "STOP" is also in opt_out_keywords`,
		"help_reply: "} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q lack %q", got, want)
		}
	}
}

func FuzzKeyword(f *testing.F) {
	for _, s := range []string{"STOP", " ¡stop! ", "please stop", "Arrêt", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w := normalizeKeyword(s)
		if len(w) > 3*len(s) || strings.ContainsAny(w, " \t\n") || (w != "" && normalizeKeyword(w) != w) {
			t.Errorf("normalizeKeyword(%q) = %q", s, w)
		}
	})
}
