package sms

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
)

// TestSignatureKnownGood checks the validator against a signature computed
// by Twilio's rules with a published test vector (auth token "12345").
func TestSignatureKnownGood(t *testing.T) {
	form := webhookForm{
		"Digits": "1234", "CallSid": "CA1234567890ABCDE", "To": "+18005551212",
		"Caller": "+14158675309", "From": "+14158675309",
		"ReasonConferenceEnded": "test", "Reason": "Participant",
	}
	const u, want = "https://mycompany.com/myapp.php?foo=1&bar=2", "vOEb5UThFn24KEfnOFLQY2AE5FY="
	if got := twilioSignature("12345", u, form); got != want {
		t.Errorf("twilioSignature = %q, want %q", got, want)
	}
	// Twilio's helper libraries also take a signature of the URL without its
	// port for any port, since Twilio leaves ports out inconsistently.
	for _, variant := range []string{u, "https://mycompany.com:443/myapp.php?foo=1&bar=2",
		"https://mycompany.com:8443/myapp.php?foo=1&bar=2"} {
		if !validSignature("12345", variant, form, want) {
			t.Errorf("valid signature refused for %s", variant)
		}
	}
	for name, bad := range map[string]func() (string, string, webhookForm, string){
		"other token": func() (string, string, webhookForm, string) { return "12346", u, form, want },
		"other query": func() (string, string, webhookForm, string) {
			return "12345", "https://mycompany.com/myapp.php?foo=1", form, want
		},
		"empty": func() (string, string, webhookForm, string) { return "12345", u, form, "" },
		"value change": func() (string, string, webhookForm, string) {
			f := clone(form)
			f["Digits"] = "1235"
			return "12345", u, f, want
		},
		"extra field": func() (string, string, webhookForm, string) {
			f := clone(form)
			f["Body"] = ""
			return "12345", u, f, want
		},
		"scheme": func() (string, string, webhookForm, string) {
			return "12345", "http://mycompany.com/myapp.php?foo=1&bar=2", form, want
		},
	} {
		token, u, f, sig := bad()
		if validSignature(token, u, f, sig) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func clone(f webhookForm) webhookForm {
	out := webhookForm{}
	for k, v := range f {
		out[k] = v
	}
	return out
}

// TestSignatureMatchesFake: the fake Twilio's signatures (written
// independently, over every value) are accepted, with and without ports.
func TestSignatureMatchesFake(t *testing.T) {
	srv, err := smstest.New(smstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	form := url.Values{"MessageSid": {sid1}, "Body": {"héllo & <you> 👋"}, "From": {customerNumber}, "Empty": {""}}
	for _, u := range []string{"https://c.example.com/sms/main", "http://127.0.0.1:8080/sms/main?x=1&y=%20",
		"https://[2001:db8::1]/sms/main", "https://[2001:db8::1]:443/sms/main"} {
		wf, err := parseWebhookForm(form.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if !validSignature(srv.AuthToken(), u, wf, srv.Sign(u, form)) {
			t.Errorf("%s: the fake's signature is refused", u)
		}
	}
}

func TestPortVariants(t *testing.T) {
	for u, want := range map[string][]string{
		"https://h.example/p?q=1": {"https://h.example/p?q=1", "https://h.example:443/p?q=1", "https://h.example/p?q=1"},
		"http://h.example:8080/p": {"http://h.example:8080/p", "http://h.example:8080/p", "http://h.example/p"},
		"https://[::1]:443/p":     {"https://[::1]:443/p", "https://[::1]:443/p", "https://[::1]/p"},
		"::not a url":             {"::not a url"},
	} {
		if got := portVariants(u); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("portVariants(%q) = %q, want %q", u, got, want)
		}
	}
}

func TestParseWebhookForm(t *testing.T) {
	form, err := parseWebhookForm("a=1&b=&c=x%20y")
	if err != nil || form.Get("a") != "1" || form.Get("b") != "" || form.Get("c") != "x y" || len(form) != 3 {
		t.Errorf("parseWebhookForm = %v, %v", form, err)
	}
	for body, want := range map[string]string{
		"a=1&b=2&a=3": `parameter "a" is repeated (2 values)`,
		"a=%zz":       "not application/x-www-form-urlencoded",
		strings.Repeat("k", 100) + "=1&" + strings.Repeat("k", 100) + "=2": `parameter "` + strings.Repeat("k", 64) + `"... is repeated`,
		tooManyParams(): "more than 256",
	} {
		if _, err := parseWebhookForm(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseWebhookForm(%.40q) = %v, want an error with %q", body, err, want)
		}
	}
}

func tooManyParams() string {
	v := url.Values{}
	for i := range maxFormParams + 1 {
		v.Set("p"+strconv.Itoa(i), "1")
	}
	return v.Encode()
}

// TestReconcileErrorRedacted: a list call that cannot reach Twilio fails
// with an error whose text has no query string (the customer's number).
func TestReconcileErrorRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	w := newWorld(t, setup{extra: `api_url = "http://` + addr + `"`})
	_, err = w.ch.reconcile(context.Background(), w.ch.destination(customerNumber), "hi", time.Now(), "")
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "PageSize") || strings.Contains(err.Error(), "5557654321") {
		t.Errorf("error shows the query: %v", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error does not name the host: %v", err)
	}
}

// TestAPIAnswerBounds: an answer past the read bounds is an error, and an
// error document's message is clipped before it reaches Health.
func TestAPIAnswerBounds(t *testing.T) {
	huge := strings.Repeat("x", maxAnswer)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, `{"messages":[{"sid":"SM1","body":"`+huge+`"}]}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":20003,"message":"`+huge[:10000]+`","status":401}`)
	}))
	defer api.Close()
	// An hour to read the page: the bound under test is its size, not a
	// loaded machine reading it within the default 2 s.
	w := newWorld(t, setup{extra: `api_url = "` + api.URL + `"` + "\nrequest_timeout = \"1h\"\n"})
	if _, err := w.ch.reconcile(context.Background(), w.ch.destination(customerNumber), "hi", time.Now(), ""); err == nil ||
		!strings.Contains(err.Error(), "larger than") {
		t.Errorf("reconcile over a huge page = %v", err)
	}
	_, err := w.ch.Send(context.Background(), customerNumber, text(1, "hi"))
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != 20003 || len(ae.Message) > maxErrorMessage+3 {
		t.Fatalf("Send = %.200v", err)
	}
	if h := w.ch.Health(); h.Ready || len(h.Detail) > maxErrorMessage+100 {
		t.Errorf("Health detail of %d bytes", len(h.Detail))
	}
}
