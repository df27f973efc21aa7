package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/connectord/connectord/connector/sqlite"
)

// TestOpenErrorsHideThePath: the path may be a DSN carrying a password, and
// start-up errors are logged, so no error of Open repeats it.
func TestOpenErrorsHideThePath(t *testing.T) {
	const secret = "hunter2"
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file-"+secret)
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	isDir := filepath.Join(dir, "dir-"+secret)
	if err := os.Mkdir(isDir, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage-"+secret+".db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		is         error // a cause the error must still carry, or nil
	}{
		{"a DSN with a password", "postgres://app:" + secret + "@db.example/connectord?sslmode=require", nil},
		{"a DSN without parameters", "postgres://app:" + secret + "@db.example/connectord", nil},
		{"parameters", filepath.Join(dir, "c.db?_pragma=key("+secret+")"), nil},
		{"directory under a file", filepath.Join(notDir, "c.db"), syscall.ENOTDIR},
		{"a directory", isDir, nil},
		{"not a database", garbage, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(context.Background(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tc.name)
			}
			t.Logf("error: %v", err)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats the path: %v", err)
			}
			if !strings.Contains(err.Error(), "database") {
				t.Errorf("the error does not say what failed: %v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("the error lost its cause %v: %v", tc.is, err)
			}
		})
	}
}
