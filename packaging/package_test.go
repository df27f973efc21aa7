package packaging

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	// testVersion is what the packages are built as: it must come back from
	// the control file, the rpm header and `connectord version`.
	testVersion = "1.2.3~pkgtest"
	// packageScript is the build under test, relative to this directory.
	packageScript = "../scripts/package.sh"
	configPath    = "/etc/connectord/config.toml"
	unitPath      = "/usr/lib/systemd/system/connectord.service"
	binaryPath    = "/usr/bin/connectord"
	sysusersPath  = "/usr/lib/sysusers.d/connectord.conf"
	// versionPattern is what both dpkg and rpm accept as an upstream version
	// without a revision: no "-", which would start a Debian revision and is
	// not allowed in an RPM version.
	versionPattern = `^[0-9][0-9A-Za-z.+~]*$`
)

// need returns the path of program, or stops the test: it fails under CI=true
// (CI must have everything; scripts/test.sh installs it) and skips elsewhere.
func need(t *testing.T, program, from string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		msg := fmt.Sprintf("%s not found: install the Debian package %s (scripts/test.sh does as root)", program, from)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// needRoot stops a test that must change user ids or mount: it fails under
// CI=true (CI runs as root) and skips elsewhere.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root: " + why
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// run runs a command and returns its standard output; any failure is fatal
// and shows both outputs.
func run(ctx context.Context, t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(ctx, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// runErr runs a command; the error carries both outputs.
func runErr(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// built is one run of scripts/package.sh.
type built struct {
	deb, rpm string
}

// buildPackages runs scripts/package.sh into a fresh directory.
func buildPackages(ctx context.Context, t *testing.T) built {
	t.Helper()
	out := t.TempDir()
	env := append(os.Environ(), "VERSION="+testVersion)
	run(ctx, t, env, "bash", packageScript, out)
	var b built
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".deb":
			b.deb = filepath.Join(out, e.Name())
		case ".rpm":
			b.rpm = filepath.Join(out, e.Name())
		}
	}
	if b.deb == "" || b.rpm == "" {
		t.Fatalf("scripts/package.sh made %v, want one .deb and one .rpm", entries)
	}
	return b
}

// debArch is Debian's name of the Go architecture the packages are built for.
func debArch(t *testing.T) string {
	t.Helper()
	names := map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "riscv64": "riscv64", "ppc64le": "ppc64el", "s390x": "s390x"}
	name, ok := names[runtime.GOARCH]
	if !ok {
		t.Fatalf("no Debian architecture known for GOARCH=%s: add it to debArch", runtime.GOARCH)
	}
	return name
}

// sysusersEntry is the one non-comment line of packaging/sysusers.conf.
func sysusersEntry(t *testing.T, text string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("sysusers.conf has entries %q, want exactly one", lines)
	}
	return lines[0]
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPackages builds both packages once and checks them in turn.
func TestPackages(t *testing.T) {
	need(t, "dpkg-deb", "dpkg")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b := buildPackages(ctx, t)

	t.Run("deb control", func(t *testing.T) { checkDebControl(ctx, t, b.deb) })
	t.Run("deb contents", func(t *testing.T) { checkDebContents(ctx, t, b.deb) })
	root := t.TempDir()
	run(ctx, t, nil, "dpkg-deb", "-x", b.deb, root)
	t.Run("extracted files", func(t *testing.T) { checkExtracted(ctx, t, root) })
	t.Run("shipped config passes check-config", func(t *testing.T) { checkConfig(ctx, t, root) })
	t.Run("unit verifies in the scratch root", func(t *testing.T) { checkUnitVerifies(ctx, t, root) })
	t.Run("dpkg installs into a scratch root", func(t *testing.T) { checkDpkgInstall(ctx, t, b.deb) })
	t.Run("rpm", func(t *testing.T) { checkRPM(ctx, t, b.rpm) })
}

// checkDebControl: the package's name, version and architecture, its
// conffiles, and that the preinst creates the user that sysusers.conf names.
func checkDebControl(ctx context.Context, t *testing.T, deb string) {
	for _, tc := range []struct{ field, want string }{
		{"Package", "connectord"},
		{"Version", testVersion + "-1"},
		{"Architecture", debArch(t)},
	} {
		if got := strings.TrimSpace(run(ctx, t, nil, "dpkg-deb", "-f", deb, tc.field)); got != tc.want {
			t.Errorf("control %s = %q, want %q", tc.field, got, tc.want)
		}
	}
	ctl := t.TempDir()
	run(ctx, t, nil, "dpkg-deb", "-e", deb, ctl)
	if got := readFile(t, filepath.Join(ctl, "conffiles")); got != configPath+"\n" {
		t.Errorf("conffiles = %q, want only %s", got, configPath)
	}
	entry := sysusersEntry(t, readFile(t, "sysusers.conf"))
	if preinst := readFile(t, filepath.Join(ctl, "preinst")); !strings.Contains(preinst, "'"+entry+"'") {
		t.Errorf("preinst does not create the user of sysusers.conf (%q); preinst:\n%s", entry, preinst)
	}
	for _, script := range []string{"preinst", "postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, script))
		if err != nil {
			t.Errorf("no %s: %v", script, err)
		} else if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", script, fi.Mode())
		}
	}
}

