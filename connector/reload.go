package connector

import (
	"fmt"
	"reflect"
	"slices"
)

// Reload applies the parts of next that can change while the daemon runs
// (conversation timing, customer notices, and the routes of conversations
// that start from now on) without touching a connection, and returns the
// sections that differ but only a restart applies. next must have passed
// Check. The log level is the caller's: it owns the logger.
func (d *Daemon) Reload(next *Config) (needsRestart []string, err error) {
	needsRestart = d.restartOnly(next)
	vendorFor := next.VendorFor
	if bad := d.unknownRoutes(next); bad != "" {
		needsRestart = append(needsRestart, "routes ("+bad+")")
		vendorFor = d.cfg.VendorFor
	}
	if err := d.router.Reconfigure(next.Conversation, next.Notices, vendorFor); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return needsRestart, nil
}

// restartOnly names the sections of next that differ from the running
// configuration and that only a restart applies.
func (d *Daemon) restartOnly(next *Config) []string {
	var out []string
	cur := d.cfg
	for _, s := range []struct {
		name     string
		old, new any
	}{
		{"daemon", cur.Daemon, next.Daemon}, {"http", cur.HTTP, next.HTTP}, {"store", cur.Store, next.Store},
		{"log.format", cur.Log.Format, next.Log.Format},
	} {
		if !reflect.DeepEqual(s.old, s.new) {
			out = append(out, s.name)
		}
	}
	out = append(out, changedBlocks(cur.Channels, next.Channels)...)
	return append(out, changedBlocks(cur.Vendors, next.Vendors)...)
}

// changedBlocks names the adapter blocks added, removed or changed.
func changedBlocks(cur, next []Instance) []string {
	tables := func(is []Instance) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, i := range is {
			var t map[string]any
			if i.decode == nil || i.decode(&t) != nil {
				t = map[string]any{"": "undecodable"}
			}
			m[i.Path] = t
		}
		return m
	}
	a, b := tables(cur), tables(next)
	var out []string
	for path, t := range a {
		if u, ok := b[path]; !ok || !reflect.DeepEqual(t, u) {
			out = append(out, path)
		}
	}
	for path := range b {
		if _, ok := a[path]; !ok {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
}

// unknownRoutes names a route of next that names an adapter this process
// does not run, "" when every route can be followed now.
func (d *Daemon) unknownRoutes(next *Config) string {
	for _, rt := range next.Routes {
		if _, ok := d.router.channels[rt.Channel]; !ok {
			return "channel " + rt.Channel + " is not running"
		}
		if _, ok := d.router.vendors[rt.Vendor]; !ok {
			return "vendor " + rt.Vendor + " is not running"
		}
	}
	return ""
}
