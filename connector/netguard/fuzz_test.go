package netguard

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzCheck: an IPv4 address and its IPv4-mapped IPv6 form get the same
// verdict, an address inside an allowed prefix always passes, and a refusal
// is always a *BlockedError naming the address.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, []byte{0, 0, 0, 0}, uint8(0))
	f.Add([]byte{169, 254, 169, 254}, []byte{169, 254, 0, 0}, uint8(16))
	f.Add([]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{10, 20, 0, 0}, uint8(16))
	f.Add([]byte{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1}, []byte{8, 8, 8, 8}, uint8(32))
	f.Fuzz(func(t *testing.T, raw, allowRaw []byte, bits uint8) {
		a, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		plain := New(nil)
		err := plain.Check(a)
		if a.Is4() {
			if err2 := plain.Check(netip.AddrFrom16(a.As16())); (err == nil) != (err2 == nil) {
				t.Fatalf("%s: %v, but its mapped form: %v", a, err, err2)
			}
		}
		if err != nil {
			if b, ok := err.(*BlockedError); !ok || b.Addr != a || b.Reason == "" {
				t.Fatalf("%s: refusal %#v", a, err)
			}
		}
		base, ok := netip.AddrFromSlice(allowRaw)
		if !ok {
			return
		}
		p, perr := base.Prefix(int(bits) % (base.BitLen() + 1))
		if perr != nil {
			return
		}
		if p.Contains(a.Unmap()) || p.Contains(a) {
			if err := New([]netip.Prefix{p}).Check(a); err != nil {
				t.Fatalf("%s is in the allowed %s but refused: %v", a, p, err)
			}
		}
	})
}

// FuzzParsePrefixes: the allow-list decoder returns one prefix per entry or
// an error naming an entry; never a panic.
func FuzzParsePrefixes(f *testing.F) {
	f.Add("10.20.0.0/16\n127.0.0.1")
	f.Add("fd00::/8")
	f.Add("::ffff:10.0.0.0/104\n10.0.0.1/8")
	f.Add("not a prefix")
	f.Fuzz(func(t *testing.T, list string) {
		in := strings.Split(list, "\n")
		out, err := ParsePrefixes(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "entry ") {
				t.Fatalf("error does not name the entry: %v", err)
			}
			return
		}
		if len(out) != len(in) {
			t.Fatalf("%d prefixes from %d entries", len(out), len(in))
		}
		for _, p := range out {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("prefix %v is not valid and masked", p)
			}
		}
		_ = New(out)
	})
}
