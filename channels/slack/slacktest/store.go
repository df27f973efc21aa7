package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// User is a member of the workspace, as users.info reports it.
type User struct {
	ID, TeamID, Name, RealName, DisplayName, Email string
	IsBot                                          bool
	BotID                                          string
}

// Channel is a conversation. IM conversations are direct messages between the bot
// and User. Shared marks a Slack Connect channel (is_ext_shared).
type Channel struct {
	ID, Name string
	IM       bool
	User     string // the IM's human
	Shared   bool   // Slack Connect: is_ext_shared
	// Created is when the conversation was created (its "created"); zero
	// means when it was added to the server.
	Created time.Time
}

// File is a file attached to a message. NewServer fills ID ("F" + 10 characters)
// when it is empty; Mimetype, when empty, is guessed from Name.
type File struct {
	ID, Name, Mimetype string
	Content            []byte
}

// Metadata is a message's metadata, as chat.postMessage takes it.
type Metadata struct {
	EventType    string
	EventPayload map[string]any
}

// Message is a stored message as the server knows it. Top-level messages have an
// empty ThreadTS (even when they have replies); replies carry their root's ts.
type Message struct {
	Channel, TS, ThreadTS, User, BotID, AppID, Username, IconEmoji, IconURL, Text, Subtype string

	Metadata  *Metadata
	Files     []File
	Reactions []string // reaction names currently on it (any user), in the order first added
	Edited    bool
	Deleted   bool
	EventID   string // the event_id of the event announcing it ("" for silent posts)
}

// Post is a user (or another app's bot) writing in Slack.
type Post struct {
	Channel, User, Text, ThreadTS string
	Files                         []File
	// BotID, when set, makes this a message from another bot: its event carries
	// bot_id, and subtype "bot_message" when User is empty.
	BotID string
	// Deliveries is how many times the event is delivered on purpose (0 means 1).
	// Every delivery after the first is a retry: X-Slack-Retry-Num over HTTP,
	// retry_attempt in Socket Mode. Failed deliveries are retried as usual, up to
	// three retries in all.
	Deliveries int
	// Silent stores the message in history only and delivers no event, as when
	// Slack gave up delivering while the app was down.
	Silent bool
}

// stored is a message with the parts that only the wire formats need.
type stored struct {
	Message
	blocks      json.RawMessage
	attachments json.RawMessage
	reactions   []reaction
	editedTS    string
	upload      bool // files shared by the app (files.completeUploadExternal)
}

type reaction struct {
	name  string
	users []string
}

// channel is a conversation and its messages, replies included, in ts order.
type channel struct {
	info Channel
	msgs []*stored
	byTS map[string]*stored
}

// snapshot is a copy of m that the caller may keep and change.
func (m *stored) snapshot() Message {
	out := m.Message
	out.Reactions = nil
	for _, r := range m.reactions {
		out.Reactions = append(out.Reactions, r.name)
	}
	if m.Metadata != nil {
		md := *m.Metadata
		md.EventPayload = maps.Clone(md.EventPayload)
		out.Metadata = &md
	}
	out.Files = nil
	for _, f := range m.Files {
		f.Content = bytes.Clone(f.Content)
		out.Files = append(out.Files, f)
	}
	return out
}

// replies are the live replies of the thread rooted at root, oldest first.
func (c *channel) replies(rootTS string) []*stored {
	var out []*stored
	for _, m := range c.msgs {
		if m.ThreadTS == rootTS && m.TS != rootTS && !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}

// AddUser adds or replaces a workspace member. TeamID defaults to the server's.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.TeamID == "" {
		u.TeamID = s.TeamID
	}
	s.users[u.ID] = u
}

// AddChannel adds a conversation, or replaces its description and keeps its
// messages. An empty ID gets a generated one ("C..." or, for an IM, "D...").
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addChannelLocked(c)
}

