package sqlstore

import (
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

func conv(id int64, agent string) *connector.Conversation {
	return &connector.Conversation{ID: id, Agent: agent, Session: json.RawMessage(`{"chat":1}`)}
}

// cached returns the agent of the cached conversation id, or "" when none.
func cached(c *convCache, id int64) string {
	if got, ok := c.get(id); ok {
		return got.Agent
	}
	return ""
}

// TestConvCacheProtocol plays the interleavings of a read that misses with
// the writer's commit of the same conversation: a read that may have seen
// the row from before the commit is never cached; one that started after
// the commit's release is.
func TestConvCacheProtocol(t *testing.T) {
	const id = 7
	for _, tc := range []struct {
		name string
		// steps run in order; read and end are the read's start and end.
		steps []string
		want  string // the agent cached at the end, "" for none
	}{
		{"read alone", []string{"read", "end"}, "read"},
		{"read before the commit, ended after it", []string{"read", "hold", "release", "end"}, ""},
		{"read before the commit, ended during it", []string{"read", "hold", "end", "release"}, ""},
		{"read during the commit, ended after it", []string{"hold", "read", "release", "end"}, ""},
		{"read during the commit, ended during it", []string{"hold", "read", "end", "release"}, ""},
		{"read after the commit", []string{"hold", "release", "read", "end"}, "read"},
		{"an entry cached before the commit is dropped", []string{"read", "end", "hold", "release"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConvCache(10)
			var ticket uint64
			for _, step := range tc.steps {
				switch step {
				case "read":
					ticket = c.startRead()
				case "end":
					c.endRead(id, ticket, conv(id, "read"))
				case "hold":
					c.hold([]touched{{id: id}})
				case "release":
					c.release([]touched{{id: id}}, true)
				}
			}
			if got := cached(c, id); got != tc.want {
				t.Errorf("cached agent %q, want %q", got, tc.want)
			}
			if len(c.recent) != 0 || len(c.held) != 0 || c.inFlight != 0 {
				t.Errorf("left recent %v, held %v, %d in flight; want all empty", c.recent, c.held, c.inFlight)
			}
		})
	}
}

// TestConvCacheOtherIDs: a commit bars only the ids it changed.
func TestConvCacheOtherIDs(t *testing.T) {
	c := newConvCache(10)
	ticket := c.startRead()
	c.hold([]touched{{id: 1}})
	c.release([]touched{{id: 1}}, true)
	c.endRead(2, ticket, conv(2, "two"))
	if got := cached(c, 2); got != "two" {
		t.Errorf("conversation 2 after a commit of 1: cached %q, want two", got)
	}
}

// TestConvCacheFailedReadCachesNothing: a read that failed (nil) leaves no
// entry and still ends.
func TestConvCacheFailedReadCachesNothing(t *testing.T) {
	c := newConvCache(10)
	c.endRead(1, c.startRead(), nil)
	if _, ok := c.get(1); ok || c.inFlight != 0 {
		t.Errorf("after a failed read: cached %v, %d in flight", ok, c.inFlight)
	}
}

// TestConvCacheCopies: neither the reader's copy nor a getter's shares
// memory with the entry.
func TestConvCacheCopies(t *testing.T) {
	c := newConvCache(10)
	mine := conv(1, "a")
	c.endRead(1, c.startRead(), mine)
	mine.Session[2], mine.Agent = 'X', "b"
	got, _ := c.get(1)
	got.Session[3] = 'Y'
	again, _ := c.get(1)
	if string(again.Session) != `{"chat":1}` || again.Agent != "a" {
		t.Errorf("entry changed through a copy: agent %q, session %s", again.Agent, again.Session)
	}
}

// TestConvCacheBounded: the cache never holds more than its size.
func TestConvCacheBounded(t *testing.T) {
	c := newConvCache(100)
	for id := range int64(1000) {
		c.endRead(id, c.startRead(), conv(id, "a"))
	}
	if n := c.len(); n != 100 {
		t.Errorf("%d entries, want the bound, 100", n)
	}
}

// BenchmarkConvCacheEntry reports the memory a cached conversation costs,
// with strings and a session of typical sizes.
func BenchmarkConvCacheEntry(b *testing.B) {
	const n = 10_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newConvCache(n)
	now := time.Now()
	for i := range int64(n) {
		c.endRead(i, c.startRead(), &connector.Conversation{ID: i, Channel: "sms.main",
			Customer: fmt.Sprintf("+1555%07d", i), Vendor: "whoson.sales", State: connector.StateActive,
			Agent: "Agent Name", Profile: connector.Profile{Name: "Kim Customer"},
			Session:   json.RawMessage(`{"chat":"0123456789abcdef","token":"0123456789abcdef0123"}`),
			CreatedAt: now, UpdatedAt: now, LastActivity: now})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / n
	for i := int64(0); b.Loop(); i++ {
		c.get(i % n) // a hit, copied
	}
	b.ReportMetric(perEntry, "B/entry")
}

// TestConvCacheWriteThrough: a committed batch leaves in the cache the last
// row it touched for each id; a touch without a row, or a failed commit,
// leaves none.
func TestConvCacheWriteThrough(t *testing.T) {
	for _, tc := range []struct {
		name      string
		touches   []touched
		committed bool
		want      string
	}{
		{"row", []touched{{1, conv(1, "new")}}, true, "new"},
		{"no row", []touched{{1, nil}}, true, ""},
		{"last row wins", []touched{{1, conv(1, "first")}, {1, conv(1, "second")}}, true, "second"},
		{"a later touch without a row", []touched{{1, conv(1, "first")}, {1, nil}}, true, ""},
		{"a later row", []touched{{1, nil}, {1, conv(1, "second")}}, true, "second"},
		{"commit failed", []touched{{1, conv(1, "new")}}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConvCache(10)
			c.endRead(1, c.startRead(), conv(1, "old"))
			c.hold(tc.touches)
			if got := cached(c, 1); got != "" {
				t.Errorf("during the commit: cached %q, want none", got)
			}
			c.release(tc.touches, tc.committed)
			if got := cached(c, 1); got != tc.want {
				t.Errorf("after the commit: cached %q, want %q", got, tc.want)
			}
		})
	}
}

// TestConversationWritesAreKnown lists every statement that writes the
// conversations table. Each one's op must touch the ids it changes
// (Tx.touch or Tx.touchRow) or the SQLite store's cache goes stale: a new
// one fails here until it is added, with its touch, to this list.
func TestConversationWritesAreKnown(t *testing.T) {
	q := newQueries(&Dialect{})
	touched := map[string]bool{ // the statements whose ops touch
		q.createConversation: true, q.touchInbound: true, q.createOutboundConversation: true,
		q.updateConversation: true, q.contextSettled: true, q.purgeConversations: true,
	}
	writes := regexp.MustCompile(`(?i)\b(UPDATE|INSERT INTO|DELETE FROM)\s+conversations\b`)
	for _, p := range q.all() {
		if writes.MatchString(*p) && !touched[*p] {
			t.Errorf("a statement writes conversations without touching the cache: %s", *p)
		}
	}
}

// TestConvCacheListRead: a list read caches what no commit changed since it
// started, and evicts nothing for room.
func TestConvCacheListRead(t *testing.T) {
	c := newConvCache(3)
	c.endRead(9, c.startRead(), conv(9, "nine"))
	ticket := c.startRead()
	c.hold([]touched{{id: 2}})
	c.release([]touched{{id: 2}}, true)
	c.endListRead(ticket, []*connector.Conversation{conv(1, "one"), conv(2, "two"), conv(3, "three"), conv(4, "four")})
	for id, want := range map[int64]string{1: "one", 2: "", 3: "three", 4: "", 9: "nine"} {
		if got := cached(c, id); got != want {
			t.Errorf("conversation %d: cached %q, want %q", id, got, want)
		}
	}
	if len(c.recent) != 0 || c.inFlight != 0 {
		t.Errorf("left recent %v, %d in flight", c.recent, c.inFlight)
	}
}
