// Package medialink makes and checks the links through which a channel
// serves files that only it may fetch: a customer's MMS behind Twilio's
// account credentials, a Slack file behind the bot token, an agent's file
// behind a vendor's login. The link is given out (to an agent, or to
// Twilio to fetch an agent's file); the credentials never are. Opening it
// makes connectord fetch the file and stream it back.
//
// A link is base/ID/NAME?l=TOKEN&exp=UNIX. TOKEN seals, with AES-256-GCM
// under a key derived from the channel's secret, the URL the file really
// lives at, so that the link tells its holder nothing about where that is
// (a URL may carry credentials of its own); the seal's authentication
// covers ID, NAME and the expiry, so none of them can be changed. A link is
// good until its expiry; a new secret (the token changed) voids every link.
//
// The package keeps no state and does no I/O but Serve's copy; a Signer is
// safe for concurrent use.
package medialink

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxSource bounds the URL a link stands for, so that a link stays short.
const MaxSource = 4096

// Signer makes and checks one channel's links.
type Signer struct {
	aead cipher.AEAD
	ttl  time.Duration
}

// New returns a Signer whose key derives from secret (the channel's own
// credential: an auth token, a bot token) and purpose (which channel
// instance and what for, so that two channels sharing a secret do not share
// links). Links are good for ttl.
func New(secret, purpose string, ttl time.Duration) *Signer {
	k := sha256.Sum256([]byte("connectord media links\x00" + purpose + "\x00" + secret))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // AES always has a GCM mode
	}
	return &Signer{aead: aead, ttl: ttl}
}

// TTL is how long a link made now is good for.
func (s *Signer) TTL() time.Duration { return s.ttl }

// encoding is the token's: strict, so a second spelling of the same bytes
// is refused.
func encoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// ad is the data the seal authenticates besides the source: the link's
// path parts and its expiry, NUL-separated (Check refuses a NUL in them).
func ad(id, name string, exp int64) []byte {
	return fmt.Appendf(nil, "%s\x00%s\x00%d", id, name, exp)
}

// URL returns the link for the file at src, served under base
// ("https://connector.example.com/sms/main/media"), named id and name in
// its path. id and name must not contain NUL; src is at most MaxSource
// bytes. Its length is at most len(base) + 3(len(id)+len(name)) +
// 4/3(len(src)+28) + 40.
func (s *Signer) URL(base, id, name, src string, now time.Time) (string, error) {
	if strings.ContainsRune(id+name, 0) || len(src) > MaxSource {
		return "", errors.New("medialink: id or name with NUL, or a source longer than MaxSource")
	}
	exp := now.Add(s.ttl).Unix()
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand panics instead)
	sealed := s.aead.Seal(nonce, nonce, []byte(src), ad(id, name, exp))
	q := url.Values{"l": {encoding().EncodeToString(sealed)}, "exp": {strconv.FormatInt(exp, 10)}}
	return strings.TrimSuffix(base, "/") + "/" + url.PathEscape(id) + "/" + url.PathEscape(name) + "?" + q.Encode(), nil
}

// Check returns the URL a link stands for, given its path parts id and
// name and its query q. status is the HTTP answer when the link is not
// good: 403 unless every part is exactly as made (one l and one exp, in
// their canonical spelling, nothing else), 410 once it has expired.
func (s *Signer) Check(id, name string, q url.Values, now time.Time) (src string, status int) {
	if len(q) != 2 || len(q["l"]) != 1 || len(q["exp"]) != 1 || strings.ContainsRune(id+name, 0) {
		return "", http.StatusForbidden
	}
	raw, err := encoding().DecodeString(q.Get("l"))
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() ||
		len(raw) > s.aead.NonceSize()+s.aead.Overhead()+MaxSource {
		return "", http.StatusForbidden
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != q.Get("exp") {
		return "", http.StatusForbidden
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], ad(id, name, exp))
	if err != nil {
		return "", http.StatusForbidden
	}
	if now.Unix() > exp {
		return "", http.StatusGone
	}
	return string(plain), 0
}

// Serve writes resp, a file fetched for a link, as a download that cannot
// run on connectord's origin: attachment named name, nosniff, a sandboxing
// Content-Security-Policy. A file larger than maxBytes (by its
// Content-Length) is answered 413 before anything is sent; one that turns
// out larger, or whose copy fails, returns an error after part of it was
// written: the caller then aborts the answer (panic(http.ErrAbortHandler)),
// so that the client sees an error instead of a shorter file. It closes
// resp.Body.
func Serve(w http.ResponseWriter, resp *http.Response, name string, maxBytes int64) (int64, error) {
	defer resp.Body.Close()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if resp.ContentLength > maxBytes {
		http.Error(w, "file too large", http.StatusRequestEntityTooLarge)
		return 0, nil
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	cd := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if cd == "" { // a name mime cannot quote
		cd = "attachment"
	}
	h.Set("Content-Disposition", cd)
	n, err := io.Copy(w, io.LimitReader(resp.Body, maxBytes+1))
	if err == nil && n > maxBytes {
		err = fmt.Errorf("larger than %d bytes", maxBytes)
	}
	return n, err
}
