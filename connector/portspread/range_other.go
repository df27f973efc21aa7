//go:build !linux

package portspread

import "syscall"

// systemRange is Linux's alone: elsewhere the Dialer dials as net.Dialer.
func systemRange() (low, high uint16) { return 0, 0 }

func setRange(syscall.RawConn, uint16, uint16) error { return nil }
