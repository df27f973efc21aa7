package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// A customer line is never dropped because its conversation ended, and a
// vendor that lost a chat gets a new one rather than an end:
//
//   - A conversation that ends with customer lines still waiting moves them
//     to the customer's next conversation (Change.Move), which opens at once
//     by the routes; the customer reads that a new chat starts.
//   - A vendor that lost the chat (ErrChatLost, EventLost) gets a new chat
//     for the same conversation: the customer reads "reconnected", the new
//     agent first gets a context line, then the waiting lines in order. A
//     chat lost again within conversation.reopen_window ends instead.
//   - Lines fail only where no agent can take them at all (no agent and no
//     leave-message, a vendor that refuses the customer or keeps losing the
//     chat); the customer is then told, with the start of each line quoted.

// lineFate is what becomes of a conversation's waiting customer lines when
// it ends.
type lineFate int

const (
	moveLines lineFate = iota // to the customer's next conversation
	failLines                 // no agent can take them: fail, and tell the customer
	keepLines                 // the customer ended it: they still go, before the end request
)

// ending is how a conversation ends from our side.
type ending struct {
	reason     string // stored as EndReason
	notice     string // notice key for the customer; "" for none
	data       NoticeData
	tellVendor bool // queue a KindEnd for the vendor
	lines      lineFate
}

// endWith ends a conversation from our side.
func (r *Router) endWith(ctx context.Context, c *Conversation, e ending) error {
	mu := r.convLock(c.ID)
	mu.Lock()
	defer mu.Unlock()
	return r.endLocked(ctx, c, e)
}

func (r *Router) endLocked(ctx context.Context, c *Conversation, e ending) error {
	_, err := r.applyEnd(ctx, c, e)
	return err
}

// applyEnd is endLocked returning what the change did: Skipped when the
// conversation had ended already.
func (r *Router) applyEnd(ctx context.Context, c *Conversation, e ending) (ChangeResult, error) {
	ch := Change{ConversationID: c.ID, State: StateEnded, EndReason: e.reason, RequireOpen: true}
	if e.notice != "" {
		ch.Messages = r.notice(c, e.notice, e.data)
	}
	if e.tellVendor {
		ch.Messages = append(ch.Messages, &Message{Direction: ToAgent, Kind: KindEnd, Text: e.reason})
	}
	r.settleLines(c, &ch, e.lines)
	res, err := r.store.Apply(ctx, ch)
	if err != nil {
		return res, fmt.Errorf("end conversation: %w", err)
	}
	if !res.Skipped {
		r.convLog(c).Info("conversation ended", zap.String("reason", e.reason))
	}
	r.settled(ctx, c, res)
	return res, nil
}

// settleLines sets what ch does with the waiting customer lines.
func (r *Router) settleLines(c *Conversation, ch *Change, fate lineFate) {
	switch fate {
	case keepLines:
	case moveLines:
		if vendor, ok := r.settings().vendorOf(c.Channel); ok {
			ch.Move = &Move{Vendor: vendor, Messages: r.notice(c, "new_conversation", NoticeData{})}
			return
		}
		fallthrough // no route any more: nobody can take them
	default:
		ch.FailPending = "no agent could take it"
	}
}

// settled queues what a change that ended a conversation added, moved or
// failed.
func (r *Router) settled(ctx context.Context, c *Conversation, res ChangeResult) {
	r.enqueueAll(res.Conversation, res.Added)
	if res.Next != nil {
		r.metrics.LinesMoved.WithLabelValues(c.Channel).Add(float64(len(res.Moved)))
		r.convLog(c).Info("waiting customer lines moved to the next conversation",
			zap.Int64("next", res.Next.ID), zap.Int("lines", len(res.Moved)))
		r.enqueueAll(res.Next, res.Moved)
	}
	r.tellUndelivered(ctx, c, res.Failed)
}

// tellUndelivered tells the customer which of their lines no agent could
// take, quoting the start of each, and counts them.
func (r *Router) tellUndelivered(ctx context.Context, c *Conversation, failed []*Message) {
	var quotes []string
	for _, m := range failed {
		if m.Kind == KindText && m.Text != "" {
			quotes = append(quotes, `"`+clip(m.Text, 40)+`"`)
		}
	}
	if len(quotes) == 0 {
		return
	}
	r.metrics.LinesFailed.WithLabelValues(c.Channel).Add(float64(len(quotes)))
	ms := r.notice(c, "undelivered", NoticeData{Text: strings.Join(quotes, ", ")})
	var res ChangeResult
	err := r.persist(ctx, "undelivered notice", func(ctx context.Context) (err error) {
		res, err = r.store.Apply(ctx, Change{ConversationID: c.ID, Messages: ms})
		return err
	})
	if err != nil {
		r.convLog(c).Error("customer not told of undelivered lines", zap.Error(err))
		return
	}
	r.enqueueAll(res.Conversation, res.Added)
}

