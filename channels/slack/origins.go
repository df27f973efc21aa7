package slack

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/netguard"
)

// origin is a scheme and host[:port] the bot token may be sent to.
type origin struct {
	scheme, host string // host lower-case, without the scheme's default port
}

// parseOrigin reads a file_hosts entry: a bare host name means https.
func parseOrigin(s string) (origin, error) {
	if !strings.Contains(s, "://") {
		if s == "" || strings.ContainsAny(s, "/?#@ \t") {
			return origin{}, fmt.Errorf("%q is not a host name like \"files.slack.com\"", s)
		}
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return origin{}, fmt.Errorf("%q is not a host name or an http(s) origin like \"https://files.slack.com\"", s)
	}
	if !hostName(u.Hostname()) {
		return origin{}, fmt.Errorf("%q does not name a host (letters, digits, dots and dashes, or an IP address)", s)
	}
	return originOf(u), nil
}

// hostName reports whether h is an IP address or an ASCII DNS name.
func hostName(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// originOf is u's origin in the form origins are compared in.
func originOf(u *url.URL) origin {
	host := strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil &&
		(u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return origin{scheme: strings.ToLower(u.Scheme), host: host}
}

// parseNetwork parses file_hosts, api_url's origin and fetch_allow into the
// forms the channel uses; each bad entry is a ConfigError naming its key.
func (c *Config) parseNetwork(inst connector.Instance) []error {
	var errs []error
	c.tokenOrigins = nil
	for i, h := range c.FileHosts {
		o, err := parseOrigin(strings.TrimSpace(h))
		if err != nil {
			errs = append(errs, inst.Errorf("file_hosts", "entry %d: %v", i+1, err))
			continue
		}
		c.tokenOrigins = append(c.tokenOrigins, o)
	}
	if u, err := url.Parse(c.APIURL); err == nil && u.Host != "" {
		// The token goes to api_url with every call anyway; a fake Slack in
		// tests serves its files from there too.
		c.tokenOrigins = append(c.tokenOrigins, originOf(u))
	}
	allow, err := netguard.ParsePrefixes(c.FetchAllow)
	if err != nil {
		errs = append(errs, inst.Errorf("fetch_allow", "%v", err))
	}
	c.fetchAllow = allow
	return errs
}

// tokenURL reports whether raw is an http(s) URL on a host that may get
// the bot token: one of file_hosts, or api_url's.
func (c *Config) tokenURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	o := originOf(u)
	for _, t := range c.tokenOrigins {
		if o == t {
			return true
		}
	}
	return false
}
