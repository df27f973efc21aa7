package portspread

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// needRanges fails (in CI) or skips the test on a kernel without
// IP_LOCAL_PORT_RANGE (before Linux 6.3), where the Dialer dials as
// net.Dialer does and there is no window to see.
func needRanges(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_LOCAL_PORT_RANGE, 40000|40063<<16)
	if errors.Is(err, syscall.ENOPROTOOPT) {
		if os.Getenv("CI") == "true" {
			t.Fatal("this kernel has no IP_LOCAL_PORT_RANGE (Linux 6.3 or later has): the Dialer's windows cannot be tested")
		}
		t.Skip("this kernel has no IP_LOCAL_PORT_RANGE (Linux 6.3 or later has)")
	}
	if err != nil {
		t.Fatal(err)
	}
}

// listen returns a listener on loopback that accepts and holds every
// connection until the test ends.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().String()
}

func localPort(t *testing.T, c net.Conn) uint16 {
	t.Helper()
	return uint16(c.LocalAddr().(*net.TCPAddr).Port)
}

// Each dial takes its local port from the next window of the range.
func TestSuccessiveDialsTakeSuccessiveWindows(t *testing.T) {
	needRanges(t)
	addr := listen(t)
	d := New(net.Dialer{})
	if d.high == 0 {
		t.Fatal("the system's ephemeral range was not read")
	}
	d.crowded = 0 // windows from the first dial
	for i := range uint32(8) {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		lo, hi := d.window(i)
		if p := localPort(t, c); p < lo || p > hi {
			t.Errorf("dial %d: local port %d, want one in [%d, %d]", i, p, lo, hi)
		}
	}
}

// A window with no port free for the address is passed over, and when
// every window tried is full the kernel chooses: no dial fails for it.
func TestFullWindowsPassedOver(t *testing.T) {
	needRanges(t)
	addr := listen(t)
	d := New(net.Dialer{})
	// Two windows only: the 129th socket to one address finds both full.
	d.high, d.crowded = d.low+2*windowSize-1, 0
	inRange := 0
	var last uint16
	for i := range 2*windowSize + 2 {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		last = localPort(t, c)
		if last >= d.low && last <= d.high {
			inRange++
		}
	}
	// Another process may hold a port of the range; nearly all are ours.
	if inRange < 2*windowSize-8 || inRange > 2*windowSize {
		t.Errorf("%d sockets in the %d ports of the windows, want nearly all of them", inRange, 2*windowSize)
	}
	if last >= d.low && last <= d.high {
		t.Errorf("the last dial, with both windows full, got port %d inside them", last)
	}
}

// A dial to a name, and over IPv6 where the machine has it, works too (the
// option may or may not apply to an IPv6 socket; either way nothing fails).
func TestOtherNetworks(t *testing.T) {
	d := New(net.Dialer{})
	_, port, err := net.SplitHostPort(listen(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback here (%v): only IPv4 dialed", err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if c, err = d.DialContext(context.Background(), "tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in      string
		low, hi uint16
	}{
		{"32768\t60999\n", 32768, 60999},
		{"1024 65535", 1024, 65535},
		{"40000 40063", 40000, 40063},
		{"40000 40062", 0, 0}, // smaller than one window
		{"0 65535", 0, 0},
		{"1024 70000", 0, 0},
		{"", 0, 0},
		{"abc def", 0, 0},
		{"60999 32768", 0, 0},
	} {
		if lo, hi := parseRange(tc.in); lo != tc.low || hi != tc.hi {
			t.Errorf("parseRange(%q) = %d, %d; want %d, %d", tc.in, lo, hi, tc.low, tc.hi)
		}
	}
}

// FuzzParseRange: whatever the file holds, the range is either off or at
// least one window inside the port numbers, and every window of it lies
// inside it.
func FuzzParseRange(f *testing.F) {
	f.Add("32768\t60999\n")
	f.Add("1 65535")
	f.Add("65472 65535")
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi := parseRange(s)
		if hi == 0 {
			if lo != 0 {
				t.Fatalf("parseRange(%q) = %d, 0", s, lo)
			}
			return
		}
		if lo == 0 || uint32(hi) < uint32(lo)+windowSize-1 {
			t.Fatalf("parseRange(%q) = %d, %d", s, lo, hi)
		}
		d := &Dialer{low: lo, high: hi}
		for _, n := range []uint32{0, 1, 1000, 1<<32 - 1} {
			if a, b := d.window(n); a < lo || b > hi || a > b || b-a >= windowSize {
				t.Fatalf("range %d-%d: window %d is %d-%d", lo, hi, n, a, b)
			}
		}
	})
}

// Until it holds a quarter of the range, a Dialer leaves the port to the
// kernel (for connect, one of the range start's parity), and it counts a
// connection open until its first Close.
func TestWindowsOnlyWhenCrowded(t *testing.T) {
	needRanges(t)
	addr := listen(t)
	d := New(net.Dialer{})
	if want := (int64(d.high) - int64(d.low) + 1) / 4; d.crowded != want {
		t.Fatalf("crowded = %d, want a quarter of the range (%d)", d.crowded, want)
	}
	d.crowded = 3
	var conns []net.Conn
	for i := range 6 {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		p := localPort(t, c)
		lo, hi := d.window(uint32(max(0, i-3)))
		inWindow := p >= lo && p <= hi
		if i < 3 && (p%2 != d.low%2 || inWindow && lo == d.low) {
			t.Errorf("dial %d, %d open: port %d; want the kernel's (of %d's parity), not the first window", i, i, p, d.low)
		}
		if i >= 3 && !inWindow {
			t.Errorf("dial %d, %d open: port %d, want one in window %d [%d, %d]", i, i, p, i-3, lo, hi)
		}
	}
	for _, c := range conns {
		c.Close()
		c.Close() // counted once
	}
	if n := d.open.Load(); n != 0 {
		t.Errorf("%d connections counted open after all were closed", n)
	}
}
