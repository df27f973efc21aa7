package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// Reads go to the read pool. The writer answers a caller only after its
// commit, so a read that follows a write sees it.

// Conversation returns one conversation, or an error wrapping connector.ErrNotFound.
func (s *Store) Conversation(ctx context.Context, id int64) (*connector.Conversation, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	return getConversation(ctx, db, id)
}

// OpenConversations returns every conversation not ended, by id; in a shared
// store, only those this instance owns.
func (s *Store) OpenConversations(ctx context.Context) ([]*connector.Conversation, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	if s.instance != "" {
		return sqlrow.ScanConversations(db.QueryContext(ctx, queryOwnedOpen, s.instance))
	}
	return sqlrow.ScanConversations(db.QueryContext(ctx, queryOpenConversations))
}

// queryOpenConversations reads the open conversations; its predicate is
// that of the partial index conversations_open, which holds only them.
const queryOpenConversations = `SELECT ` + sqlrow.ConversationColumns + ` FROM conversations
	WHERE state <> 'ended' ORDER BY id`

// queryOwnedOpen reads one owner's open conversations through
// conversations_owner (owner, id), which holds only open ones.
const queryOwnedOpen = `SELECT ` + sqlrow.ConversationColumns + ` FROM conversations
	WHERE owner = $1 AND state <> 'ended' ORDER BY id`

// FindOpen returns the customer's open conversation on channel, or an error
// wrapping connector.ErrNotFound.
func (s *Store) FindOpen(ctx context.Context, channel, customer string) (*connector.Conversation, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	c, err := openConversationOf(ctx, db, channel, customer)
	if err == nil && c == nil {
		err = fmt.Errorf("open conversation of %s on %s: %w", customer, channel, connector.ErrNotFound)
	}
	return c, err
}

// OpenCursors returns the channel's open conversations with the source id
// of each one's newest customer message; see connector.Store. The subquery
// walks messages_conversation backwards from the newest message.
func (s *Store) OpenCursors(ctx context.Context, channel string) ([]connector.CustomerCursor, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT c.id, c.customer, c.state, coalesce((SELECT m.source_id FROM messages m
			WHERE m.conversation_id = c.id AND m.direction = 'to_agent' AND m.source_id != ''
			ORDER BY m.id DESC LIMIT 1), '')
		FROM conversations c WHERE c.channel = $1 AND c.state != 'ended' ORDER BY c.id`, channel)
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

// NewestSourceID implements connector.Store: a backwards walk of the
// messages_inbound index, bounded by the prefix's range.
func (s *Store) NewestSourceID(ctx context.Context, channel, prefix string) (string, error) {
	last := len(prefix) - 1
	if last < 0 || prefix[last] == 0xff {
		return "", fmt.Errorf("connector/postgres: NewestSourceID: prefix %q has no upper bound", prefix)
	}
	db, err := s.reader()
	if err != nil {
		return "", err
	}
	// Every id with the prefix sorts at or after it and before the prefix
	// with its last byte raised.
	end := prefix[:last] + string([]byte{prefix[last] + 1})
	var id string
	err = db.QueryRowContext(ctx, `SELECT source_id FROM messages
		WHERE channel = $1 AND direction = 'to_agent' AND source_id != '' AND source_id >= $2 AND source_id < $3
		ORDER BY source_id DESC LIMIT 1`, channel, prefix, end).Scan(&id)
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
	return sqlrow.ScanMessages(db.QueryContext(ctx,
		`SELECT `+sqlrow.MessageColumns+` FROM messages WHERE conversation_id = $1 ORDER BY id`, conversationID))
}

// Outbox returns every message still DeliveryStored, by id; in a shared
// store, only those of the conversations this instance owns.
func (s *Store) Outbox(ctx context.Context) ([]*connector.Message, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	if s.instance != "" {
		return sqlrow.ScanMessages(db.QueryContext(ctx, `SELECT `+qualified("m", sqlrow.MessageColumns)+`
			FROM messages m JOIN conversations c ON c.id = m.conversation_id
			WHERE m.state = 'stored' AND c.owner = $1 ORDER BY m.id`, s.instance))
	}
	return sqlrow.ScanMessages(db.QueryContext(ctx,
		`SELECT `+sqlrow.MessageColumns+` FROM messages WHERE state = 'stored' ORDER BY id`))
}

// Message returns one message as it stands now, or connector.ErrNotFound.
func (s *Store) Message(ctx context.Context, id int64) (*connector.Message, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	return getMessage(ctx, db, id)
}

func getMessage(ctx context.Context, q sqlrow.Queryer, id int64) (*connector.Message, error) {
	m, err := sqlrow.ScanMessage(q.QueryRowContext(ctx, `SELECT `+sqlrow.MessageColumns+` FROM messages WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", id, connector.ErrNotFound)
	}
	return m, err
}

// getConversation reads one conversation through q (the read pool, or the
// writer's transaction).
func getConversation(ctx context.Context, q sqlrow.Queryer, id int64) (*connector.Conversation, error) {
	c, err := sqlrow.ScanConversation(q.QueryRowContext(ctx,
		`SELECT `+sqlrow.ConversationColumns+` FROM conversations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("conversation %d: %w", id, connector.ErrNotFound)
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
