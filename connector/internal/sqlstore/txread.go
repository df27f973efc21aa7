package sqlstore

import (
	"context"
	"strings"

	"github.com/connectord/connectord/connector"
)

// convKey names a customer's conversations: one open at most.
type convKey struct{ channel, customer string }

// cached returns conversation id from the writer's cache when the batch has
// not changed it. The cache holds each row as the last commit left it, and
// only the writer commits, so an untouched row is what the transaction
// itself would read.
func (t *Tx) cached(id int64) (*connector.Conversation, bool) {
	if t.w.cache == nil {
		return nil, false
	}
	for _, x := range t.touched {
		if x.id == id {
			return nil, false
		}
	}
	return t.w.cache.get(id)
}

// txConversation is getConversation inside the writer's transaction, from
// the cache when it can be (see Tx.cached): Apply reads the conversation of
// every change.
func (s *Store) txConversation(ctx context.Context, tx *Tx, id int64) (*connector.Conversation, error) {
	if c, ok := tx.cached(id); ok {
		return c, nil
	}
	return s.getConversation(ctx, tx, id)
}

// txOpenConversationOf is openConversationOf inside the writer's
// transaction, which RecordInbound runs for every customer message. The
// writer remembers which conversation it last found open for a customer;
// when the cache still holds that one open and the batch has not changed
// it, it is the customer's open one (the database keeps one at most), and
// no query is needed.
func (s *Store) txOpenConversationOf(ctx context.Context, tx *Tx, channel, customer string) (*connector.Conversation, error) {
	open := tx.w.openOf
	if open == nil {
		return s.openConversationOf(ctx, tx, channel, customer)
	}
	key := convKey{channel, customer}
	if id, ok := open[key]; ok {
		if c, ok := tx.cached(id); ok && c.Open() && c.Channel == channel && c.Customer == customer {
			return c, nil
		}
		delete(open, key)
	}
	c, err := s.openConversationOf(ctx, tx, channel, customer)
	if c != nil {
		tx.w.rememberOpen(c)
	}
	return c, err
}

// rememberOpen notes c as its customer's open conversation, for
// txOpenConversationOf; only the writer's goroutine calls it. A note is only
// a hint, checked against the cache before use, so a note of a batch that
// fails to commit is harmless. The notes are dropped all at once when there
// are as many as the cache can hold twice over.
func (w *Writer) rememberOpen(c *connector.Conversation) {
	if w.openOf == nil {
		return
	}
	if len(w.openOf) >= 2*convCacheSize {
		clear(w.openOf)
	}
	w.openOf[convKey{strings.Clone(c.Channel), strings.Clone(c.Customer)}] = c.ID
}
