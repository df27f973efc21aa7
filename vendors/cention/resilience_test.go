package cention

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

// Batches that repeat messages already seen (SetRedeliver, Redeliver, the
// history after a resume) reach the sink once each, in order.
func TestRedeliveredOnce(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	h.srv.SetRedeliver(3)
	c := h.openJoined()
	tok := h.token(c)
	var want []string
	for i := range 5 {
		text := fmt.Sprintf("agent %d", i+1)
		want = append(want, text)
		if err := h.srv.Say(tok, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.srv.SayBatch(tok, "batch a", "batch b"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "batch a", "batch b")
	if err := h.srv.Redeliver(tok); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Drop(tok); err != nil { // the resume sends the whole history again
		t.Fatal(err)
	}
	h.waitChat(c, "resumed", func(ch centiontest.Chat) bool { return ch.Resumes >= 1 })
	if err := h.srv.Say(tok, "last"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "last")
	h.sink.waitText(t, c.ID, "last")
	if got := h.sink.texts(c.ID); !slices.Equal(got, want) {
		t.Errorf("agent lines %q, want %q%s", got, want, describe(h.sink.all()))
	}
	if n := len(h.sink.of(c.ID, connector.EventJoined)); n != 1 {
		t.Errorf("%d joined events", n)
	}
}

// A socket dropped mid-chat: the chat reconnects with the same token and
// resume; a line sent while it is down goes once the socket is back; an
// agent line written meanwhile arrives with the history.
func TestSocketDropMidChat(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	tok := h.token(c)
	if err := h.send(c, 1, "before"); err != nil {
		t.Fatal(err)
	}
	h.srv.HoldAcks()
	if err := h.srv.Drop(tok); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.send(c, 2, "during") }()
	h.waitChat(c, "the line during the drop", func(ch centiontest.Chat) bool { return len(ch.Lines) == 2 })
	if err := h.srv.Drop(tok); err != nil { // dropped again before the confirmation
		t.Fatal(err)
	}
	h.waitChat(c, "the line written again", func(ch centiontest.Chat) bool { return len(ch.Repeats) >= 1 && ch.Resumes >= 2 })
	h.srv.ReleaseAcks()
	if err := <-errc; err != nil {
		t.Fatalf("Send across drops: %v", err)
	}
	if err := h.srv.Say(tok, "after"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitText(t, c.ID, "after")
	ch := h.chat(c)
	if got := lineTexts(ch.Lines); !slices.Equal(got, []string{"before", "during"}) {
		t.Errorf("lines %q", got)
	}
	for _, r := range ch.Repeats {
		if r.Umid != "connectord-2" {
			t.Errorf("repeat %+v, want only the unconfirmed line, with its umid", r)
		}
	}
	if ch.Sockets < 3 || ch.Token != tok {
		t.Errorf("sockets %d, token %q", ch.Sockets, ch.Token)
	}
}

// Cention refuses the resume after a drop ("no session"): EventLost with
// the lost session, and Send for that chat is ErrChatLost without a dial.
// A new Open gets a new token.
func TestRefusedResumeMidRun(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	tok := h.token(c)
	lostSession := h.sink.session(c.ID)
	h.srv.RefuseResume(tok)
	if err := h.srv.Drop(tok); err != nil {
		t.Fatal(err)
	}
	e := h.sink.waitType(t, c.ID, connector.EventLost)
	if string(e.Session) != string(lostSession) {
		t.Errorf("EventLost session %s, want the lost one %s", e.Session, lostSession)
	}
	refused := h.chat(c).RefusedResumes
	if err := h.send(c, 5, "x"); !errors.Is(err, connector.ErrChatLost) {
		t.Errorf("Send after the loss: %v, want ErrChatLost", err)
	}
	if n := h.chat(c).RefusedResumes; n != refused {
		t.Errorf("Send dialled again (%d refused resumes, were %d)", n, refused)
	}
	c2 := *c
	c2.Session = nil
	h.open(&c2)
	if st, _ := parseSession(c2.Session); st.Token == tok || st.Token == "" {
		t.Error("the new chat reuses the lost token")
	}
}

// A Send while the socket is down and Cention has forgotten the chat: the
// reconnect's resume is refused and Send returns ErrChatLost.
func TestRefusedResumeDuringSend(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, func(k map[string]string) {
		k["send_timeout"] = `"5s"`
		k["reconnect_initial"] = `"300ms"`
		k["reconnect_max"] = `"300ms"`
	})
	c := h.openJoined()
	tok := h.token(c)
	h.srv.RefuseResume(tok)
	if err := h.srv.Drop(tok); err != nil {
		t.Fatal(err)
	}
	if err := h.send(c, 1, "into the void"); !errors.Is(err, connector.ErrChatLost) {
		t.Errorf("Send: %v, want ErrChatLost", err)
	}
	h.sink.waitType(t, c.ID, connector.EventLost)
}

// "chat closed" in answer to a line (the chat is already closed at
// Cention): the conversation ends; Send does not report the line taken.
func TestChatClosedAnswer(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, func(k map[string]string) { k["send_timeout"] = `"1s"` })
	c := h.openJoined()
	h.srv.RefuseResume(h.token(c)) // the socket stays, carrying nothing: frames get "chat closed"
	if err := h.send(c, 1, "too late"); err == nil || connector.IsPermanent(err) {
		t.Errorf("Send: %v, want a retryable error", err)
	}
	if e := h.sink.waitType(t, c.ID, connector.EventEnded); e.Reason != "agent" {
		t.Errorf("ended %+v", e)
	}
}

