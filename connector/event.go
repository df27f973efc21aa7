package connector

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Event implements EventSink: it turns an agent event into state changes and
// customer messages in one commit.
func (r *Router) Event(ctx context.Context, e Event) (err error) {
	defer r.recoverAsError("event", &err)
	return r.persist(ctx, "agent event", func(ctx context.Context) error { return r.event(ctx, e) })
}

func (r *Router) event(ctx context.Context, e Event) error {
	mu := r.convLock(e.ConversationID)
	mu.Lock()
	defer mu.Unlock()
	c, err := r.store.Conversation(ctx, e.ConversationID)
	if errors.Is(err, ErrNotFound) {
		return Permanent(fmt.Errorf("event for conversation %d: %w", e.ConversationID, err))
	}
	if err != nil {
		return fmt.Errorf("event for conversation %d: %w", e.ConversationID, err)
	}
	if e.Type == EventLost {
		if r.ownedElsewhere(c) {
			// A session this instance kept after its conversation moved
			// on: the owner's own session decides whether the chat is lost.
			r.convLog(c).Info("lost chat reported for another instance's conversation; ignored")
			return nil
		}
		return r.lostLocked(ctx, c, e.Session, "vendor: "+e.Reason)
	}
	ch, ok := r.change(c, e)
	if !ok {
		return nil
	}
	res, err := r.store.Apply(ctx, ch)
	if errors.Is(err, ErrNotFound) {
		return Permanent(fmt.Errorf("apply %s event: %w", e.Type, err))
	}
	if err != nil {
		return fmt.Errorf("apply %s event: %w", e.Type, err)
	}
	if res.Skipped {
		r.convLog(c).Debug("event after end dropped", zap.String("event", string(e.Type)))
		return nil
	}
	if len(ch.Messages) > 0 && len(res.Added) == 0 && e.SourceID != "" {
		r.metrics.Duplicates.WithLabelValues(c.Vendor).Inc()
	}
	if e.Type == EventText {
		r.metrics.MessagesIn.WithLabelValues(c.Vendor).Add(float64(len(res.Added)))
	}
	if e.Type == EventEnded || (e.Type == EventNoAgent && !e.LeaveMessage) {
		r.convLog(c).Info("conversation ended by vendor", zap.String("reason", res.Conversation.EndReason))
	}
	r.settled(ctx, c, res)
	return nil
}

// change maps an event to the Change it makes; false means nothing to store.
func (r *Router) change(c *Conversation, e Event) (Change, bool) {
	ch := Change{ConversationID: c.ID, Session: e.Session, RequireOpen: true}
	d := NoticeData{Agent: e.Agent, Position: e.Position, Text: e.Text, Reason: e.Reason}
	switch e.Type {
	case EventJoined:
		ch.State, ch.Agent, ch.Touch = StateActive, &e.Agent, true
		ch.Messages = r.notice(c, "agent_joined", d)
	case EventText:
		ch.Touch = true
		agent := e.Agent
		if agent == "" {
			agent = c.Agent
		}
		ch.Messages = r.split(c, &Message{Direction: ToCustomer, Kind: KindText, Text: r.capLine(c, e.Text),
			Format: e.Format, Attachments: e.Attachments, SourceID: e.SourceID, Agent: agent})
	case EventTransferred:
		ch.Agent = &e.Agent
		ch.Messages = r.notice(c, "transferred", d)
	case EventQueue:
		ch.Touch = true // waiting in the queue is not the customer's silence
		ch.Messages = r.notice(c, "queue_position", d)
	case EventNotice:
		ch.Messages = r.split(c, &Message{Direction: ToCustomer, Kind: KindNotice, Text: r.capLine(c, e.Text),
			Format: e.Format, SourceID: e.SourceID})
	case EventNoAgent:
		if e.LeaveMessage {
			ch.LeaveMessage = true
			ch.Messages = r.notice(c, "leave_message", d)
		} else {
			ch.State, ch.EndReason = StateEnded, "no agent"
			ch.Messages = r.notice(c, "no_agent", d)
			r.settleLines(c, &ch, failLines)
		}
	case EventEnded:
		reason := e.Reason
		if reason == "" {
			reason = "agent"
		}
		ch.State, ch.EndReason = StateEnded, reason
		r.settleLines(c, &ch, moveLines)
		if e.Text != "" { // the vendor's own words for the customer (CoBrowser's blocked notice)
			ch.Messages = r.split(c, &Message{Direction: ToCustomer, Kind: KindNotice, Text: r.capLine(c, e.Text),
				Format: e.Format, Notice: "ended_by_agent"})
			break
		}
		key := "ended_by_agent"
		if reason != "agent" {
			key, d.Reason = "ended_failed", reasonLost // the vendor's reason is for the log
		}
		ch.Messages = r.notice(c, key, d)
	case EventTyping:
		r.showTyping(c, e.Typing)
		return ch, e.Session != nil
	case EventSession:
		return ch, e.Session != nil
	default:
		r.convLog(c).Warn("unknown event type dropped", zap.String("event", string(e.Type)))
		return ch, false
	}
	return ch, true
}

// truncatedMark ends an agent line that was cut to conversation.max_agent_line.
const truncatedMark = " [… message cut: too long]"

// capLine cuts an agent line longer than conversation.max_agent_line at a
// character boundary and marks the cut. Lines are rendered (HTML, Markdown)
// and split into SMS at send time: an unbounded one costs memory and
// hundreds of messages.
func (r *Router) capLine(c *Conversation, text string) string {
	limit := r.settings().cfg.MaxAgentLine
	if limit <= 0 || len(text) <= limit {
		return text
	}
	cut := limit - len(truncatedMark)
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	r.convLog(c).Warn("agent line cut", zap.Int("bytes", len(text)), zap.Int("max_agent_line", limit))
	return text[:cut] + truncatedMark
}

func (r *Router) showTyping(c *Conversation, on bool) {
	if td, ok := r.channels[c.Channel].(TypingDisplay); ok {
		td.ShowTyping(r.runCtx, c.Customer, on)
	}
}

// after is time.After, named so tests read well.
func after(d time.Duration) <-chan time.Time { return time.After(d) }
