package connector

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// What an operator may do to conversations and messages (the admin API).
//
// With several instances on one store, any instance takes the request, as
// any instance takes a customer's webhook: the change is one atomic commit
// in the shared store, and the conversation's owner does the rest. An end
// commits the end notice and the vendor's end request, which wake the owner
// (PostgreSQL NOTIFY); the owner sends both on its own lanes, through its
// own vendor connection. A retry moves the message back to the outbox,
// which wakes the owner the same way. An instance never sends for a
// conversation it does not own: its lanes drop such a message.

// EndByOperator ends conversation id because an operator asked: the
// customer gets notices.ended_by_operator, the vendor is told to end the
// chat, and lines the customer wrote that had not reached the agent move to
// a new conversation, as with every end from our side. A conversation still
// pending (never opened at the vendor: the vendor is down or refuses it)
// has no chat to end, and its lines fail instead, the customer told which:
// a new conversation would only wait in the same way. It returns the
// conversation as it stands afterwards; an unknown one wraps ErrNotFound,
// one already ended ErrWrongState.
func (r *Router) EndByOperator(ctx context.Context, id int64) (*Conversation, error) {
	mu := r.convLock(id)
	mu.Lock()
	defer mu.Unlock()
	c, err := r.store.Conversation(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Open() {
		return c, fmt.Errorf("conversation %d has already ended (%s): %w", id, c.EndReason, ErrWrongState)
	}
	e := ending{reason: "operator", notice: "ended_by_operator", data: NoticeData{Reason: "operator"}, tellVendor: true}
	if c.State == StatePending {
		e.tellVendor, e.lines = false, failLines
	}
	res, err := r.applyEnd(ctx, c, e)
	if err != nil {
		return nil, err
	}
	if res.Skipped { // another instance ended it between the read and the commit
		return res.Conversation, fmt.Errorf("conversation %d has already ended (%s): %w", id, res.Conversation.EndReason, ErrWrongState)
	}
	return res.Conversation, nil
}

// RetryMessage sends a failed message again: it goes back to the outbox and
// is tried like a new one. Its give-up time still counts from when it was
// first stored, so a message older than conversation.give_up_after that
// fails again is given up on at once. Refused (ErrWrongState): a message
// that has not failed, a context line (the next reopened chat writes its
// own), and a line for the agent of a conversation that has ended (no
// agent can take it any more; the customer's next conversation gets what
// they write next). An unknown message wraps ErrNotFound.
func (r *Router) RetryMessage(ctx context.Context, id int64) (*Message, error) {
	m, err := r.store.Message(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := r.store.Conversation(ctx, m.ConversationID)
	if err != nil {
		return nil, err
	}
	if err := retryable(c, m); err != nil {
		return m, err
	}
	m, err = r.store.RetryMessage(ctx, id)
	if err != nil {
		return nil, err
	}
	r.convLog(c).Info("message retried by an operator", zap.Int64("message", m.ID))
	if r.queuesHere(ctx, c) { // else its owner was woken by the commit
		r.requeue(c, m)
	}
	return m, nil
}

// retryable says why m cannot be retried, nil when it can.
func retryable(c *Conversation, m *Message) error {
	switch {
	case m.State != DeliveryFailed:
		return fmt.Errorf("message %d is %s, not failed: %w", m.ID, m.State, ErrWrongState)
	case m.Kind == KindContext:
		return fmt.Errorf("message %d is the context line of a reopened chat, which is not sent again: %w", m.ID, ErrWrongState)
	case m.Direction == ToAgent && m.Kind != KindEnd && !c.Open() && !sendsAfterEnd(c, m):
		return fmt.Errorf("message %d is for the agent of conversation %d, which has ended (%s): %w", m.ID, c.ID, c.EndReason, ErrWrongState)
	}
	return nil
}