// debEntry is one line of `dpkg-deb -c`.
type debEntry struct {
	Mode, Owner string
}

// checkDebContents: every file the package must install, with mode and owner
// as they are in the archive (owner names are resolved at unpack time).
func checkDebContents(ctx context.Context, t *testing.T, deb string) {
	got := map[string]debEntry{}
	for _, line := range strings.Split(strings.TrimSpace(run(ctx, t, nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("unexpected dpkg-deb -c line %q", line)
		}
		got[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = debEntry{Mode: f[0], Owner: f[1]}
	}
	want := map[string]debEntry{
		binaryPath:   {"-rwxr-xr-x", "root/root"},
		unitPath:     {"-rw-r--r--", "root/root"},
		sysusersPath: {"-rw-r--r--", "root/root"},
		// Secrets may be in it: readable by root and the service's group only.
		configPath:                  {"-rw-r-----", "root/connectord"},
		"/etc/connectord":           {"drwxr-xr-x", "root/root"},
		"/usr/share/doc/connectord": {"drwxr-xr-x", "root/root"},
	}
	for path, w := range want {
		if diff := cmp.Diff(w, got[path]); diff != "" {
			t.Errorf("%s in the .deb (-want +got):\n%s", path, diff)
		}
	}
	for path := range got {
		if strings.HasPrefix(path, "/usr/local") || strings.HasPrefix(path, "/var") {
			t.Errorf("the package ships %s: nothing goes under /usr/local, and /var is made at run time", path)
		}
	}
}

// checkExtracted: the files of `dpkg-deb -x` are the repository's, the binary
// runs and reports the package version, and the config keeps its mode.
func checkExtracted(ctx context.Context, t *testing.T, root string) {
	out := run(ctx, t, nil, filepath.Join(root, binaryPath), "version")
	// The first line names the version; the build's details follow it.
	if first, _, _ := strings.Cut(out, "\n"); first != "connectord "+testVersion {
		t.Errorf("connectord version printed %q, want its first line %q", out, "connectord "+testVersion)
	}
	for _, tc := range []struct{ installed, source string }{
		{unitPath, "../systemd/connectord.service"},
		{configPath, "../config.example.toml"},
		{sysusersPath, "sysusers.conf"},
	} {
		if readFile(t, filepath.Join(root, tc.installed)) != readFile(t, tc.source) {
			t.Errorf("%s differs from %s", tc.installed, tc.source)
		}
	}
	fi, err := os.Stat(filepath.Join(root, configPath))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("%s has mode %v, want 0640", configPath, fi.Mode().Perm())
	}
}

// configEnv is a minimal environment for check-config in which every
// ${NAME} that the configuration uses is set: the shipped file must then be
// valid with no warning, exactly as the daemon would find it under a unit
// that sets those variables.
func configEnv(t *testing.T, config string) []string {
	t.Helper()
	env := []string{"PATH=/usr/bin:/bin"}
	refs := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(config, -1)
	if len(refs) == 0 {
		t.Fatal("the shipped config uses no ${NAME}: the env this test sets is untested")
	}
	// Values of the shape each key checks: a Slack bot token starts with
	// "xoxb-"; the others (Twilio's auth token among them) are plain words.
	shaped := map[string]string{"SLACK_BOT_TOKEN": "xoxb-placeholder"}
	for _, m := range refs {
		v, ok := shaped[m[1]]
		if !ok {
			v = "placeholder0" + strings.ToLower(strings.ReplaceAll(m[1], "_", ""))
		}
		env = append(env, m[1]+"="+v)
	}
	return env
}

// checkConfig runs the packaged binary's check-config on the packaged config.
func checkConfig(ctx context.Context, t *testing.T, root string) {
	path := filepath.Join(root, configPath)
	env := configEnv(t, readFile(t, path))
	cmd := exec.CommandContext(ctx, filepath.Join(root, binaryPath), "check-config", "-config", path)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != path+": ok\n" {
		t.Errorf("check-config of the shipped config: %v, output:\n%s\nwant only %q", err, out, path+": ok")
	}
}

// checkUnitVerifies runs `systemd-analyze verify --root` on the scratch root,
// so that the unit's ExecStart= is looked up where the package put the
// binary: a unit naming any other path fails there. (Rewriting ExecStart to
// the extracted binary instead would prove nothing about the installed path.)
// verify also wants the units the service depends on and ExecReload='s
// /bin/kill inside the root, so the host's targets and kill are copied in.
func checkUnitVerifies(ctx context.Context, t *testing.T, root string) {
	analyze := need(t, "systemd-analyze", "systemd")
	copyHostTargets(t, filepath.Join(root, "etc/systemd/system"))
	kill, err := os.ReadFile("/bin/kill")
	if err != nil {
		t.Fatalf("the host's /bin/kill (package procps) is needed inside the scratch root: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/kill"), kill, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0")
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", "--root="+root, "connectord.service")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify --root=%s connectord.service: %v\n%s", root, err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Logf("systemd-analyze verify warnings:\n%s", s)
	}
}

// copyHostTargets copies the host's *.target units (links as links) into dir.
func copyHostTargets(t *testing.T, dir string) {
	t.Helper()
	const hostUnits = "/usr/lib/systemd/system"
	targets, err := filepath.Glob(filepath.Join(hostUnits, "*.target"))
	if err != nil || len(targets) == 0 {
		t.Fatalf("no *.target units in %s (package systemd): %v", hostUnits, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, src := range targets {
		dst := filepath.Join(dir, filepath.Base(src))
		if link, err := os.Readlink(src); err == nil {
			if err := os.Symlink(link, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkDpkgInstall installs the .deb with dpkg into a scratch root, maintainer
// scripts included (run outside a chroot, with $DPKG_ROOT pointing at the
// scratch root, which the scripts honour). Inside a private mount namespace
// the scratch root's passwd and group stand in for the host's, because dpkg
// resolves the archive's owner names through the host's user database: this
// is how a real install resolves "connectord" after the preinst created it.
// Then the service's user must be able to read the config, and another
// unprivileged user must not.
func checkDpkgInstall(ctx context.Context, t *testing.T, deb string) {
	needRoot(t, "the install test bind-mounts the scratch root's user database and runs commands as other users")
	need(t, "systemd-sysusers", "systemd")
	need(t, "unshare", "util-linux")
	need(t, "setpriv", "util-linux")
	root := scratchRoot(t)
	ctl := t.TempDir()
	run(ctx, t, nil, "dpkg-deb", "-e", deb, ctl)
	// The preinst runs once before the mounts, as dpkg would run it before
	// unpacking, so that the bind-mounted files already hold the user (the
	// tools replace the files, which a bind mount of the old ones would miss);
	// dpkg runs it again, which must change nothing.
	script := `DPKG_ROOT="$1" sh "$3" install
mount --bind "$1/etc/passwd" /etc/passwd
mount --bind "$1/etc/group" /etc/group
dpkg --root="$1" --admindir="$1/var/lib/dpkg" --force-script-chrootless --log=/dev/null -i "$2"
`
	shielded(ctx, t, script, root, deb, filepath.Join(ctl, "preinst"))
	status := readFile(t, filepath.Join(root, "var/lib/dpkg/status"))
	for _, want := range []string{"Status: install ok installed", "Conffiles:\n " + configPath + " "} {
		if !strings.Contains(status, want) {
			t.Errorf("dpkg status lacks %q:\n%s", want, status)
		}
	}
	uid, gid := userIDs(t, root, "connectord")
	fi, err := os.Stat(filepath.Join(root, configPath))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Sys().(*syscall.Stat_t).Gid; got != gid {
		t.Errorf("%s has group id %d, want connectord's %d", configPath, got, gid)
	}
	checkReaders(ctx, t, root, uid, gid)
}

// shielded runs a shell script as root in a private mount namespace where
// /etc is an overlay whose writes land in a scratch directory: a maintainer
// script that ignored $DPKG_ROOT would change the host's users there, never
// in the host's /etc, and the test fails naming what it wrote. args are the
// script's $1, $2...
func shielded(ctx context.Context, t *testing.T, script string, args ...string) {
	t.Helper()
	need(t, "unshare", "util-linux")
	guard := t.TempDir()
	upper, work := filepath.Join(guard, "upper"), filepath.Join(guard, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prefix := `set -e
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc
shift 2
`
	cmd := append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", prefix + script, "sh", upper, work}, args...)
	run(ctx, t, os.Environ(), "unshare", cmd...)
	var written []string
	err := filepath.WalkDir(upper, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != upper {
			written = append(written, strings.TrimPrefix(path, upper))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) > 0 {
		t.Errorf("the script wrote to the host's /etc (caught in an overlay; the host is intact): %q; it must act on $DPKG_ROOT only", written)
	}
}

// scratchRoot makes an empty system root that dpkg accepts, with a root user
// (as every real root has) and directories that other users may traverse.
func scratchRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "var/lib/dpkg/updates", "var/lib/dpkg/info"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":           "root:x:0:\n",
		"var/lib/dpkg/status": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The test's temporary directories are private (0700); the service user
	// must reach the files below them, as it reaches /etc on a real system.
	for _, dir := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for dir := filepath.Dir(root); dir != "/"; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s is not searchable by other users (%v): set TMPDIR to a directory that is", dir, err)
		}
	}
	return root
}

// userIDs reads NAME's user and group id from the root's passwd.
func userIDs(t *testing.T, root, name string) (uid, gid uint32) {
	t.Helper()
	for _, line := range strings.Split(readFile(t, filepath.Join(root, "etc/passwd")), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == name {
			u, err1 := strconv.ParseUint(f[2], 10, 32)
			g, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 != nil || err2 != nil {
				t.Fatalf("bad passwd line %q", line)
			}
			if f[6] != "/usr/sbin/nologin" {
				t.Errorf("user %s has shell %s, want /usr/sbin/nologin", name, f[6])
			}
			return uint32(u), uint32(g)
		}
	}
	t.Fatalf("the install made no user %s in the scratch root's passwd", name)
	return 0, 0
}

// checkReaders runs check-config as the service's user (it must read the
// config) and as nobody (it must be refused).
func checkReaders(ctx context.Context, t *testing.T, root string, uid, gid uint32) {
	bin, path := filepath.Join(root, binaryPath), filepath.Join(root, configPath)
	env := configEnv(t, readFile(t, path))
	asUser := func(uid, gid uint32) []string {
		return []string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid), "--clear-groups", "--", bin, "check-config", "-config", path}
	}
	if out, err := runErr(ctx, env, "setpriv", asUser(uid, gid)...); err != nil || out != path+": ok\n" {
		t.Errorf("the service user (uid %d) cannot check the installed config: %q %v", uid, out, err)
	}
	out, err := runErr(ctx, env, "setpriv", asUser(65534, 65534)...)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("nobody read the installed config (0640 root:connectord): %q %v", out, err)
	}
}

// checkRPM reads the .rpm with rpm: same version, files, modes and owners as
// the .deb, the config marked as a config file that an upgrade does not replace.
func checkRPM(ctx context.Context, t *testing.T, rpmFile string) {
	rpm := need(t, "rpm", "rpm")
	env := append(os.Environ(), "HOME="+t.TempDir()) // rpm reads ~/.rpmmacros
	got := run(ctx, t, env, rpm, "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE}\n", rpmFile)
	if want := "connectord " + testVersion + " 1\n"; got != want {
		t.Errorf("rpm name, version, release = %q, want %q", got, want)
	}
	files := map[string]string{}
	out := run(ctx, t, env, rpm, "-qp", "--qf", "[%{FILENAMES}\t%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]", rpmFile)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		path, attrs, _ := strings.Cut(line, "\t")
		files[path] = strings.TrimSpace(attrs)
	}
	want := map[string]string{
		binaryPath:   "-rwxr-xr-x root/root",
		unitPath:     "-rw-r--r-- root/root",
		sysusersPath: "-rw-r--r-- root/root",
		configPath:   "-rw-r----- root/connectord cn", // c: config, n: noreplace
	}
	for path, w := range want {
		if files[path] != w {
			t.Errorf("%s in the .rpm: %q, want %q", path, files[path], w)
		}
	}
	scripts := run(ctx, t, env, rpm, "-qp", "--scripts", rpmFile)
	entry := sysusersEntry(t, readFile(t, "sysusers.conf"))
	if !strings.Contains(scripts, "preinstall scriptlet") || !strings.Contains(scripts, "'"+entry+"'") {
		t.Errorf("the .rpm's %%pre does not create the user of sysusers.conf; scripts:\n%s", scripts)
	}
}
