package connector

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// RedactURL returns raw without userinfo, query string or fragment: what is
// left names the host and path, which is what an operator needs, and never a
// token or password that a vendor's URL carried. A raw that does not parse
// as a URL with a host is returned as "[url]".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[url]"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// urlInText finds things that look like absolute URLs inside free text such
// as a *url.Error's message ("Get \"wss://u:p@host/x?token=...\": EOF").
// Trailing punctuation is left to the sentence.
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s"'<>]*[^\s"'<>.,;:)\]]`)

// RedactText replaces every URL in s by its RedactURL form. Health details,
// errors shown on the admin listener and log lines go through it, because
// Go's network errors quote the whole URL they failed on.
func RedactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, RedactURL)
}

// RedactError is RedactText of err's message; "" for a nil err.
func RedactError(err error) string {
	if err == nil {
		return ""
	}
	return RedactText(err.Error())
}

// redactedError keeps the chain of err for errors.Is and errors.As while its
// message has every URL redacted.
type redactedError struct{ err error }

func (e redactedError) Error() string { return RedactError(e.err) }
func (e redactedError) Unwrap() error { return e.err }

// Redacted wraps err so that its message carries no URL userinfo or query;
// errors.Is and errors.As still see err. nil stays nil.
func Redacted(err error) error {
	if err == nil {
		return nil
	}
	var r redactedError
	if errors.As(err, &r) {
		return err
	}
	return redactedError{err}
}
