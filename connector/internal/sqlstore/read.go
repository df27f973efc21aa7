package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// Conversation returns one conversation, or an error wrapping
// connector.ErrNotFound. With Dialect.CacheConversations it comes from the
// writer's cache when it is there (the router reads one for every message it
// delivers); the caller gets a copy of its own either way.
func (s *Store) Conversation(ctx context.Context, id int64) (*connector.Conversation, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	cache := s.w.cache
	if cache == nil {
		return s.getConversation(ctx, db, id)
	}
	if c, ok := cache.get(id); ok {
		return c, nil
	}
	ticket := cache.startRead()
	c, err := s.getConversation(ctx, db, id)
	cache.endRead(id, ticket, c)
	return c, err
}

// OpenConversations returns every conversation not ended, by id; in a shared
// store, only those this instance owns. With Dialect.CacheConversations
// they are cached as they are read, as far as there is room: a starting
// router reads each of them again to resume its chat.
func (s *Store) OpenConversations(ctx context.Context) ([]*connector.Conversation, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	cache := s.w.cache
	if cache == nil {
		return s.openConversations(ctx, db)
	}
	ticket := cache.startRead()
	convs, err := s.openConversations(ctx, db)
	cache.endListRead(ticket, convs) // nil when the read failed
	return convs, err
}

func (s *Store) openConversations(ctx context.Context, db sqlrow.Queryer) ([]*connector.Conversation, error) {
	if s.owner != "" {
		return sqlrow.ScanConversations(db.QueryContext(ctx, s.q.ownedOpen, s.owner))
	}
	return sqlrow.ScanConversations(db.QueryContext(ctx, s.q.openConversations))
}

// FindOpen returns the customer's open conversation on channel, or an error
// wrapping connector.ErrNotFound.
func (s *Store) FindOpen(ctx context.Context, channel, customer string) (*connector.Conversation, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	c, err := s.openConversationOf(ctx, db, channel, customer)
	if err == nil && c == nil {
		err = fmt.Errorf("open conversation of %s on %s: %w", customer, channel, connector.ErrNotFound)
	}
	return c, err
}

// OpenCursors returns the channel's open conversations with the source id
// of each one's newest customer message; see connector.Store.
func (s *Store) OpenCursors(ctx context.Context, channel string) ([]connector.CustomerCursor, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, s.q.openCursors, channel)
	if err != nil {
		return nil, fmt.Errorf("open cursors: %w", err)
	}
	defer rows.Close()
	var out []connector.CustomerCursor
	for rows.Next() {
		var cur connector.CustomerCursor
		if err := rows.Scan(&cur.ConversationID, &cur.Customer, &cur.State, &cur.LastSourceID); err != nil {
			return nil, err
		}
		out = append(out, cur)
	}
	return out, rows.Err()
}

// NewestSourceID implements connector.Store. Source ids compare bytewise in
// both schemas (PostgreSQL's column has collation "C").
func (s *Store) NewestSourceID(ctx context.Context, channel, prefix string) (string, error) {
	last := len(prefix) - 1
	if last < 0 || prefix[last] == 0xff {
		return "", s.d.errorf("NewestSourceID: prefix %q has no upper bound", prefix)
	}
	db, err := s.reader()
	if err != nil {
		return "", err
	}
	// Every id with the prefix sorts at or after it and before the prefix
	// with its last byte raised.
	end := prefix[:last] + string([]byte{prefix[last] + 1})
	var id string
	err = db.QueryRowContext(ctx, s.q.newestSourceID, channel, prefix, end).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("newest source id: %w", err)
	}
	return id, nil
}

// Messages returns a conversation's messages, by id; none for an unknown conversation.
func (s *Store) Messages(ctx context.Context, conversationID int64) ([]*connector.Message, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	return sqlrow.ScanMessages(db.QueryContext(ctx, s.q.messages, conversationID))
}

// Outbox returns every message still DeliveryStored, by id; in a shared
// store, only those of the conversations this instance owns.
func (s *Store) Outbox(ctx context.Context) ([]*connector.Message, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	if s.owner != "" {
		return sqlrow.ScanMessages(db.QueryContext(ctx, s.q.ownedOutbox, s.owner))
	}
	return sqlrow.ScanMessages(db.QueryContext(ctx, s.q.outbox))
}

// WaitingBefore returns a conversation's messages to the agent still stored
// whose id is below before, by id. The router asks for every line to an
// agent and nearly always there is none: the writer's set answers that
// (Dialect.CacheWaiting), or else a probe of one column, and only when one
// waits are the messages read.
func (s *Store) WaitingBefore(ctx context.Context, conversationID, before int64) ([]*connector.Message, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	if set := s.w.waiting; set != nil {
		if !set.anyBefore(conversationID, before) {
			return nil, nil
		}
	} else {
		var id int64
		err = db.QueryRowContext(ctx, s.q.anyWaitingBefore, conversationID, before).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("messages waiting before %d: %w", before, err)
		}
	}
	return sqlrow.ScanMessages(db.QueryContext(ctx, s.q.waitingBefore, conversationID, before))
}

// Message returns one message as it stands now, or connector.ErrNotFound.
func (s *Store) Message(ctx context.Context, id int64) (*connector.Message, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	m, err := sqlrow.ScanMessage(db.QueryRowContext(ctx, s.q.message, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
	}
	return m, err
}

// getConversation reads one conversation through q (the read pool, or the
// writer's transaction).
func (s *Store) getConversation(ctx context.Context, q sqlrow.Queryer, id int64) (*connector.Conversation, error) {
	c, err := sqlrow.ScanConversation(q.QueryRowContext(ctx, s.q.conversation, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("conversation %d: %w", id, connector.ErrNotFound)
	}
	return c, err
}

// openConversationOf returns the customer's open conversation, or nil.
func (s *Store) openConversationOf(ctx context.Context, q sqlrow.Queryer, channel, customer string) (*connector.Conversation, error) {
	c, err := sqlrow.ScanConversation(q.QueryRowContext(ctx, s.q.openOf, channel, customer))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c, err
}

// qualified prefixes each name of a column list with alias, for a join.
func qualified(alias, columns string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = alias + "." + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}
