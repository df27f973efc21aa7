package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"go.uber.org/goleak"

	"github.com/connectord/connectord/connector"
)

// defaultDSN is the machine's own server: PostgreSQL on loopback, trust auth.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testDB is the package's database: created fresh with a random name by
// TestMain and dropped at the end. Every store a test opens lives in a schema
// of its own inside it.
var testDB struct {
	dsn     string // the test database's DSN
	skipMsg string // why there is none, when the server cannot be reached
	admin   *sql.DB
}

// TestMain fails the package when a goroutine outlives the tests: every Store
// was closed by then, so its writer and pool must be gone.
func TestMain(m *testing.M) {
	code := run(m)
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: leaked goroutines:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) int {
	server := os.Getenv("CONNECTORD_TEST_PG_DSN")
	if server == "" {
		server = defaultDSN
	}
	drop, err := createDatabase(server)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL is not reachable (%s): start it (bash scripts/test.sh does) or set CONNECTORD_TEST_PG_DSN", connector.RedactText(err.Error()))
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL:", msg)
			return 1
		}
		testDB.skipMsg = msg
		return m.Run()
	}
	defer drop()
	return m.Run()
}

// createDatabase creates the package's database on server and returns what
// drops it.
func createDatabase(server string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return nil, err
	}
	name := "connectord_test_" + randomName()
	// A linguistic collation, as production databases often have (where
	// 'a' sorts before 'B'); the store must not depend on the server's.
	// Servers without ICU get their default.
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0`); err != nil {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			admin.Close()
			return nil, err
		}
	}
	u, err := url.Parse(server)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("CONNECTORD_TEST_PG_DSN must be a postgres:// URL: %w", err)
	}
	u.Path = "/" + name
	testDB.dsn = u.String()
	db, err := sql.Open("pgx", testDB.dsn)
	if err != nil {
		admin.Close()
		return nil, err
	}
	testDB.admin = db
	return func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			fmt.Fprintln(os.Stderr, "drop test database:", err)
		}
		admin.Close()
	}, nil
}

func randomName() string {
	b := make([]byte, 6)
	rand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

// freshDSN creates an empty schema and returns a DSN whose search_path is
// it: a fresh database as far as the store can tell.
func freshDSN(t testing.TB) string {
	t.Helper()
	if testDB.skipMsg != "" {
		t.Skip(testDB.skipMsg)
	}
	schema := "s_" + randomName()
	if _, err := testDB.admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(testDB.dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// schemaOf returns the schema a freshDSN names.
func schemaOf(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("search_path")
}

// open opens a store on dsn that is closed when the test ends (unless it was already).
func open(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// inSchema runs query in the store's schema, for tests that look at or
// tamper with the tables.
func inSchema(t testing.TB, dsn, query string, args ...any) *sql.Rows {
	t.Helper()
	q := strings.ReplaceAll(query, "$schema", schemaOf(t, dsn))
	rows, err := testDB.admin.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}
