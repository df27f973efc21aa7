// Package sqlrow holds what the SQL stores (connector/sqlite,
// connector/postgres) read and write alike: the column lists, the scans of
// a conversation and a message, and the encodings of times, profiles,
// sessions and attachments.
package sqlrow

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// Time is stored as unix nanoseconds: an integer compares, sorts and round-trips
// exactly, where text would need a format and a zone.

func NowNanos() int64 { return time.Now().UnixNano() }

// FromNanos is the inverse of UnixNano; zero stays the zero time.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// ToNanos is the inverse of FromNanos.
func ToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Queryer is what reads need: the read pool or a write transaction.
type Queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Scanner is a *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// ConversationColumns are what ScanConversation reads, in its order. owner is
// the instance that serves the conversation when several share a PostgreSQL
// store; SQLite has the column too (always empty) so that one scan serves both.
const ConversationColumns = `id, channel, customer, vendor, state, end_reason, agent, profile,
	session, leave_message_after, reopened_at, context_msg, created_at, updated_at, last_activity, owner`

func ScanConversation(row Scanner) (*connector.Conversation, error) {
	var (
		c                          connector.Conversation
		profile                    string
		session                    []byte
		created, updated, lastSeen int64
		reopened                   int64
	)
	err := row.Scan(&c.ID, &c.Channel, &c.Customer, &c.Vendor, &c.State, &c.EndReason, &c.Agent,
		&profile, &session, &c.LeaveMessageAfter, &reopened, &c.ContextMessage, &created, &updated, &lastSeen, &c.Owner)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(profile), &c.Profile); err != nil {
		return nil, fmt.Errorf("conversation %d: profile: %w", c.ID, err)
	}
	if len(session) > 0 {
		c.Session = json.RawMessage(session)
	}
	c.CreatedAt, c.UpdatedAt, c.LastActivity = FromNanos(created), FromNanos(updated), FromNanos(lastSeen)
	c.ReopenedAt = FromNanos(reopened)
	return &c, nil
}

const MessageColumns = `id, conversation_id, direction, kind, text, format, attachments,
	source_id, notice, agent, remote_id, state, reason, created_at, updated_at`

func ScanMessage(row Scanner) (*connector.Message, error) {
	var (
		m                connector.Message
		attachments      sql.NullString
		created, updated int64
	)
	err := row.Scan(&m.ID, &m.ConversationID, &m.Direction, &m.Kind, &m.Text, &m.Format, &attachments,
		&m.SourceID, &m.Notice, &m.Agent, &m.RemoteID, &m.State, &m.Reason, &created, &updated)
	if err != nil {
		return nil, err
	}
	if attachments.Valid && attachments.String != "" {
		if err := json.Unmarshal([]byte(attachments.String), &m.Attachments); err != nil {
			return nil, fmt.Errorf("message %d: attachments: %w", m.ID, err)
		}
	}
	m.CreatedAt, m.UpdatedAt = FromNanos(created), FromNanos(updated)
	return &m, nil
}

// ScanMessages reads every row of a message query.
func ScanMessages(rows *sql.Rows, err error) ([]*connector.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*connector.Message
	for rows.Next() {
		m, err := ScanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ScanConversations reads every row of a conversation query.
func ScanConversations(rows *sql.Rows, err error) ([]*connector.Conversation, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*connector.Conversation
	for rows.Next() {
		c, err := ScanConversation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AttachmentsJSON encodes attachments, NULL when there are none.
func AttachmentsJSON(as []connector.Attachment) (any, error) {
	if len(as) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(as)
	if err != nil {
		return nil, fmt.Errorf("encode attachments: %w", err)
	}
	return string(b), nil
}

func ProfileJSON(p connector.Profile) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode profile: %w", err)
	}
	return string(b), nil
}

// SessionValue stores an empty session as NULL, so that it reads back as nil.
func SessionValue(s json.RawMessage) any {
	if len(s) == 0 {
		return nil
	}
	return []byte(s)
}

// ScanColumn reads a one-column result (ids, names), closing rows.
func ScanColumn[T any](rows *sql.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Migration is one numbered schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the steps in dir of fsys (NNNN_description.sql) in
// version order. The numbers must run 1, 2, 3... without gaps, so that a
// missing or misnumbered file fails every test rather than a production
// start.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}
