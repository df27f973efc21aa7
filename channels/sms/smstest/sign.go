package smstest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"maps"
	"net/url"
	"slices"
)

// Sign returns the X-Twilio-Signature value Twilio sends when it posts form to url:
// base64(HMAC-SHA1(auth token, url + key1 + value1 + key2 + value2 ...)), with the
// keys in byte order and a repeated key's values in their order in form. url must be
// exactly the URL Twilio was configured with, query string included.
func (s *Server) Sign(url string, form url.Values) string {
	return sign(s.cfg.AuthToken, url, form)
}

func sign(token, u string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(token))
	io.WriteString(mac, u)
	for _, k := range slices.Sorted(maps.Keys(form)) {
		for _, v := range form[k] {
			io.WriteString(mac, k)
			io.WriteString(mac, v)
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
