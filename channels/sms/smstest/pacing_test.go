package smstest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

func createFrom(t *testing.T, c *openapi.ApiService, from, msid, to, body string) (*openapi.ApiV2010Message, error) {
	t.Helper()
	p := (&openapi.CreateMessageParams{}).SetTo(to).SetBody(body)
	if from != "" {
		p.SetFrom(from)
	}
	if msid != "" {
		p.SetMessagingServiceSid(msid)
	}
	return c.CreateMessage(p)
}

func TestQueueSpacesDepartures(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Millisecond, MPS: 20}) // 50 ms a segment
	s.SetMPS(ours2, 0)                                            // unlimited
	c := apiFor(t, s)
	long := strings.Repeat("a", 161) // two segments
	for _, m := range []struct{ from, body string }{{ours, "1"}, {ours, long}, {ours, "3"}, {ours2, "x"}, {ours2, "y"}} {
		if _, err := createFrom(t, c, m.from, "", customer, m.body); err != nil {
			t.Fatal(err)
		}
	}
	d := s.Departures(ours)
	if len(d) != 3 {
		t.Fatalf("Departures(ours) = %+v, want 3", d)
	}
	var gaps []time.Duration
	for i := 1; i < len(d); i++ {
		gaps = append(gaps, d[i].Departed.Sub(d[i-1].Departed))
	}
	// The first leaves at once; then one segment (50 ms) and two (100 ms) later.
	if diff := cmp.Diff([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, gaps); diff != "" || !d[0].Departed.Equal(d[0].Created) {
		t.Errorf("gaps (-want +got):\n%s\nfirst %+v", diff, d[0])
	}
	for _, x := range d {
		if x.Departed.Before(x.Created) {
			t.Errorf("%+v departed before it was created", x)
		}
	}
	if d[1].Segments != 2 {
		t.Errorf("second %+v, want 2 segments", d[1])
	}
	for _, x := range s.Departures(ours2) {
		if !x.Departed.Equal(x.Created) {
			t.Errorf("unlimited sender queued: %+v", x)
		}
	}
	waitStatus(t, s, "delivered")
	msgs, err := c.ListMessage((&openapi.ListMessageParams{}).SetFrom(ours))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		sent, _ := time.Parse(time.RFC1123Z, *m.DateSent)
		for _, x := range d {
			if x.SID == *m.Sid && sent.Before(x.Departed.Truncate(time.Second)) {
				t.Errorf("%s date_sent %s before it departed %s", x.SID, sent, x.Departed)
			}
		}
	}
}

func TestQueueLimit(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Millisecond, MPS: 1, MaxQueue: 1500 * time.Millisecond})
	c := apiFor(t, s)
	for i := range 2 {
		if _, err := createFrom(t, c, ours, "", customer, "ok"); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, err := createFrom(t, c, ours, "", customer, "two seconds ahead")
	if re := restError(t, err); re.Status != 400 || re.Code != 21611 {
		t.Errorf("third create from a number: %+v, want 400/21611", re)
	}
	if n := len(s.Departures(ours)); n != 2 {
		t.Errorf("%d departures, want 2 (the refused create takes no place)", n)
	}
	// Through a Messaging Service the create is accepted and the message fails.
	for range 2 {
		if _, err := createFrom(t, c, "", msid, customer, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	m, err := createFrom(t, c, "", msid, customer, "overflow")
	if err != nil {
		t.Fatalf("service create: %v", err)
	}
	waitFinal(t, s, *m.Sid, "failed", 30001)
}

func TestLoopProtection(t *testing.T) {
	s := start(t, Config{StatusDelay: time.Millisecond, LoopProtection: true, LoopLimit: 3, LoopWindow: time.Second})
	c := apiFor(t, s)
	h := newHook(t)
	var sids []string
	for range 5 {
		m, err := c.CreateMessage((&openapi.CreateMessageParams{}).SetTo(customer).SetFrom(ours).SetBody("loop").SetStatusCallback(h.srv.URL))
		if err != nil {
			t.Fatalf("create: %v (14107 fails the message, not the create)", err)
		}
		sids = append(sids, *m.Sid)
	}
	other, err := createFrom(t, c, ours, "", "+15559876543", "another pair")
	if err != nil {
		t.Fatal(err)
	}
	for i, sid := range sids {
		if i < 3 {
			waitFinal(t, s, sid, "delivered", 0)
		} else {
			waitFinal(t, s, sid, "failed", 14107)
		}
	}
	waitFinal(t, s, *other.Sid, "delivered", 0)
	failed := 0
	for _, r := range h.wait(t, 2*3+2) {
		if r.form.Get("MessageStatus") == "failed" && r.form.Get("ErrorCode") == "14107" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d failed callbacks with ErrorCode 14107, want 2", failed)
	}
	// The block lasts one window from the fourth message; after it the pair sends again.
	fourth, _ := s.Get(sids[3])
	time.Sleep(time.Until(fourth.Created.Add(time.Second + 50*time.Millisecond)))
	m, err := createFrom(t, c, ours, "", customer, "after the block")
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, s, *m.Sid, "delivered", 0)
}

// waitFinal waits until the outbound message sid has the given status and error code.
func waitFinal(t *testing.T, s *Server, id string, status string, code int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := s.Get(id)
		if m.Status == status && m.ErrorCode == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s/%d, want %s/%d", id, m.Status, m.ErrorCode, status, code)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
