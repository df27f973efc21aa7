package postgres

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNotice(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    notice
		ok      bool
	}{
		{"wake 12 a b", notice{kind: noticeWake, conversation: 12, owner: "a", writer: "b"}, true},
		{"wake 12 a ", notice{kind: noticeWake, conversation: 12, owner: "a"}, true}, // written from psql
		{"claimable b", notice{kind: noticeClaimable, writer: "b"}, true},
		{"claimable ", notice{kind: noticeClaimable}, true},
		{"wake 12  b", notice{}, false},    // no owner
		{"wake 0 a b", notice{}, false},    // no conversation 0
		{"wake -1 a b", notice{}, false},   // nor negative
		{"wake x a b", notice{}, false},    // not a number
		{"wake 12 a b c", notice{}, false}, // too many fields
		{"wake 12 a", notice{}, false},
		{"wake 12 a/x b", notice{}, false}, // not an instance id
		{"claimable", notice{}, false},
		{"hello", notice{}, false},
		{"", notice{}, false},
	} {
		got, ok := parseNotice(tc.payload)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseNotice(%q) = %+v, %v; want %+v, %v", tc.payload, got, ok, tc.want, tc.ok)
		}
		if ok && got.String() != tc.payload {
			t.Errorf("parseNotice(%q).String() = %q", tc.payload, got.String())
		}
	}
}

// FuzzParseNotice: any payload (the channel is open to any session of the
// database) parses or is refused without panicking; what parses is no
// bigger than the payload and writes back to it exactly.
func FuzzParseNotice(f *testing.F) {
	for _, p := range []string{"wake 12 a b", "wake 1 a ", "claimable x", "claimable ", "wake 9223372036854775807 a-b c.d", "wake 1 a b c"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, ok := parseNotice(p)
		if !ok {
			if d := cmp.Diff(notice{}, n, cmp.AllowUnexported(notice{})); d != "" {
				t.Fatalf("refused %q but returned %+v", p, n)
			}
			return
		}
		if len(n.owner)+len(n.writer) > len(p) || len(n.owner) > 63 || len(n.writer) > 63 {
			t.Fatalf("parseNotice(%q) = %+v: larger than its payload or an instance id", p, n)
		}
		if n.String() != p {
			t.Fatalf("parseNotice(%q).String() = %q", p, n.String())
		}
		if strings.Contains(n.owner+n.writer, " ") {
			t.Fatalf("parseNotice(%q): an id with a space: %+v", p, n)
		}
	})
}
