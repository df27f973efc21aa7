package connector_test

import (
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// statusWorld is a daemon with a live conversation (alice), one whose line
// the vendor refused (bob: ended, the line failed, so stuck), for the status
// page to show.
func statusWorld(t *testing.T) *adminWorld {
	t.Helper()
	w := newAdminWorld(t, "")
	w.vendor.send = func(m *connector.Message) error {
		if m.Text == "refused line" {
			return connector.Permanent(errors.New("the vendor says <b>no</b>"))
		}
		return nil
	}
	w.receive(alice, "SM1", "hello")
	w.receive(bob, "SM2", "refused line")
	w.toAgent.wait(t, 1, 10*time.Second)
	w.waitEnded(bob)
	return w
}

// TestStatusPageContent reads the page as a browser gets it.
func TestStatusPageContent(t *testing.T) {
	w := statusWorld(t)
	code, body := w.call("GET", "/status")
	if code != 200 {
		t.Fatalf("GET /status: %d\n%s", code, body)
	}
	page := string(body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"version 1.2.3-test (abc123)",
		`<span class="up">ready</span>`,
		"<h2>Health</h2>", "<td>sms.main</td>", "<td>whoson.sales</td>",
		"<h2>Stuck conversations</h2>", "<h2>Live conversations</h2>", "<h2>Recent failures</h2>",
		alice[1:] + "</td>", bob[1:] + "</td>", // html/template writes the + as &#43;
		"the vendor says &lt;b&gt;no&lt;/b&gt;", // escaped, never markup
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>no</b>") {
		t.Error("a vendor's text reached the page as markup")
	}
	if strings.Contains(page, "<script") {
		t.Error("the status page has a script")
	}
	if code, _ := w.call("GET", "/"); code != 200 { // the redirect to /status, followed
		t.Errorf("GET / ended with %d", code)
	}
}

// TestStatusPageInChromium renders the page in headless Chromium and checks
// that the screenshot shows something: many colours, much of it not white.
// With STATUS_SCREENSHOT set, the screenshot is also written there (how
// docs/status.png was made).
func TestStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (Debian package chromium; scripts/test.sh installs it): the status page cannot be rendered")
		}
		t.Skip("chromium is not installed (Debian package chromium); scripts/test.sh installs it")
	}
	w := statusWorld(t)
	shot := filepath.Join(t.TempDir(), "status.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1200,900", w.base+"/status")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours, inked := inkOf(img)
	if colours < 16 || inked < 0.05 {
		t.Errorf("the screenshot looks blank: %d colours, %.1f%% of pixels not white", colours, 100*inked)
	}
	if out := os.Getenv("STATUS_SCREENSHOT"); out != "" {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// inkOf returns how many distinct colours img has and the share of its
// pixels that are not (near) white.
func inkOf(img image.Image) (colours int, inked float64) {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	n, ink := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			n++
			if r>>8 < 240 || g>>8 < 240 || bl>>8 < 240 {
				ink++
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return len(seen), float64(ink) / float64(n)
}