// Confirmations that come late: past send_timeout Send fails (retryable);
// the retry carries the same umid, the agent sees the line once.
func TestLateAck(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, func(k map[string]string) { k["send_timeout"] = `"300ms"` })
	c := h.openJoined()
	h.srv.LateAck(time.Second)
	err := h.send(c, 1, "slow")
	if err == nil || connector.IsPermanent(err) || errors.Is(err, connector.ErrChatLost) {
		t.Fatalf("Send with a late confirmation: %v, want a retryable error", err)
	}
	h.srv.LateAck(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = h.send(c, 1, "slow")
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	ch := h.chat(c)
	if got := lineTexts(ch.Lines); !slices.Equal(got, []string{"slow"}) {
		t.Errorf("lines %q", got)
	}
	for _, r := range append(ch.Lines, ch.Repeats...) {
		if r.Umid != "connectord-1" || r.Mcount != 1 {
			t.Errorf("line %+v: the retry must carry the same umid and mcount", r)
		}
	}
	if err := h.send(c, 2, "next"); err != nil {
		t.Fatal(err)
	}
}

// A confirmation that arrives late but before the retry: the retry writes
// nothing.
func TestLateAckBeforeRetry(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, func(k map[string]string) { k["send_timeout"] = `"200ms"` })
	c := h.openJoined()
	h.srv.HoldAcks()
	if err := h.send(c, 1, "slow"); err == nil {
		t.Fatal("Send confirmed while confirmations are held")
	}
	h.srv.ReleaseAcks()
	h.waitChat(c, "confirmed", func(ch centiontest.Chat) bool { return len(ch.Lines) == 1 && ch.Lines[0].Confirmed })
	select { // the confirmation travels to the vendor after the fake marks it
	case <-h.v.session(c.ID).waiter("connectord-1"):
	case <-time.After(5 * time.Second):
		t.Fatal("the confirmation never reached the vendor")
	}
	if err := h.send(c, 1, "slow"); err != nil {
		t.Fatal(err)
	}
	if ch := h.chat(c); len(ch.Repeats) != 0 {
		t.Errorf("repeats %+v: the confirmed line was written again", ch.Repeats)
	}
}

