// Package portspread dials TCP connections with the local port taken from a
// small window of the ephemeral range that moves on with every dial.
//
// An adapter with a socket per chat opens thousands of connections to one
// server address. Linux's connect() looks for a free local port by scanning
// the ephemeral range two ports at a time, the odd ones first (bind() takes
// the even ones): once one server address holds every odd port, about
// 14,000 sockets with the default range, each further connect scans them
// all before it tries an even one. Measured here: 70-120 µs per connect up
// to 14,000 sockets to one address, 640-1,260 µs past it; with a window
// per socket it stays at 60-100 µs throughout.
//
// Since Linux 6.3 a socket can carry its own range (IP_LOCAL_PORT_RANGE),
// which connect() scans one port at a time. The Dialer gives every socket a
// window of windowSize ports inside the system's range, the next window for
// the next dial, so a connect scans at most that many ports and the
// sockets spread over the whole range. A window with no free port for that
// server (the connect fails with EADDRNOTAVAIL) is skipped for the next;
// after a few, and on kernels or systems without the option, the Dialer
// dials as net.Dialer does.
package portspread

import (
	"context"
	"errors"
	"net"
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
// per socket where the system allows. Its Control, if any, is replaced. It
// is safe for concurrent use.
type Dialer struct {
	net.Dialer
	low, high uint16 // the system's ephemeral range; high 0 when windows are off
	next      atomic.Uint32
}

// New returns a Dialer based on base, with windows when the system's
// ephemeral range can be read.
func New(base net.Dialer) *Dialer {
	d := &Dialer{Dialer: base}
	d.low, d.high = systemRange()
	return d
}

// DialContext dials address; see the package documentation.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.high == 0 || !isTCP(network) {
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
