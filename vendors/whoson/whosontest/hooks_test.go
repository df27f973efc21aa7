package whosontest

import (
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hookLog records what the hooks were called with.
type hookLog struct {
	mu      sync.Mutex
	lines   []string
	resumes []string
}

func (h *hookLog) line(uid, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, uid+" "+text)
}

func (h *hookLog) resume(uid string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resumes = append(h.resumes, uid)
}

func (h *hookLog) snapshot() ([]string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...), append([]string(nil), h.resumes...)
}

// The hooks see every visitor line before the operator answers it, and
// every chat a Connect continues, by cookie or by UID; a fresh chat and a
// refused resume are not resumes.
func TestHooks(t *testing.T) {
	s := newServer(t, Config{Operator: echo()})
	var h hookLog
	s.OnVisitorLine(h.line)
	s.OnResume(h.resume)

	c := dial(t, s, nil)
	c.connect("cookie-1")
	uid := c.accepted()
	c.next() // operatorjoined
	c.message("one")
	c.nextN(6) // the echo and the answer: the hook ran before the answer
	lines, resumes := h.snapshot()
	if diff := cmp.Diff([]string{uid + " one"}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if len(resumes) != 0 {
		t.Errorf("resumes %q before any resume", resumes)
	}

	for _, how := range []string{"cookie", "uid"} {
		s.DropAll()
		c.ended()
		c = dial(t, s, nil)
		if how == "cookie" {
			c.connect("cookie-1")
		} else {
			c.connect("", uid)
		}
	}
	c.message("two")
	c.nextN(6)
	other := dial(t, s, nil)
	other.connect("cookie-2")
	other.accepted()
	s.Forget(uid)
	c.ended()
	c = dial(t, s, nil)
	c.connect("", uid) // cannot continue: a new ChatUid, no resume

	lines, resumes = h.snapshot()
	if diff := cmp.Diff([]string{uid + " one", uid + " two"}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{uid, uid}, resumes); diff != "" {
		t.Errorf("resumes (-want +got):\n%s", diff)
	}
}

// Thousands of chats resume by cookie without a scan of every chat per
// Connect: each resumes its own chat, the newest detached one with its
// cookie.
func TestResumeManyByCookie(t *testing.T) {
	const n = 300
	s := newServer(t, Config{})
	uids := make(map[string]string) // cookie -> uid
	for i := range n {
		c := dial(t, s, nil)
		cookie := "cookie-" + strconv.Itoa(i)
		c.connect(cookie)
		uids[cookie] = c.accepted()
	}
	s.DropAll()
	for cookie, uid := range uids {
		c := dial(t, s, nil)
		if ev := c.connect(cookie); ev.uid() != uid {
			t.Fatalf("cookie %s resumed %s, want %s", cookie, ev.uid(), uid)
		}
	}
}
