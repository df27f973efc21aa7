package cobrowser

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connector"
)

// closeForSurvey opens c, has the agent close it, and returns the survey
// question the customer was told, with the session carrying the survey.
func (h *harness) closeForSurvey(v *Vendor, sk *sink, c *connector.Conversation) connector.Event {
	h.t.Helper()
	sess, err := v.Open(ctx(h.t), c)
	if err != nil {
		h.t.Fatal(err)
	}
	c.Session = sess
	if err := h.agent.Close(visitor(h.t, c)); err != nil {
		h.t.Fatal(err)
	}
	q := sk.waitType(h.t, c.ID, connector.EventNotice)
	if q.Session != nil {
		c.Session = q.Session
	}
	return q
}

// With survey = true, the agent's closed puts the campaign's question to
// the customer; the rating and the comment are PATCHed to the chat session,
// then the thanks and the end.
func TestSurvey(t *testing.T) {
	h := newHarness(t, "ws", map[string]string{"survey": "true"})
	c := conversation()
	q := h.closeForSurvey(h.v, h.sink, c)
	if !strings.HasPrefix(q.Text, "How would you rate our service?") || !strings.Contains(q.Text, "2 Might be better") {
		t.Errorf("question %q", q.Text)
	}
	if st, _ := parseSession(q.Session); st.Survey == nil {
		t.Errorf("the question's session carries no survey: %s", q.Session)
	}
	if n := h.sink.of(c.ID, connector.EventEnded); len(n) != 0 {
		t.Fatalf("ended before the answer: %+v", n)
	}
	if err := h.send(c, 1, "Might be better"); err != nil {
		t.Fatal(err)
	}
	h.sink.wait(t, c.ID, "comment question", func(e connector.Event) bool {
		return e.Type == connector.EventNotice && strings.HasPrefix(e.Text, "Help us out")
	})
	if err := h.send(c, 2, "Quick and kind"); err != nil {
		t.Fatal(err)
	}
	h.sink.waitType(t, c.ID, connector.EventEnded)
	var got []map[string]string
	for _, raw := range h.srv.Sessions()[0].Surveys {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 2 || got[0]["result"] != "moderate" || got[1]["result"] != "moderate" || got[1]["message"] != "Quick and kind" {
		t.Errorf("survey PATCHes %v", got)
	}
	if n := h.sink.of(c.ID, connector.EventNotice); n[len(n)-1].Text != "Thanks for your time and comments" {
		t.Errorf("last notice %q", n[len(n)-1].Text)
	}

	// A line that is no answer ends the chat and goes on to the next one.
	other := conversation()
	h.closeForSurvey(h.v, h.sink, other)
	if err := h.send(other, 3, "I have another question"); !errors.Is(err, errNotAnswer) {
		t.Errorf("Send of a non-answer: %v", err)
	}
	h.sink.waitType(t, other.ID, connector.EventEnded)
	if n := len(h.srv.Sessions()[1].Surveys); n != 0 {
		t.Errorf("%d PATCHes for a non-answer", n)
	}
}

// The survey outlives a restart (it is in the session), and one not
// answered within survey_window ends the conversation.
func TestSurveyRestartAndWindow(t *testing.T) {
	h := newHarness(t, "tcp", map[string]string{"survey": "true", "survey_window": `"300ms"`})
	late := conversation()
	h.closeForSurvey(h.v, h.sink, late)
	h.sink.waitType(t, late.ID, connector.EventEnded) // the window passed

	v2, sk2 := h.vendor("tcp", map[string]string{"survey": "true", "survey_window": `"1h"`})
	c := conversation()
	h.closeForSurvey(v2, sk2, c)
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v2.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	v3, sk3 := h.vendor("tcp", map[string]string{"survey": "true", "survey_window": `"1h"`})
	if err := v3.Resume(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	if err := v3.Send(ctx(t), c, &connector.Message{ID: 5, Text: "1", Kind: connector.KindText}); err != nil {
		t.Fatal(err)
	}
	h.sink = sk3
	sk3.wait(t, c.ID, "comment question", func(e connector.Event) bool { return e.Type == connector.EventNotice })
	if s := h.srv.Sessions(); len(s[1].Surveys) != 1 || !strings.Contains(string(s[1].Surveys[0]), `"good"`) {
		t.Errorf("survey after the restart: %s", s[1].Surveys)
	}
	if err := v3.End(ctx(t), c, "customer"); err != nil {
		t.Errorf("End while the survey waits: %v", err)
	}
}

func TestSurveyMatch(t *testing.T) {
	p := &pendingSurvey{Options: []surveyOption{{"good", "Good"}, {"moderate", "Might be better"}, {"bad", "Bad"}}}
	for in, want := range map[string]string{"1": "good", " 3 ": "bad", "might be better!": "moderate", "GOOD.": "good", "bad": "bad", "4": "", "great": ""} {
		got, ok := p.match(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
	var c campaign
	if err := json.Unmarshal([]byte(`{"survey":{"active":true,"survey_question":null,"survey_options":[{"value":"good"}]}}`), &c); err != nil {
		t.Fatal(err)
	}
	if p, _ := surveyOf(&c, time.Now()); p != nil {
		t.Error("a survey with a null question is asked")
	}
}