func (s *Server) addChannelLocked(c Channel) *channel {
	if c.ID == "" {
		prefix := "C"
		if c.IM {
			prefix = "D"
		}
		c.ID = prefix + randomString(10, upperAlnum)
	}
	if ch := s.channels[c.ID]; ch != nil {
		if c.Created.IsZero() {
			c.Created = ch.info.Created
		}
		ch.info = c
		return ch
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	ch := &channel{info: c, byTS: map[string]*stored{}}
	s.channels[c.ID] = ch
	s.chanIDs = append(s.chanIDs, c.ID)
	return ch
}

// nextTSLocked hands out a message ts from the wall clock, strictly increasing
// across the server, so that ts order is storage order. s.mu must be held.
func (s *Server) nextTSLocked() string {
	now := time.Now().UnixMicro()
	if now <= s.lastTS {
		now = s.lastTS + 1
	}
	s.lastTS = now
	return formatTS(now)
}

func formatTS(micros int64) string {
	return fmt.Sprintf("%d.%06d", micros/1e6, micros%1e6)
}

// parseTS reads a Slack ts ("1763900000.000100", also "1763900000" or
// "1763900000.5") as microseconds.
func parseTS(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(ts, ".")
	if sec == "" || len(frac) > 6 {
		return 0, false
	}
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil || f < 0 {
			return 0, false
		}
	}
	return n*1e6 + f, true
}

// storeLocked stores m (TS already set) in ch. s.mu must be held.
func (s *Server) storeLocked(ch *channel, m *stored) {
	ch.msgs = append(ch.msgs, m)
	ch.byTS[m.TS] = m
	s.changedLocked()
}

// threadRoot resolves a thread_ts to the root of its thread: a reply's ts names
// its root's thread, as in Slack. It reports false when no live message has it.
func threadRoot(ch *channel, threadTS string) (string, bool) {
	m := ch.byTS[threadTS]
	if m == nil || m.Deleted {
		return "", false
	}
	if m.ThreadTS != "" {
		return m.ThreadTS, true
	}
	return m.TS, true
}

// Post stores a message written by a user (or by another bot, when p.BotID is
// set) and, unless p.Silent, delivers its message event asynchronously to the
// app, after the events of earlier messages in the same channel. An unknown
// channel is created as a public channel. A ThreadTS naming a reply is resolved
// to its thread's root; one naming no message is kept as it is. Files get IDs
// and are served at their url_private addresses; the message's subtype is then
// "file_share". Post returns the stored message, with its TS and EventID.
func (s *Server) Post(p Post) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[p.Channel]
	if ch == nil {
		ch = s.addChannelLocked(Channel{ID: p.Channel, Name: strings.ToLower(p.Channel)})
	}
	m := &stored{Message: Message{
		Channel: ch.info.ID,
		TS:      s.nextTSLocked(),
		User:    p.User,
		BotID:   p.BotID,
		Text:    p.Text,
	}}
	if p.ThreadTS != "" {
		if root, ok := threadRoot(ch, p.ThreadTS); ok {
			m.ThreadTS = root
		} else {
			m.ThreadTS = p.ThreadTS
		}
	}
	if p.BotID != "" && p.User == "" {
		m.Subtype = "bot_message"
	}
	for _, f := range p.Files {
		m.Files = append(m.Files, s.addFileLocked(f, p.User, ""))
	}
	if len(m.Files) > 0 {
		m.Subtype = "file_share"
	}
	s.storeLocked(ch, m)
	if !p.Silent {
		m.EventID = s.emitLocked(ch, s.messageEvent(ch, m), max(p.Deliveries, 1))
	}
	return m.snapshot()
}

// History returns the live top-level messages of channel, oldest first.
func (s *Server) History(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channel]
	if ch == nil {
		return nil
	}
	var out []Message
	for _, m := range ch.msgs {
		if m.ThreadTS == "" && !m.Deleted {
			out = append(out, m.snapshot())
		}
	}
	return out
}

// Replies returns the live replies of the thread rooted at threadTS (without the
// root), oldest first.
func (s *Server) Replies(channel, threadTS string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channel]
	if ch == nil {
		return nil
	}
	var out []Message
	for _, m := range ch.replies(threadTS) {
		out = append(out, m.snapshot())
	}
	return out
}

// Message returns the message of channel with ts, deleted ones included.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channel]
	if ch == nil {
		return Message{}, false
	}
	m := ch.byTS[ts]
	if m == nil {
		return Message{}, false
	}
	return m.snapshot(), true
}

// channelTypeOf is the channel_type of events: "im" or "channel".
func channelTypeOf(c Channel) string {
	if c.IM {
		return "im"
	}
	return "channel"
}

// reactionIndex is the index of reaction name on m, -1 when absent.
func (m *stored) reactionIndex(name string) int {
	return slices.IndexFunc(m.reactions, func(r reaction) bool { return r.name == name })
}
