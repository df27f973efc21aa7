package slacktest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An acked envelope comes again as the next retry, as when Slack missed the ack.
func TestRedeliverSocket(t *testing.T) {
	s := newTestServer(t)
	c := connect(t, s)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "once more"})
	first := c.next(t)
	c.ack(t, first)
	waitFor(t, s, "the first ack", func() bool { return len(s.Acks()) == 1 })
	if err := s.Redeliver(m.EventID); err != nil {
		t.Fatal(err)
	}
	second := c.next(t)
	if second["retry_attempt"] != float64(1) || second["retry_reason"] != "timeout" || eventID(second) != m.EventID ||
		second["envelope_id"] == first["envelope_id"] {
		t.Errorf("redelivery %v after %v", second, first)
	}
	c.ack(t, second)
	waitFor(t, s, "the second ack", func() bool { return len(s.Acks()) == 2 })
	if a := s.Acks()[1]; a.EventID != m.EventID || a.EnvelopeID != second["envelope_id"] {
		t.Errorf("second ack %+v", a)
	}
}

// A 2xx-answered event is POSTed again with the next retry headers.
func TestRedeliverEventsAPI(t *testing.T) {
	s := newTestServer(t)
	app := newEventsApp(t, s)
	m := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "once more"})
	waitFor(t, s, "the first delivery", func() bool { return len(s.Deliveries()) == 1 })
	for range 3 {
		if err := s.Redeliver(m.EventID); err != nil {
			t.Fatal(err)
		}
		n := len(s.Deliveries()) + 1
		waitFor(t, s, "the redelivery", func() bool { return len(s.Deliveries()) == n })
	}
	if err := s.Redeliver(m.EventID); err == nil {
		t.Error("a fourth retry was made; Slack stops after three")
	}
	var headers [][2]string
	for _, r := range app.requests() {
		if r.verifyErr != nil {
			t.Errorf("signature: %v", r.verifyErr)
		}
		headers = append(headers, [2]string{r.retryNum, r.retryReason})
	}
	want := [][2]string{{"", ""}, {"1", "http_timeout"}, {"2", "http_timeout"}, {"3", "http_timeout"}}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("retry headers (-want +got):\n%s", diff)
	}
	if d := s.Deliveries(); d[3].EventID != m.EventID || d[3].Attempt != 3 || d[3].Status != 200 {
		t.Errorf("last delivery %+v", d[3])
	}
}

func TestRedeliverRefusesUnknownEvents(t *testing.T) {
	s := newTestServer(t)
	if err := s.Redeliver("Ev0NOSUCH01"); err == nil {
		t.Error("an unknown event was redelivered")
	}
	quiet := s.Post(Post{Channel: "C0SUPPORT1", User: "U0ALICE001", Text: "never announced", Silent: true})
	if err := s.Redeliver(quiet.EventID); err == nil {
		t.Error("a silent post (no event) was redelivered")
	}
}
