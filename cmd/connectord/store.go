package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/postgres"
	"github.com/connectord/connectord/connector/sqlite"
)

// checkStore refuses a store that cannot open as configured: PostgreSQL has
// no default database.
func checkStore(cfg *connector.Config) error {
	if cfg.Store.Driver == "postgres" && cfg.Store.DSN.Reveal() == "" {
		return &connector.ConfigError{Path: "store.dsn",
			Msg: `is required with driver "postgres": a postgres:// URL or key=value string, such as "${CONNECTORD_DSN}"`}
	}
	return nil
}

// openStore opens the configured store. On PostgreSQL the instance takes
// part in the cluster of instances sharing the database, under
// daemon.instance_id.
func openStore(ctx context.Context, cfg *connector.Config) (connector.Store, error) {
	dsn := cfg.Store.DSN.Reveal()
	if cfg.Store.Driver == "postgres" {
		s, err := postgres.OpenWith(ctx, dsn, postgres.Options{Instance: cfg.Instance(), LeaseTTL: cfg.Store.Lease})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	}
	if dsn == "" {
		dsn = filepath.Join(cfg.StatePath(), "connectord.db")
	}
	s, err := sqlite.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// checkConnect is check-config -connect: it reaches the store the
// configuration names and reports what it found, changing nothing.
func checkConnect(ctx context.Context, cfg *connector.Config, stdout io.Writer) error {
	if cfg.Store.Driver != "postgres" {
		fmt.Fprintf(stdout, "store: sqlite, nothing to connect to\n")
		return nil
	}
	s, err := postgres.CheckConnect(ctx, cfg.Store.DSN.Reveal())
	if err != nil {
		return &connector.ConfigError{Path: "store.dsn", Msg: err.Error()}
	}
	switch {
	case s.Version == 0:
		fmt.Fprintf(stdout, "store: postgres reachable; no connectord schema yet (run creates version %d)\n", s.Binary)
	case s.Version < s.Binary:
		fmt.Fprintf(stdout, "store: postgres reachable; schema version %d, run migrates it to %d\n", s.Version, s.Binary)
	default:
		fmt.Fprintf(stdout, "store: postgres reachable; schema version %d, current\n", s.Version)
	}
	return nil
}
