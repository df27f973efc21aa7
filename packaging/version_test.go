package packaging

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// describeVersion asks scripts/package.sh for the package version of one
// `git describe` string, with 12 commits and HEAD abc1234.
func describeVersion(ctx context.Context, t *testing.T, describe string) string {
	t.Helper()
	return strings.TrimSpace(run(ctx, t, nil, "bash", packageScript, "--describe", describe, "12", "abc1234"))
}

func TestVersionFromDescribe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	valid := regexp.MustCompile(versionPattern)
	tests := []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gdef5678", "1.2.3+git4.def5678"},
		{"v1.2.3-4-gdef5678-dirty", "1.2.3+git4.def5678.dirty"},
		{"v1.2.3-rc1-4-gdef5678", "1.2.3~rc1+git4.def5678"},
		{"abc1234", "0.0.0~git12.abc1234"},
		{"abc1234-dirty", "0.0.0~git12.abc1234.dirty"},
		// A tag that is no version counts as no tag.
		{"release-x-4-gdef5678", "0.0.0~git12.abc1234"},
	}
	for _, tc := range tests {
		t.Run(tc.describe, func(t *testing.T) {
			got := describeVersion(ctx, t, tc.describe)
			if got != tc.want {
				t.Errorf("version of %q = %q, want %q", tc.describe, got, tc.want)
			}
			if !valid.MatchString(got) {
				t.Errorf("version %q is not valid for both Debian and RPM", got)
			}
		})
	}
}

// TestVersionsOrder checks with dpkg and rpm themselves that the versions of
// successive builds sort as the builds do: untagged builds first, then a
// release candidate, the release, and the commits after it.
func TestVersionsOrder(t *testing.T) {
	dpkg := need(t, "dpkg", "dpkg")
	rpm := need(t, "rpm", "rpm")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var versions []string
	for _, d := range []string{"abc1234", "v1.2.3-rc1", "v1.2.3-rc1-2-gdef5678", "v1.2.3", "v1.2.3-dirty", "v1.2.3-4-gdef5678", "v1.3.0"} {
		versions = append(versions, describeVersion(ctx, t, d))
	}
	env := append(os.Environ(), "HOME="+t.TempDir())
	for i := 1; i < len(versions); i++ {
		older, newer := versions[i-1], versions[i]
		if _, err := runErr(ctx, nil, dpkg, "--compare-versions", older, "lt", newer); err != nil {
			t.Errorf("dpkg: %s is not older than %s", older, newer)
		}
		// rpm.vercmp is rpm's own comparison: -1 when the first is older.
		got := run(ctx, t, env, rpm, "--eval", `%{lua: print(rpm.vercmp("`+older+`", "`+newer+`"))}`)
		if strings.TrimSpace(got) != "-1" {
			t.Errorf("rpm: vercmp(%s, %s) = %q, want -1", older, newer, strings.TrimSpace(got))
		}
	}
}

// TestDefaultVersion checks the version derived from this checkout, which
// every build without VERSION uses.
func TestDefaultVersion(t *testing.T) {
	need(t, "git", "git")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runErr(ctx, nil, "git", "rev-parse", "--git-dir"); err != nil {
		t.Fatalf("not a git checkout, so no version can be derived: %v", err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")} // no VERSION
	got := strings.TrimSpace(run(ctx, t, env, "bash", packageScript, "--version"))
	if !regexp.MustCompile(versionPattern).MatchString(got) {
		t.Errorf("derived version %q is not valid for both Debian and RPM", got)
	}
	head := strings.TrimSpace(run(ctx, t, nil, "git", "rev-parse", "--short", "HEAD"))
	tagged := run(ctx, t, nil, "git", "tag", "--points-at", "HEAD") != ""
	if !tagged && !strings.Contains(got, head) {
		t.Errorf("derived version %q does not name commit %s", got, head)
	}
}
