package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckTable(t *testing.T) {
	for _, c := range []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped loopback
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"::ffff:192.168.1.1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"::ffff:169.254.169.254", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"255.255.255.255", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"::ffff:100.64.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"2002:7f00:1::1", true},     // 6to4 of 127.0.0.1
		{"::127.0.0.1", true},        // IPv4-compatible
		{"fec0::1", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"100.63.255.255", false}, // just below CGNAT
		{"100.128.0.0", false},    // just above CGNAT
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"169.253.255.255", false},
		{"2606:4700:4700::1111", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", false},  // 6to4 of 8.8.8.8
	} {
		err := New(nil).Check(netip.MustParseAddr(c.addr))
		if (err != nil) != c.refused {
			t.Errorf("Check(%s) = %v, want refused %v", c.addr, err, c.refused)
		}
		if err != nil && !IsBlocked(err) {
			t.Errorf("Check(%s) error %T is not a *BlockedError", c.addr, err)
		}
	}
}

func TestAllowList(t *testing.T) {
	allow, err := ParsePrefixes([]string{"10.20.0.0/16", "127.0.0.1", "::ffff:192.168.7.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	g := New(allow)
	for _, c := range []struct {
		addr    string
		refused bool
	}{
		{"10.20.3.4", false},
		{"::ffff:10.20.3.4", false},
		{"10.21.0.1", true},
		{"127.0.0.1", false},
		{"127.0.0.2", true},
		{"192.168.7.9", false}, // the mapped prefix counts for the IPv4 address
		{"192.168.8.1", true},
		{"169.254.169.254", true},
	} {
		if err := g.Check(netip.MustParseAddr(c.addr)); (err != nil) != c.refused {
			t.Errorf("Check(%s) = %v, want refused %v", c.addr, err, c.refused)
		}
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"10.0.0.0/8", "10.20.0.0/33"}, `entry 2, "10.20.0.0/33"`},
		{[]string{"example.com"}, `entry 1, "example.com", is not a CIDR prefix`},
		{[]string{"10.20.1.0/16"}, `did you mean "10.20.0.0/16"`},
		{[]string{""}, `entry 1, ""`},
	} {
		_, err := ParsePrefixes(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePrefixes(%q) = %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

// A real fetch: loopback is refused on the dialled address (a host name
// that resolves to it too), and the allow-list lets it through.
func TestClientRefusesLoopbackUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secret metrics") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, target := range []string{srv.URL, "http://localhost:" + port + "/"} {
		c := New(nil).Client(5*time.Second, 5)
		resp, err := c.Get(target)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded without the allow-list", target)
		}
		if !IsBlocked(err) {
			t.Errorf("GET %s: %v, want a *BlockedError", target, err)
		}
		c.CloseIdleConnections()
	}
	c := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Client(5*time.Second, 5)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET with 127.0.0.0/8 allowed: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "secret metrics" {
		t.Errorf("body = %q", body)
	}
}

// A redirect dials again and is checked again: an allowed server cannot
// bounce the fetch to a refused address.
func TestRedirectRechecked(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err) // not counted: the other tests cover the check
	}
	internal := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "internal") }))
	internal.Listener.Close()
	internal.Listener = inner
	internal.Start()
	defer internal.Close()
	outer := httptest.NewServer(http.RedirectHandler(internal.URL+"/admin", http.StatusFound))
	defer outer.Close()
	c := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}).Client(5*time.Second, 5)
	defer c.CloseIdleConnections()
	resp, err := c.Get(outer.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the redirect to 127.0.0.2 was followed")
	}
	var b *BlockedError
	if !errors.As(err, &b) || b.Addr != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("err = %v, want 127.0.0.2 blocked", err)
	}
}

func TestRedirectsCapped(t *testing.T) {
	hops := 0
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops++
		http.Redirect(w, r, srv.URL+"/again", http.StatusFound)
	}))
	defer srv.Close()
	c := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Client(5*time.Second, 3)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("endless redirects followed to the end")
	}
	var re *RedirectError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "stopped after 3 redirects") || hops != 4 {
		t.Errorf("err = %v after %d requests, want stopped after 3 redirects (4 requests)", err, hops)
	}
}

// Dialer keeps a Control hook the caller had, after the check.
func TestDialerKeepsControl(t *testing.T) {
	called := 0
	base := &net.Dialer{Timeout: time.Second, Control: func(string, string, syscall.RawConn) error { called++; return nil }}
	d := New(nil).Dialer(base)
	if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9"); !IsBlocked(err) {
		t.Errorf("dial 127.0.0.1: %v, want blocked", err)
	}
	if called != 0 {
		t.Errorf("the caller's hook ran for a refused address")
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	d = New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}).Dialer(base)
	conn, err := d.DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if called != 1 {
		t.Errorf("the caller's hook ran %d times, want 1", called)
	}
}
