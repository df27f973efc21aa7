package smstest

import (
	"strings"
	"testing"
	"unicode"
)

func FuzzParseKeyword(f *testing.F) {
	for _, s := range []string{"STOP", " stop\n", "Stop please", "INFO", "unstop", "", "ＳＴＯＰ", "stop\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		k := parseKeyword(body)
		if k < keywordNone || k > keywordHelp {
			t.Fatalf("parseKeyword(%q) = %d, out of range", body, k)
		}
		if k == keywordNone {
			return
		}
		word := strings.TrimSpace(body)
		if len(word) > len("UNSUBSCRIBE") || strings.IndexFunc(word, unicode.IsSpace) >= 0 {
			t.Fatalf("parseKeyword(%q) = %d: a keyword must be one short word", body, k)
		}
		if k.reply() == "" || k.optOutType() == "" {
			t.Fatalf("keyword %d has no reply or OptOutType", k)
		}
	})
}

func FuzzWebhookTarget(f *testing.F) {
	f.Add("https://connector.example.com:443/sms/main?x=1", "http://127.0.0.1:8080")
	f.Add("https://example.com", "")
	f.Add("http://[::1]:80/a%2Fb?q", "https://proxy.example/base?drop=1")
	f.Fuzz(func(t *testing.T, u, via string) {
		got, err := Webhook{URL: u, Via: via}.target()
		if err != nil {
			return
		}
		// Output bound: the target is made of the two inputs' parts, re-escaped at
		// most threefold.
		if len(got) > 3*(len(u)+len(via))+8 {
			t.Fatalf("target(%q, %q) = %d bytes", u, via, len(got))
		}
		if via == "" && got != u {
			t.Fatalf("target without Via = %q, want %q", got, u)
		}
		if !strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://") {
			t.Fatalf("target(%q, %q) = %q, not http(s)", u, via, got)
		}
	})
}

func FuzzMediaChecks(f *testing.F) {
	f.Add("image/png", "https://example.com/a.png")
	f.Add("text/html; charset=utf-8", "example.com/a")
	f.Add("Image/JPEG", "ftp://x")
	f.Fuzz(func(t *testing.T, ct, u string) {
		if acceptedType(ct) && ct == "" {
			t.Fatal("an empty Content-Type is accepted")
		}
		if validMediaURLs([]string{u}) && !strings.Contains(u, "://") {
			t.Fatalf("%q accepted as a media URL without a scheme", u)
		}
	})
}
