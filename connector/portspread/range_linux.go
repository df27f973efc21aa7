package portspread

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// systemRange reads the ephemeral port range; 0, 0 when it cannot.
func systemRange() (low, high uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	return parseRange(string(b))
}

// parseRange reads the file's two numbers; 0, 0 unless they make a range
// of at least one window.
func parseRange(s string) (low, high uint16) {
	var lo, hi uint32
	if _, err := fmt.Sscan(s, &lo, &hi); err != nil || lo == 0 || hi > 65535 || hi < lo+windowSize-1 {
		return 0, 0
	}
	return uint16(lo), uint16(hi)
}

// setRange gives the socket its own range of local ports. The kernel keeps
// each bound that lies inside the system's range and scans the range one
// port at a time; before Linux 6.3 the option does not exist.
func setRange(c syscall.RawConn, lo, hi uint16) error {
	var err error
	ctrl := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_LOCAL_PORT_RANGE, int(uint32(hi)<<16|uint32(lo)))
	})
	if ctrl != nil {
		return ctrl
	}
	return err
}
