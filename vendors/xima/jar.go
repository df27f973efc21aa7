package xima

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// jar is one chat's cookies: the browser session that POST /chat/end finds
// the chat by. Every call goes to the one base_url host, so a cookie is a
// name and a value (domain and path are not told apart). It is kept in the
// session so that a restart keeps it; bounded in count and size.
type jar struct {
	mu      sync.Mutex
	cookies []cookie
	dirty   bool // changed in a way worth storing at once
}

// cookie is a stored cookie; Expires zero means a session cookie.
type cookie struct {
	Name    string    `json:"n"`
	Value   string    `json:"v"`
	Expires time.Time `json:"e,omitzero"`
}

const (
	maxCookies     = 16
	maxCookieBytes = 4096
)

func newJar(stored []cookie) *jar {
	j := &jar{}
	for _, c := range stored {
		if len(j.cookies) < maxCookies && validCookie(c.Name, c.Value) {
			j.cookies = append(j.cookies, c)
		}
	}
	return j
}

func validCookie(name, value string) bool {
	return name != "" && len(name)+len(value) <= maxCookieBytes && !strings.ContainsAny(name, "=;, \t\r\n")
}

// add sets the Cookie header of req.
func (j *jar) add(req *http.Request, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range j.cookies {
		if c.Expires.IsZero() || now.Before(c.Expires) {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
}

// take records a response's Set-Cookie headers.
func (j *jar) take(resp *http.Response, now time.Time) {
	set := resp.Cookies()
	if len(set) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, hc := range set {
		if !validCookie(hc.Name, hc.Value) {
			continue
		}
		i := slices.IndexFunc(j.cookies, func(c cookie) bool { return c.Name == hc.Name })
		gone := hc.MaxAge < 0 || (!hc.Expires.IsZero() && !hc.Expires.After(now) && hc.MaxAge == 0)
		switch {
		case gone && i >= 0:
			j.cookies = slices.Delete(j.cookies, i, i+1)
			j.dirty = true
		case gone:
		case i >= 0:
			if j.cookies[i].Value != hc.Value && !stickiness(hc.Name) {
				j.dirty = true
			}
			j.cookies[i] = cookieOf(hc, now)
		case len(j.cookies) < maxCookies:
			j.cookies = append(j.cookies, cookieOf(hc, now))
			j.dirty = true
		}
	}
}

func cookieOf(hc *http.Cookie, now time.Time) cookie {
	c := cookie{Name: hc.Name, Value: hc.Value}
	switch {
	case hc.MaxAge > 0:
		c.Expires = now.Add(time.Duration(hc.MaxAge) * time.Second)
	case !hc.Expires.IsZero():
		c.Expires = hc.Expires.UTC()
	}
	return c
}

// stickiness reports whether a cookie is an AWS load balancer's stickiness
// cookie, which a balancer sets anew on every answer: its new value rides
// with the chat's next stored event instead of a store write of its own.
func stickiness(name string) bool {
	return strings.HasPrefix(name, "AWSALB") || strings.HasPrefix(name, "AWSELB")
}

// snapshot returns the cookies to store, and clears dirty.
func (j *jar) snapshot() []cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.dirty = false
	return slices.Clone(j.cookies)
}

// changed reports whether the jar changed in a way to store at once.
func (j *jar) changed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.dirty
}