// A restart: Resume with the stored token continues the chat; a message the
// old process sent but whose confirmation it never saw goes with the same
// umid (taken once); the send progress keeps the parts already confirmed.
func TestRestart(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, func(k map[string]string) { k["send_timeout"] = `"300ms"` })
	c := h.openJoined()
	if err := h.send(c, 1, "before"); err != nil {
		t.Fatal(err)
	}
	h.srv.HoldAcks()
	if err := h.send(c, 2, "unconfirmed"); err == nil {
		t.Fatal("confirmed while held")
	}
	h.restart()
	h.srv.ReleaseAcks()
	c.State = connector.StateActive
	if err := h.v.Resume(ctxFor(t), h.current(c)); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := h.send(c, 2, "unconfirmed"); err != nil {
		t.Fatal(err)
	}
	if err := h.send(c, 3, "after"); err != nil {
		t.Fatal(err)
	}
	ch := h.chat(c)
	if got := lineTexts(ch.Lines); !slices.Equal(got, []string{"before", "unconfirmed", "after"}) {
		t.Errorf("lines %q", got)
	}
	if got := ch.Lines[2].Mcount; got <= ch.Lines[1].Mcount {
		t.Errorf("mcount after the restart %d, not past %d", got, ch.Lines[1].Mcount)
	}
	if err := h.srv.Say(h.token(c), "still here"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitText(t, c.ID, "still here")
	if n := len(h.sink.of(c.ID, connector.EventJoined)); n != 1 {
		t.Errorf("%d joined events: the resumed chat reported its agent again", n)
	}
}

// After a restart, a chat Cention no longer has: Resume is ErrChatLost.
func TestRestartRefusedResume(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	h.restart()
	h.srv.RefuseResume(h.token(c))
	err := h.v.Resume(ctxFor(t), h.current(c))
	if !errors.Is(err, connector.ErrChatLost) {
		t.Fatalf("Resume: %v, want ErrChatLost", err)
	}
	if err := h.send(c, 1, "x"); !errors.Is(err, connector.ErrChatLost) {
		t.Errorf("Send: %v, want ErrChatLost", err)
	}
	if err := h.v.End(ctxFor(t), h.current(c), "customer"); err != nil {
		t.Errorf("End of a lost chat: %v", err)
	}
}

// An Open whose register answer was not seen is retried: the chat of its
// token is resumed when Cention has it (no second chat), and registered
// with the same token when Cention does not.
func TestOpenRetryKeepsChat(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.conv()
	first := h.start() // plays the attempt whose register went through
	sess, err := first.Open(ctxFor(t), c)
	if err != nil {
		t.Fatal(err)
	}
	stopVendor(t, first)
	st, _ := parseSession(sess)
	h.v.keepOpened(c.ID, st.Token) // what the failed attempt left in h.v
	sess, err = h.v.Open(ctxFor(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if st2, _ := parseSession(sess); st2.Token != st.Token || st2.SessionID != st.SessionID {
		t.Errorf("retried Open: session %s, want the chat of %s", sess, st.Token)
	}
	if chats := h.srv.Chats(); len(chats) != 1 || chats[0].Resumes != 1 || chats[0].Reregisters != 0 {
		t.Errorf("chats after the retry: %+v", chats)
	}

	c2 := h.conv()
	h.v.keepOpened(c2.ID, "connectord-never-registered")
	sess, err = h.v.Open(ctxFor(t), c2)
	if err != nil {
		t.Fatal(err)
	}
	if st3, _ := parseSession(sess); st3.Token != "connectord-never-registered" || st3.SessionID == "" {
		t.Errorf("Open retried on an unknown token: session %s", sess)
	}
	if n := len(h.srv.Chats()); n != 2 {
		t.Errorf("%d chats, want 2", n)
	}
}

// The sink refuses at first: the events are not lost; the socket is
// dropped and resumed, and the history brings them again.
func TestSinkFailsAtFirst(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	h.sink.mu.Lock()
	h.sink.failN = 1
	h.sink.mu.Unlock()
	if err := h.srv.Say(h.token(c), "kept"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitText(t, c.ID, "kept")
}
