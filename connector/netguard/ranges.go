package netguard

import "net/netip"

// special is one refused range and why.
type special struct {
	prefix netip.Prefix
	reason string
}

// specialRanges are the ranges a fetch of a URL from outside never needs:
// this host, the local networks, and addresses that are not unicast on the
// Internet. Built per call: the package keeps no globals.
func specialRanges() []special {
	p := netip.MustParsePrefix
	return []special{
		{p("0.0.0.0/8"), "unspecified"}, // "this network": 0.0.0.0 reaches this host on Linux
		{p("10.0.0.0/8"), "private"},
		{p("100.64.0.0/10"), "shared (CGNAT)"},
		{p("127.0.0.0/8"), "loopback"},
		{p("169.254.0.0/16"), "link-local"}, // cloud metadata services live here
		{p("172.16.0.0/12"), "private"},
		{p("192.0.0.0/24"), "IETF special-purpose"},
		{p("192.168.0.0/16"), "private"},
		{p("198.18.0.0/15"), "benchmarking"},
		{p("224.0.0.0/4"), "multicast"},
		{p("240.0.0.0/4"), "reserved"}, // and 255.255.255.255, the broadcast address
		{p("::/128"), "unspecified"},
		{p("::1/128"), "loopback"},
		{p("::/96"), "IPv4-compatible"}, // deprecated; some stacks still route it to the IPv4 address
		{p("64:ff9b:1::/48"), "local-use NAT64"},
		{p("100::/64"), "discard-only"},
		{p("fc00::/7"), "private (ULA)"},
		{p("fe80::/10"), "link-local"},
		{p("fec0::/10"), "site-local"},
		{p("ff00::/8"), "multicast"},
	}
}

// refused returns why a (unmapped, zoneless) address may not be dialled, or
// "". Addresses that carry an IPv4 address a translator will reach (NAT64's
// well-known prefix, 6to4) are judged by that IPv4 address.
func refused(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	for _, s := range specialRanges() {
		if s.prefix.Contains(a) {
			return s.reason
		}
	}
	if v4, how, ok := embeddedIPv4(a); ok {
		if r := refused(v4); r != "" {
			return r + " via " + how
		}
	}
	return ""
}

// embeddedIPv4 extracts the IPv4 address of a NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) address.
func embeddedIPv4(a netip.Addr) (netip.Addr, string, bool) {
	if !a.Is6() {
		return netip.Addr{}, "", false
	}
	b := a.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64", true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4", true
	}
	return netip.Addr{}, "", false
}