// lost handles a vendor that will not continue a conversation's chat; the
// chat is the one of session (nil: whatever is stored now).
func (r *Router) lost(ctx context.Context, id int64, session json.RawMessage, why string) error {
	mu := r.convLock(id)
	mu.Lock()
	defer mu.Unlock()
	c, err := r.store.Conversation(ctx, id)
	if err != nil {
		return fmt.Errorf("lost chat of conversation %d: %w", id, err)
	}
	return r.lostLocked(ctx, c, session, why)
}

// lostLocked opens a new vendor chat for c, or ends c when its chat was
// lost again soon after the last reopening. A conversation without a
// session is already waiting for its new chat, and one whose session is no
// longer the lost one has its new chat already (a late report).
func (r *Router) lostLocked(ctx context.Context, c *Conversation, session json.RawMessage, why string) error {
	if !c.Open() || len(c.Session) == 0 {
		return nil
	}
	if len(session) > 0 && !sameJSON(session, c.Session) {
		r.convLog(c).Debug("a chat lost earlier reported again; the conversation has a new one", zap.String("why", why))
		return nil
	}
	log := r.convLog(c).With(zap.String("why", why))
	// Only a reopening by this process counts: a chat that every restart
	// loses (a vendor that does not re-attach chats) is opened again each
	// time, however close the restarts.
	if c.ReopenedAt.After(r.started) && time.Since(c.ReopenedAt) < r.settings().cfg.ReopenWindow {
		log.Warn("the vendor lost the chat again soon after it was opened again; ending the conversation")
		return r.endLocked(ctx, c, ending{reason: "failed: the vendor lost the chat again", notice: "ended_failed",
			data: NoticeData{Reason: reasonLost}, lines: failLines})
	}
	text, err := r.contextLine(ctx, c)
	if err != nil {
		return err
	}
	noAgent := ""
	ch := Change{ConversationID: c.ID, ClearSession: true, Reopen: true, RequireOpen: true, Agent: &noAgent,
		Messages: append(r.notice(c, "reconnected", NoticeData{}), &Message{Direction: ToAgent, Kind: KindContext, Text: text})}
	if c.State == StateActive {
		ch.State = StateQueued
	}
	res, err := r.store.Apply(ctx, ch)
	if err != nil {
		return fmt.Errorf("record lost chat: %w", err)
	}
	r.setCarried(c.ID, false) // the next attempt opens a new chat
	if !res.Skipped {
		r.metrics.Reopened.WithLabelValues(c.Vendor).Inc()
		log.Info("the vendor lost the chat; opening a new one")
	}
	r.enqueueAll(res.Conversation, res.Added)
	return nil
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

// contextLine is the first line the agent of a reopened chat reads: who the
// customer is, where they write from, and the conversation's last lines.
func (r *Router) contextLine(ctx context.Context, c *Conversation) (string, error) {
	var b strings.Builder
	b.WriteString("[connectord] This chat continues one that was disconnected. Customer: ")
	if c.Profile.Name != "" {
		b.WriteString(clip(c.Profile.Name, 80) + " ")
	}
	fmt.Fprintf(&b, "(%s) on %s.", clip(c.Customer, 120), c.Channel)
	if r.settings().cfg.ContextLines == 0 {
		return b.String(), nil
	}
	ms, err := r.store.Messages(ctx, c.ID)
	if err != nil {
		return "", fmt.Errorf("read context lines: %w", err)
	}
	var lines []string
	for _, m := range ms {
		if m.Kind != KindText || m.State.Pending() || m.State == DeliveryFailed {
			continue
		}
		who := "customer"
		if m.Direction == ToCustomer {
			who = "agent"
		}
		lines = append(lines, who+": "+clip(m.Text, 200))
	}
	if n := len(lines) - r.settings().cfg.ContextLines; n > 0 {
		lines = lines[n:]
	}
	if len(lines) > 0 {
		b.WriteString(" Last lines: " + strings.Join(lines, " | "))
	}
	return b.String(), nil
}

// clip returns text on one line, cut to at most n characters with a mark.
func clip(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= n {
		return text
	}
	i := 0
	for pos := range text {
		if i == n {
			return strings.TrimRight(text[:pos], " ") + "…"
		}
		i++
	}
	return text
}

// sendContext sends the context line a reopened chat owes its new agent,
// before anything else goes to it.
func (r *Router) sendContext(ctx context.Context, v Vendor, c *Conversation) error {
	if c.ContextMessage == 0 {
		return nil
	}
	cm, err := r.store.Message(ctx, c.ContextMessage)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read context line: %w", err)
	}
	if cm.State.Pending() {
		if err := v.Send(ctx, c, cm); err != nil {
			return err
		}
		if err := r.markSent(ctx, c, cm, ""); err != nil {
			return err
		}
	}
	c.ContextMessage = 0
	return nil
}

// sendsAfterEnd reports whether a customer line still goes to the vendor
// although its conversation ended: the customer ended it (or opted out: the
// agent's notice of it is such a line), and the vendor chat stays open
// until the end request, which follows the line on its lane.
func sendsAfterEnd(c *Conversation, m *Message) bool {
	byCustomer := c.EndReason == "customer" || c.EndReason == "customer opted out"
	return byCustomer && len(c.Session) > 0 && m.Kind == KindText
}
