package ximatest

import (
	"strings"
	"testing"
)

// FuzzParseAuthorization: the SigV4 header parser never panics, and what it
// returns is never larger than its input.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef")
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=, Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,==")
	f.Fuzz(func(t *testing.T, h string) {
		v, err := parseAuthorization(h)
		if err != nil {
			return
		}
		n := len(v.accessKey) + len(v.date) + len(v.region) + len(v.service) + len(v.signature) +
			len(strings.Join(v.signedHeaders, ";"))
		if n > len(h) || v.accessKey == "" || v.signature == "" {
			t.Errorf("parsed %+v (%d bytes) from %d bytes", v, n, len(h))
		}
	})
}

// FuzzFields: the REST body decoder never panics and returns only the keys
// asked for, each no longer than the body.
func FuzzFields(f *testing.F) {
	f.Add([]byte(`{"chatSessionId":"x","typing":"true"}`))
	f.Add([]byte(`{"chatSessionId":"x","typing":true}`))
	f.Add([]byte(`{"chatSessionId":"\u00e9\ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := fields(body, "chatSessionId", "typing")
		if err != nil {
			return
		}
		if len(got) != 2 {
			t.Errorf("got %d keys", len(got))
		}
		for k, v := range got {
			if len(v) > 3*len(body) { // an escaped invalid byte decodes to 3 bytes
				t.Errorf("%s is %d bytes from a %d-byte body", k, len(v), len(body))
			}
		}
	})
}
