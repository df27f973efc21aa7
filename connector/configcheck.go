package connector

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Helpers for adapters' configuration checks. Each reports through the bad
// function connector.DecodeBlock hands an adapter's check, with the key as
// the adapter's block names it.

// BadFunc reports one problem at key of an adapter's block.
type BadFunc func(key, format string, args ...any)

// CheckKeys reports what is wrong with the policy at the block's
// reconnect_initial, reconnect_max and reconnect_stable keys.
func (p Reconnect) CheckKeys(bad BadFunc) {
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"reconnect_initial", p.Initial}, {"reconnect_max", p.Max}, {"reconnect_stable", p.Stable}} {
		if k.d <= 0 {
			bad(k.key, `must be a positive duration like "30s"`)
		}
	}
	if p.Initial > 0 && p.Max > 0 && p.Max < p.Initial {
		bad("reconnect_max", "must not be less than reconnect_initial")
	}
}

// KeyDuration is a duration key of an adapter's block and its value.
type KeyDuration struct {
	Key string
	Val time.Duration
}

// CheckMinDurations reports every duration below min (a timeout or an
// interval that must not be zero).
func CheckMinDurations(bad BadFunc, min time.Duration, ds ...KeyDuration) {
	for _, d := range ds {
		if d.Val < min {
			bad(d.Key, "must be a duration of at least %s, written like \"30s\", not %s", min, d.Val)
		}
	}
}

// IsLoopback reports whether host names the loopback interface: "localhost"
// or a loopback IP address. Other names are not resolved: what they point at
// can change after the check.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// maxCABundle bounds a CA bundle file: a few hundred KiB in practice.
const maxCABundle = 1 << 20

// ClientTLS returns the TLS settings of an adapter's client: TLS 1.2 or
// later, trusting the PEM certificates of caFile (read here) or, without
// one, of caPEM (a ca_file the loader already read) in place of the
// system's roots when either is set. The error reads as the ca_file key's
// problem.
func ClientTLS(caFile, caPEM string, skipVerify bool) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify} //nolint:gosec // only when the operator asks
	pem, from := []byte(caPEM), "the file"
	if caFile != "" {
		b, err := ReadFileBounded(caFile, maxCABundle)
		if err != nil {
			return nil, fmt.Errorf("cannot read: %w", err)
		}
		pem, from = b, caFile
	}
	if len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", from)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}
