package cobrowser

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// pendingSurvey is the campaign's survey put to a customer after the agent
// closed the chat (survey = true). It is stored in the session, so that an
// answer after a restart still reaches the chat session.
type pendingSurvey struct {
	Options []surveyOption `json:"options"`
	Comment string         `json:"comment,omitempty"` // the comment question; "" when comments are off
	Thanks  string         `json:"thanks,omitempty"`
	Result  string         `json:"result,omitempty"` // the rating given, while the comment is awaited
	Until   time.Time      `json:"until"`
}

// maxSurveyOptions bounds the options kept from a campaign.
const maxSurveyOptions = 10

// surveyOf makes the pending survey of a campaign, nil when it has none to
// ask (inactive, no question, no options).
func surveyOf(c *campaign, until time.Time) (*pendingSurvey, string) {
	sv := c.Survey
	if sv == nil || !bool(sv.Active) || sv.Question == nil || strings.TrimSpace(*sv.Question) == "" || len(sv.Options) == 0 {
		return nil, ""
	}
	p := &pendingSurvey{Until: until}
	var labels []string
	for _, o := range sv.Options[:min(len(sv.Options), maxSurveyOptions)] {
		o.Value, o.Label = clip(o.Value, 64), clip(strings.TrimSpace(o.Label), 200)
		if o.Value == "" {
			continue
		}
		if o.Label == "" {
			o.Label = o.Value
		}
		p.Options = append(p.Options, o)
		labels = append(labels, fmt.Sprintf("%d %s", len(p.Options), o.Label))
	}
	if len(p.Options) == 0 {
		return nil, ""
	}
	if bool(sv.CommentEnable) && sv.Comment != nil {
		p.Comment = clip(strings.TrimSpace(*sv.Comment), 500)
	}
	if bool(sv.ThanksEnable) && sv.Thanks != nil {
		p.Thanks = clip(strings.TrimSpace(*sv.Thanks), 500)
	}
	return p, clip(strings.TrimSpace(*sv.Question), 500) + " Reply " + strings.Join(labels, ", ") + "."
}

// match finds the option an answer names: its number, value or label.
func (p *pendingSurvey) match(answer string) (string, bool) {
	a := strings.TrimSpace(strings.Trim(strings.TrimSpace(answer), ".!"))
	if n, err := strconv.Atoi(a); err == nil && n >= 1 && n <= len(p.Options) {
		return p.Options[n-1].Value, true
	}
	for _, o := range p.Options {
		if strings.EqualFold(a, o.Value) || strings.EqualFold(a, o.Label) {
			return o.Value, true
		}
	}
	return "", false
}

// askSurvey puts the campaign's survey to the customer after the agent
// closed the chat; false when there is none to ask (the chat then ends as
// usual). The conversation stays open until it is answered or
// survey_window passes.
func (s *session) askSurvey(ctx context.Context) bool {
	camp, err := s.v.api.campaign(ctx, s.v.cfg.CampaignID)
	if err != nil {
		s.log.Info("survey not asked: the campaign could not be read", zap.String("error", connector.RedactError(err)))
		return false
	}
	p, question := surveyOf(camp, s.v.now().Add(s.v.cfg.SurveyWindow))
	if p == nil {
		return false
	}
	st := s.state
	st.Survey = p
	sess := st.marshal()
	// Kept before the question goes out: the customer's answer may come
	// back (a Send) before emit returns, and must find the survey waiting.
	w := s.v.keepSurvey(s.id, st, s.v.cfg.SurveyWindow)
	if !s.emit(ctx, connector.Event{Type: connector.EventNotice, Text: question, Session: sess}) {
		if s.v.takeSurvey(s.id, w) {
			close(w.answer)
		}
		return false
	}
	return true
}

// surveys the vendor holds: by conversation, the session waiting for an
// answer. Each has a goroutine that ends the conversation when its window
// passes.
type surveyWait struct {
	st     sessionState
	answer chan struct{} // closed once answered (the timer then does nothing)
}

func (v *Vendor) keepSurvey(id int64, st sessionState, wait time.Duration) *surveyWait {
	w := &surveyWait{st: st, answer: make(chan struct{})}
	v.mu.Lock()
	v.surveys[id] = w
	v.mu.Unlock()
	v.group.Go(func(ctx context.Context) {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-w.answer:
			return
		case <-t.C:
		}
		if v.takeSurvey(id, w) {
			v.log.Info("survey not answered in time", zap.Int64("conversation", id))
			if err := v.deliver(ctx, connector.Event{ConversationID: id, Type: connector.EventEnded, Reason: "agent"}); err != nil {
				v.log.Warn("end after the survey not stored", zap.Error(err))
			}
		}
	})
	return w
}

// takeSurvey removes w if it is still the conversation's survey.
func (v *Vendor) takeSurvey(id int64, w *surveyWait) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.surveys[id] != w {
		return false
	}
	delete(v.surveys, id)
	return true
}

func (v *Vendor) surveyFor(id int64) *surveyWait {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.surveys[id]
}

// errNotAnswer sends a line that does not answer the survey on to the
// customer's next conversation: the conversation ended just before it is
// returned, and the core moves the waiting line there.
var errNotAnswer = errors.New("the line does not answer the survey; the chat is over")

// answerSurvey takes m as the customer's answer: a rating, then (when the
// campaign asks for one) a comment, each PATCHed to the chat session.
func (v *Vendor) answerSurvey(ctx context.Context, c *connector.Conversation, w *surveyWait, m *connector.Message) error {
	p := w.st.Survey
	end := func(notice string) error {
		if !v.takeSurvey(c.ID, w) {
			return nil
		}
		close(w.answer)
		if notice != "" {
			if err := v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventNotice, Text: notice}); err != nil {
				return err
			}
		}
		return v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventEnded, Reason: "agent"})
	}
	if p.Result != "" { // the comment
		if err := v.api.patchSurvey(ctx, w.st.ChatSession, p.Result, clip(strings.TrimSpace(m.Text), 2000)); err != nil {
			return err
		}
		return end(p.Thanks)
	}
	result, ok := p.match(m.Text)
	if !ok {
		if err := end(""); err != nil {
			return err
		}
		return errNotAnswer
	}
	if err := v.api.patchSurvey(ctx, w.st.ChatSession, result, ""); err != nil {
		return err
	}
	v.log.Info("survey answered", zap.Int64("conversation", c.ID), zap.String("result", result))
	if p.Comment == "" {
		return end(p.Thanks)
	}
	next := *p
	next.Result = result
	w.st.Survey = &next
	return v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventNotice, Text: p.Comment,
		Session: w.st.marshal()})
}

// resumeSurvey waits again, after a restart, for the answer to a survey
// asked before it; one whose window passed ends the conversation.
func (v *Vendor) resumeSurvey(ctx context.Context, c *connector.Conversation, st sessionState) error {
	if v.surveyFor(c.ID) != nil {
		return nil
	}
	left := st.Survey.Until.Sub(v.now())
	if left <= 0 {
		return v.deliver(ctx, connector.Event{ConversationID: c.ID, Type: connector.EventEnded, Reason: "agent"})
	}
	v.keepSurvey(c.ID, st, left)
	return nil
}
