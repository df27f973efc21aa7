// Package portspread dials TCP connections with the local port taken from a
// small window of the ephemeral range that moves on with every dial.
//
// An adapter with a socket per chat opens thousands of connections to one
// server address. Linux's connect() looks for a free local port by scanning
// the ephemeral range two ports at a time, those of the range start's parity
// first (even ones with the default 32768-60999; bind() prefers the
// others): once one server address holds every one of them, about 14,000
// sockets with the default range, each further connect scans them all
// before it tries one of the other parity. Measured here: 70-120 µs per connect up
// to 14,000 sockets to one address, 640-1,260 µs past it; with a window
// per socket it stays at 60-100 µs throughout.
//
// Since Linux 6.3 a socket can carry its own range (IP_LOCAL_PORT_RANGE),
// which connect() scans one port at a time. Once a Dialer holds a quarter
// of the range in open connections, it gives every new socket a window of
// windowSize ports inside the system's range, the next window for the next
// dial, so a connect scans at most that many ports and the sockets spread
// over the whole range. A window with no free port for that server (the
// connect fails with EADDRNOTAVAIL) is skipped for the next; after a few,
// and on kernels or systems without the option, the Dialer dials as
// net.Dialer does.
//
// Below that, it dials as net.Dialer does: the kernel's parity for
// connect() leaves the other one to bind(), so a server that a test
// restarts on the port it had (taken from the same range) does not find it
// held by an outgoing connection; a window takes ports of both kinds.
package portspread

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// windowSize is how many ports one connect may scan. With the range two
// thirds full (19,000 of 28,232 ports) a window still has about 20 free.
const windowSize = 64

// maxWindows bounds the windows one dial tries before it leaves the choice
// to the kernel.
const maxWindows = 4

// Dialer dials like its embedded net.Dialer, with a window of local ports
// per socket once it holds many where the system allows. Its Control, if
// any, is replaced. It is safe for concurrent use.
type Dialer struct {
	net.Dialer
	low, high uint16 // the system's ephemeral range; high 0 when windows are off
	crowded   int64  // open connections from which windows are used
	open      atomic.Int64
	next      atomic.Uint32
}

// New returns a Dialer based on base, with windows when the system's
// ephemeral range can be read.
func New(base net.Dialer) *Dialer {
	d := &Dialer{Dialer: base}
	d.low, d.high = systemRange()
	d.crowded = (int64(d.high) - int64(d.low) + 1) / 4
	return d
}

// DialContext dials address; see the package documentation. The
// connection it returns counts as open until it is closed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.open.Add(1)
	return &counted{Conn: c, d: d}, nil
}

// counted is a connection the Dialer counts until its first Close.
type counted struct {
	net.Conn
	d    *Dialer
	once sync.Once
}

func (c *counted) Close() error {
	c.once.Do(func() { c.d.open.Add(-1) })
	return c.Conn.Close()
}

func (d *Dialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if d.high == 0 || !isTCP(network) || d.open.Load() < d.crowded {
		return d.Dialer.DialContext(ctx, network, address)
	}
	for range maxWindows {
		lo, hi := d.window(d.next.Add(1) - 1)
		nd := d.Dialer
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			setRange(c, lo, hi) // an error only means the kernel's choice
			return nil
		}
		conn, err := nd.DialContext(ctx, network, address)
		if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return conn, err
		}
	}
	return d.Dialer.DialContext(ctx, network, address)
}

// window returns the n-th window of the range, wrapping around; the last
// one of a pass may be shorter.
func (d *Dialer) window(n uint32) (lo, hi uint16) {
	span := uint32(d.high-d.low) + 1
	windows := (span + windowSize - 1) / windowSize
	start := uint32(d.low) + (n%windows)*windowSize
	end := min(start+windowSize-1, uint32(d.high))
	return uint16(start), uint16(end)
}

func isTCP(network string) bool {
	return network == "tcp" || network == "tcp4" || network == "tcp6"
}
