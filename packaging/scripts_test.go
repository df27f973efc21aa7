package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// toolDir makes a directory of links to the named programs, to serve as the
// whole PATH of a script: a program left out is missing for it.
func toolDir(t *testing.T, programs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("%s is needed to run the maintainer scripts: %v", p, err)
		}
		if err := os.Symlink(path, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPreinstallCreatesUser runs the preinstall script into a scratch root
// (through $DPKG_ROOT) twice, with systemd-sysusers and, as on a minimal
// image, with only shadow's groupadd and useradd: both ways must leave one
// connectord user with its own group and no login shell, and a second run
// (an upgrade) must change nothing.
func TestPreinstallCreatesUser(t *testing.T) {
	needRoot(t, "useradd --root and systemd-sysusers --root write a root's user database as root")
	base := []string{"sh", "grep", "getent", "printf"}
	tests := []struct {
		name  string
		tools []string
	}{
		{"systemd-sysusers", append([]string{"systemd-sysusers"}, base...)},
		{"groupadd and useradd", append([]string{"groupadd", "useradd"}, base...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			need(t, tc.tools[0], map[string]string{"systemd-sysusers": "systemd", "groupadd": "passwd"}[tc.tools[0]])
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, text := range map[string]string{"passwd": "root:x:0:0:root:/root:/bin/sh\n", "group": "root:x:0:\n", "shadow": "", "gshadow": ""} {
				if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The script sees only the tools of the case; the shield needs its own.
			script := `PATH="$2" DPKG_ROOT="$1" /bin/sh scripts/preinstall.sh "$3"`
			tools := toolDir(t, tc.tools...)
			shielded(ctx, t, script, root, tools, "install")
			passwd, group := readFile(t, filepath.Join(root, "etc/passwd")), readFile(t, filepath.Join(root, "etc/group"))
			uid, gid := userIDs(t, root, "connectord")
			if !strings.Contains(group, "\nconnectord:x:"+strconv.FormatUint(uint64(gid), 10)+":") {
				t.Errorf("no group connectord with gid %d:\n%s", gid, group)
			}
			if uid == 0 || uid >= 1000 {
				t.Errorf("connectord has uid %d, want a system uid (1-999)", uid)
			}
			shielded(ctx, t, script, root, tools, "upgrade")
			if readFile(t, filepath.Join(root, "etc/passwd")) != passwd || readFile(t, filepath.Join(root, "etc/group")) != group {
				t.Error("a second run changed the user database")
			}
		})
	}
}
