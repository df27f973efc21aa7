package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
)

// maxFormParams bounds the parameters of one webhook. Twilio's richest
// message webhook (an MMS with ten media and the geographic fields) has
// about fifty.
const maxFormParams = 256

// webhookForm is a webhook's parameters, exactly one value per name.
type webhookForm map[string]string

// Get returns the value of name, "" when absent.
func (f webhookForm) Get(name string) string { return f[name] }

// parseWebhookForm decodes an application/x-www-form-urlencoded body into
// one value per name. A name given twice is an error naming it: Twilio never
// repeats a parameter, and with two values the signature would cover
// whichever one a validator picks (twilio-go's picks the first), leaving the
// other unsigned.
func parseWebhookForm(body string) (webhookForm, error) {
	values, err := url.ParseQuery(body)
	if err != nil {
		return nil, fmt.Errorf("body is not application/x-www-form-urlencoded: %w", err)
	}
	if len(values) > maxFormParams {
		return nil, fmt.Errorf("body has %d parameters, more than %d", len(values), maxFormParams)
	}
	form := make(webhookForm, len(values))
	// Sorted, so that the error names the same key for the same body.
	for _, name := range slices.Sorted(maps.Keys(values)) {
		v := values[name]
		if len(v) > 1 {
			return nil, fmt.Errorf("parameter %s is repeated (%d values)", quoteClipped(name), len(v))
		}
		form[name] = v[0]
	}
	return form, nil
}

// quoteClipped quotes s for an error text, cut to 64 bytes: a name chosen
// by whoever posted the body must not make the error (or the log line) big.
func quoteClipped(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit]) + "..."
}

// twilioSignature is the X-Twilio-Signature Twilio sends when it posts form
// to u: base64(HMAC-SHA1(auth token, u + name + value for every parameter,
// names in byte order)). u is the URL exactly as configured at Twilio, query
// string included.
func twilioSignature(token, u string, form webhookForm) string {
	mac := hmac.New(sha1.New, []byte(token))
	io.WriteString(mac, u) // a hash.Hash never fails to write
	for _, name := range slices.Sorted(maps.Keys(form)) {
		io.WriteString(mac, name)
		io.WriteString(mac, form[name])
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// validSignature reports whether sig is Twilio's signature of form posted to
// u. Twilio signs the URL sometimes with the scheme's default port written
// out and sometimes without it, so both spellings are accepted; nothing else
// is.
func validSignature(token, u string, form webhookForm, sig string) bool {
	if sig == "" {
		return false
	}
	ok := false
	for _, variant := range portVariants(u) {
		// Both compared in full, so the time taken says nothing about which.
		ok = hmac.Equal([]byte(twilioSignature(token, variant, form)), []byte(sig)) || ok
	}
	return ok
}

// portVariants returns u as given, with a port and without one: the
// scheme's default port (443 for https, else 80) is added when u has none,
// and whatever port u has is removed. A u that does not parse is returned
// alone.
func portVariants(u string) []string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return []string{u}
	}
	host := p.Hostname()
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	with, without := *p, *p
	without.Host = host
	if p.Port() == "" {
		port := "80"
		if p.Scheme == "https" {
			port = "443"
		}
		with.Host = net.JoinHostPort(p.Hostname(), port)
	}
	return []string{u, with.String(), without.String()}
}
