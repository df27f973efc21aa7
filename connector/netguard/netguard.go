// Package netguard keeps outbound fetches of URLs that someone else chose (an
// agent's attachment, a link in a message) away from the daemon's own network:
// loopback, private and link-local ranges, the cloud metadata address and the
// like. The check runs on the IP address actually dialled, after DNS
// resolution, so a name that resolves (or re-resolves: DNS rebinding) to an
// internal address is refused, and so is every redirect hop, since each one
// dials again. Operators whose vendors live on a private network allow their
// prefixes explicitly.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// BlockedError says that a dial was refused because of where it would go.
type BlockedError struct {
	Addr   netip.Addr // the address that would have been dialled
	Reason string     // "loopback", "private", ...
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("refused to connect to %s (%s address; not in the fetch allow-list)", e.Addr, e.Reason)
}

// IsBlocked reports whether err, or an error it wraps, is a *BlockedError.
func IsBlocked(err error) bool {
	var b *BlockedError
	return errors.As(err, &b)
}

// Guard decides which addresses may be dialled. The zero Guard refuses every
// special-purpose address and allows nothing extra. A Guard is immutable and
// safe for concurrent use.
type Guard struct {
	allow []netip.Prefix
}

// New returns a Guard that also lets through the addresses in allow, even
// when they are in a refused range ("10.20.0.0/16" for an on-premises
// vendor, "127.0.0.0/8" for a test fake).
func New(allow []netip.Prefix) *Guard {
	g := &Guard{}
	for _, p := range allow {
		g.allow = append(g.allow, unmapPrefix(p))
	}
	return g
}

// ParsePrefixes parses CIDR prefixes ("10.20.0.0/16", "fd00::/8"); a bare
// address is a single-address prefix. The error names the first bad entry
// (1-based) and what is wrong with it.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("entry %d, %q, is not a CIDR prefix like \"10.20.0.0/16\"", i+1, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("entry %d, %q, has bits set past its length (did you mean %q?)", i+1, s, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

// Check returns a *BlockedError when addr may not be dialled, else nil.
func (g *Guard) Check(addr netip.Addr) error {
	a := addr.Unmap().WithZone("")
	mapped := netip.AddrFrom16(a.As16()) // an IPv6 prefix such as ::/0 covers IPv4 in this form
	for _, p := range g.allow {
		if p.Contains(a) || a.Is4() && p.Contains(mapped) {
			return nil
		}
	}
	if reason := refused(a); reason != "" {
		return &BlockedError{Addr: addr, Reason: reason}
	}
	return nil
}

// Control is a net.Dialer Control hook: it runs after DNS resolution with
// the literal address about to be connected to, for every attempt (Happy
// Eyeballs tries several).
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: cannot read the dialled address %q (%s): %w", address, network, err)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a copy of base (a zero Dialer when nil) whose connections
// are checked by the Guard. An existing Control or ControlContext hook is
// kept and runs after the check.
func (g *Guard) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if base != nil {
		*d = *base
	}
	prevCtl, prevCtx := d.Control, d.ControlContext
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := g.Control(network, address, c); err != nil {
			return err
		}
		switch {
		case prevCtx != nil:
			return prevCtx(ctx, network, address, c)
		case prevCtl != nil:
			return prevCtl(network, address, c)
		}
		return nil
	}
	return d
}

// Transport returns an http.Transport like http.DefaultTransport but dialling
// through the Guard, and without a proxy: a proxy would be the only address
// checked, and it would then reach any target on our behalf.
func (g *Guard) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = g.Dialer(nil).DialContext
	t.DialTLSContext = nil
	return t
}

// Client returns an http.Client on the Guard's Transport that gives up after
// timeout (the whole exchange, body included) and after maxRedirects
// redirects. Every redirect hop is checked again, as it dials anew.
func (g *Guard) Client(timeout time.Duration, maxRedirects int) *http.Client {
	return &http.Client{Timeout: timeout, Transport: g.Transport(), CheckRedirect: LimitRedirects(maxRedirects)}
}

// RedirectError says that a redirect was not followed; fetching again would
// meet it again.
type RedirectError struct{ Reason string }

func (e *RedirectError) Error() string { return e.Reason }

// LimitRedirects is an http.Client CheckRedirect that stops after n redirects
// and refuses a redirect to anything but http or https, with a
// *RedirectError (which the client wraps in a *url.Error).
func LimitRedirects(n int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > n {
			return &RedirectError{"stopped after " + strconv.Itoa(n) + " redirects"}
		}
		if s := req.URL.Scheme; s != "http" && s != "https" {
			return &RedirectError{fmt.Sprintf("redirect to a %q URL refused", s)}
		}
		return nil
	}
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into
// its IPv4 form, since addresses are unmapped before they are compared.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if !a.Is4In6() || p.Bits() < 96 {
		return p.Masked()
	}
	return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
}
