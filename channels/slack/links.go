package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// linkSigner makes and checks the links agents open customers' files with.
// Slack serves shared files only with the bot token, which must not leave
// connectord; the link names the file and carries an HMAC, and connectord
// fetches the file with the token when the link is opened.
type linkSigner struct {
	key []byte
	ttl time.Duration
}

func newLinkSigner(botToken string, ttl time.Duration) *linkSigner {
	// Derived from the bot token: a new token (a reinstall) voids old links,
	// and no extra secret needs configuring.
	k := sha256.Sum256([]byte("connectord slack file links\x00" + botToken))
	return &linkSigner{key: k[:], ttl: ttl}
}

// sign MACs the fields NUL-separated; check refuses fields containing NUL,
// so that no two field lists share a MAC input.
func (s *linkSigner) sign(id, name, src string, exp int64) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00%d", id, name, src, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// linkEncoding is the src parameter's encoding; Strict refuses a second
// spelling of the same bytes.
func linkEncoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// url is the link for file id, served under base ("https://host/slack/NAME").
// Its length is at most len(base) + 3(len(id)+len(name)) + 4/3 len(src) + 128.
func (s *linkSigner) url(base, id, name, src string, now time.Time) string {
	exp := now.Add(s.ttl).Unix()
	q := url.Values{"src": {linkEncoding().EncodeToString([]byte(src))},
		"exp": {strconv.FormatInt(exp, 10)}, "sig": {s.sign(id, name, src, exp)}}
	return base + "/files/" + url.PathEscape(id) + "/" + url.PathEscape(name) + "?" + q.Encode()
}

// check returns the Slack URL a link stands for; status is the HTTP answer
// when the link is not good: 403 unless every part is exactly as signed
// (one src, exp and sig each, in their canonical spelling, nothing else),
// 410 once it has expired.
func (s *linkSigner) check(id, name string, q url.Values, now time.Time) (src string, status int) {
	if len(q) != 3 || len(q["src"]) != 1 || len(q["exp"]) != 1 || len(q["sig"]) != 1 ||
		strings.ContainsRune(id+name, 0) {
		return "", http.StatusForbidden
	}
	raw, err := linkEncoding().DecodeString(q.Get("src"))
	if err != nil || strings.IndexByte(string(raw), 0) >= 0 {
		return "", http.StatusForbidden
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != q.Get("exp") ||
		!hmac.Equal([]byte(s.sign(id, name, string(raw), exp)), []byte(q.Get("sig"))) {
		return "", http.StatusForbidden
	}
	if now.Unix() > exp {
		return "", http.StatusGone
	}
	return string(raw), 0
}
