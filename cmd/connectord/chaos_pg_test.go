package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/connectord/connectord/connector"
)

// chaosDefaultDSN is the machine's own server: PostgreSQL on loopback,
// trust auth. CONNECTORD_TEST_PG_DSN names another.
const chaosDefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// chaosDatabase creates an empty database with a random name on the test
// server, drops it when the test ends, and returns its DSN and a handle on
// it. Without a reachable server the test fails under CI=true and is
// skipped otherwise, saying why.
func chaosDatabase(t *testing.T) (string, *sql.DB) {
	t.Helper()
	server := os.Getenv("CONNECTORD_TEST_PG_DSN")
	if server == "" {
		server = chaosDefaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", server)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL is not reachable (%s): start it (bash scripts/test.sh does) or set CONNECTORD_TEST_PG_DSN",
			connector.RedactText(err.Error()))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b) //nolint:errcheck // never fails
	name := "connectord_chaos_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create the test database: %v", err)
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("CONNECTORD_TEST_PG_DSN must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-added first: the daemons' own cleanups, added
	// later, have killed them by the time the database goes.
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop the test database: %v", err)
		}
	})
	return u.String(), db
}

// ownedBy returns the customers of the open conversations that instance
// owns, as the store records them (the SMS number, or Slack's
// team/channel/thread).
func ownedBy(ctx context.Context, db *sql.DB, instance string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT customer FROM conversations WHERE owner = $1 AND state <> 'ended'`, instance)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var customers []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		customers = append(customers, c)
	}
	return customers, rows.Err()
}
