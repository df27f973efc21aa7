package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentOpensMigrateOnce: two stores opening a fresh database at the
// same moment both succeed, and every migration is recorded once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	for range 5 { // the race is narrow: give it several chances
		dsn := freshDSN(t)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), dsn)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
		}
		rows := inSchema(t, dsn, `SELECT version, count(*) FROM $schema.schema_migrations GROUP BY version ORDER BY version`)
		n := 0
		for rows.Next() {
			var v, c int
			if err := rows.Scan(&v, &c); err != nil {
				t.Fatal(err)
			}
			if n++; v != n || c != 1 {
				t.Errorf("migration %d recorded %d times (row %d)", v, c, n)
			}
		}
		rows.Close()
		if n != SchemaVersion() {
			t.Errorf("%d migrations recorded, want %d", n, SchemaVersion())
		}
	}
}

// TestNewerSchemaRefused: a database migrated by a newer connectord is not
// written by this one.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := freshDSN(t)
	s := open(t, dsn)
	s.Close()
	inSchema(t, dsn, `INSERT INTO $schema.schema_migrations (version, applied_at) VALUES ($1, 0)`, SchemaVersion()+1).Close()
	if _, err := Open(context.Background(), dsn); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want a refusal", err)
	}
}

// TestOpenErrorsHideThePassword: whatever fails in Open, the error names
// neither the DSN nor its password. (The machine's server trusts loopback, so
// a wrong password is accepted there; an unknown database, a closed port and
// a malformed DSN are the failures that carry a password here.)
func TestOpenErrorsHideThePassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	base, err := url.Parse(testDSNOrSkip(t))
	if err != nil {
		t.Fatal(err)
	}
	withPassword := func(u url.URL) string {
		user := "postgres"
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, secret)
		return u.String()
	}
	unknownDB := *base
	unknownDB.Path = "/no_such_database_" + randomName()
	closedPort := *base
	closedPort.Host = "127.0.0.1:" + closedTCPPort(t)
	cases := map[string]string{
		"unknown database": withPassword(unknownDB),
		"closed port":      withPassword(closedPort),
		"malformed":        "postgres://postgres:" + secret + "@127.0.0.1:5432/x?sslmode=bogus",
		"key=value":        "host=127.0.0.1 port=" + closedTCPPort(t) + " user=postgres password=" + secret + " dbname=x",
	}
	for name, dsn := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, dsn) {
				t.Errorf("error shows the password: %s", msg)
			}
		})
	}
}

// testDSNOrSkip is the package database's DSN, skipping as freshDSN does.
func testDSNOrSkip(t *testing.T) string {
	t.Helper()
	if testDB.skipMsg != "" {
		t.Skip(testDB.skipMsg)
	}
	return testDB.dsn
}

// closedTCPPort returns a loopback port nothing listens on.
func closedTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

// TestRedactedError: an error that quotes the DSN (as a driver's may) loses
// the password in every spelling, raw, in a URL and in key=value form.
func TestRedactedError(t *testing.T) {
	const secret = "p@ss word/x"
	urlDSN := (&url.URL{Scheme: "postgres", User: url.UserPassword("u", secret), Host: "db.example:5432", Path: "/c"}).String()
	kvDSN := "host=db.example user=u password='" + secret + "' dbname=c"
	for _, dsn := range []string{urlDSN, kvDSN} {
		cause := errors.New(`dial "` + dsn + `" failed; password was ` + secret + ` and ` + url.PathEscape(secret))
		msg := redactedError("connect to the database", cause, dsn).Error()
		if strings.Contains(msg, "word/x") || strings.Contains(msg, "p@ss") || strings.Contains(msg, url.PathEscape(secret)) {
			t.Errorf("redacted error still shows the password: %s", msg)
		}
		if errors.Unwrap(redactedError("x", cause, dsn)) != nil {
			t.Error("the unredacted cause can be unwrapped")
		}
	}
}
