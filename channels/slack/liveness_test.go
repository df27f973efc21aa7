package slack

import (
	"strings"
	"testing"
	"time"
)

// TestLiveness runs the rule on a made-up clock: each case is a socket's
// life as a list of steps at seconds after it opened, with a 20 s silence
// timeout (pings every 10 s, pongs awaited 10 s).
func TestLiveness(t *testing.T) {
	type step struct {
		at   float64 // seconds after the socket opened
		op   string  // "heard" (a frame or Slack's ping), "pong", "pause", "resume", "check"
		want verdict // for "check"
		why  string  // for a dead verdict: a part of why
		next float64 // for "check" when not dead: when to check next (0: not checked)
	}
	const silence = 20 * time.Second
	cases := []struct {
		name  string
		steps []step
	}{
		{"a quiet socket that answers pings lives", []step{
			{at: 0, op: "check", want: keep, next: 10},
			{at: 10, op: "check", want: ping, next: 20},
			{at: 10.2, op: "pong"},
			{at: 19.9, op: "check", want: keep, next: 20},
			{at: 20.2, op: "check", want: ping, next: 30.2},
			{at: 20.3, op: "pong"},
			{at: 39, op: "check", want: ping},
			{at: 39.1, op: "pong"},
			{at: 58, op: "check", want: ping},
		}},
		{"silent: dead 20 s after the last frame, however the pings went", []step{
			{at: 3, op: "heard"},
			{at: 10, op: "check", want: ping, next: 20},
			{at: 10.5, op: "pong"},
			{at: 20.5, op: "check", want: ping, next: 30.5},
			{at: 22.99, op: "check", want: keep, next: 30.5},
			// the pong of 10.5 was the last thing heard
			{at: 30.49, op: "check", want: keep},
			{at: 30.5, op: "check", want: dead, why: "ping unanswered for 10s; the last frame or ping from Slack came 20s ago"},
		}},
		{"silent from the start", []step{
			{at: 10, op: "check", want: ping},
			{at: 19.999, op: "check", want: keep, next: 20},
			{at: 20, op: "check", want: dead, why: "ping unanswered for 10s"},
		}},
		{"silent, checked late (no ping went out): silence alone", []step{
			{at: 2, op: "heard"},
			{at: 21.99, op: "check", want: ping},
			{at: 22, op: "check", want: dead, why: "no frame and no ping from Slack for 20s"},
		}},
		{"silent, checked late: whatever the check finds first", []step{
			{at: 10, op: "check", want: ping},
			{at: 45, op: "check", want: dead, why: "ping unanswered for 10s; the last frame or ping from Slack came 45s ago"},
		}},
		{"Slack pings but our ping gets no pong: dead 10 s after it", []step{
			{at: 5, op: "heard"},
			{at: 10, op: "check", want: ping, next: 20},
			{at: 12, op: "heard"},
			{at: 17, op: "heard"},
			{at: 19.9, op: "check", want: keep, next: 20},
			{at: 20, op: "check", want: dead, why: "ping unanswered for 10s"},
		}},
		{"frames keep it alive, pongs keep coming", []step{
			{at: 5, op: "heard"},
			{at: 10, op: "check", want: ping},
			{at: 10.1, op: "pong"},
			{at: 15, op: "heard"},
			{at: 20.1, op: "check", want: ping},
			{at: 20.2, op: "pong"},
			{at: 34, op: "heard"},
			{at: 40.2, op: "check", want: ping, next: 50.2},
			{at: 40.3, op: "pong"},
			{at: 50.2, op: "check", want: ping},
		}},
		{"paused while the store is behind: no verdict, and resuming starts afresh", []step{
			{at: 8, op: "pause"},
			{at: 10, op: "check", want: keep, next: 20},
			{at: 95, op: "check", want: keep},
			{at: 100, op: "resume"},
			{at: 100, op: "check", want: keep, next: 110},
			{at: 110, op: "check", want: ping},
			{at: 119.9, op: "check", want: keep},
			{at: 120, op: "check", want: dead, why: "ping unanswered"},
		}},
		{"a ping pending at a pause is forgotten", []step{
			{at: 10, op: "check", want: ping},
			{at: 11, op: "pause"},
			{at: 12, op: "resume"},
			{at: 12.5, op: "heard"},
			{at: 21.9, op: "check", want: keep, next: 22},
			{at: 22, op: "check", want: ping},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
			l := newLiveness(silence, t0)
			for _, s := range tc.steps {
				switch s.op {
				case "heard":
					l.heardAt(at(s.at))
				case "pong":
					l.pongAt(at(s.at))
				case "pause":
					l.pause()
				case "resume":
					l.resume(at(s.at))
				case "check":
					v, why, next := l.check(at(s.at))
					if v != s.want {
						t.Fatalf("at %gs: verdict %d (%q), want %d", s.at, v, why, s.want)
					}
					if v == dead && !strings.Contains(why, s.why) {
						t.Errorf("at %gs: why %q, want it to say %q", s.at, why, s.why)
					}
					if v != dead && s.next != 0 && !next.Equal(at(s.next)) {
						t.Errorf("at %gs: next check %s, want at %gs", s.at, next.Sub(t0), s.next)
					}
					if v != dead && !next.After(at(s.at)) {
						t.Errorf("at %gs: next check %s is not later", s.at, next.Sub(t0))
					}
				default:
					t.Fatalf("unknown op %q", s.op)
				}
			}
		})
	}
}
