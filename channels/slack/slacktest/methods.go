package slacktest

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// authTest answers auth.test for the bot (or the app-level token).
func (s *Server) authTest(params) result {
	return ok(map[string]any{
		"url":                   "https://" + teamDomain + ".slack.com/",
		"team":                  teamName,
		"user":                  botName,
		"team_id":               s.TeamID,
		"user_id":               s.BotUserID,
		"bot_id":                s.BotID,
		"is_enterprise_install": false,
	})
}

// channelLocked finds a conversation by ID; a user ID names the bot's IM with
// that user, as chat.postMessage allows. s.mu must be held.
func (s *Server) channelLocked(id string) *channel {
	if ch := s.channels[id]; ch != nil {
		return ch
	}
	if strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W") {
		for _, cid := range s.chanIDs {
			if ch := s.channels[cid]; ch.info.IM && ch.info.User == id {
				return ch
			}
		}
	}
	return nil
}

// validEventType reports whether Slack would accept t as a metadata event_type:
// 1 to 255 letters, digits, underscores, dots or hyphens.
func validEventType(t string) bool {
	if t == "" || len(t) > 255 {
		return false
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return false
		}
	}
	return true
}

// parseMetadata reads chat.postMessage's metadata argument.
func parseMetadata(raw string) (*Metadata, bool) {
	var v struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil || v.EventType == nil || !validEventType(*v.EventType) {
		return nil, false
	}
	md := &Metadata{EventType: *v.EventType, EventPayload: map[string]any{}}
	if len(v.EventPayload) > 0 && string(v.EventPayload) != "null" {
		if json.Unmarshal(v.EventPayload, &md.EventPayload) != nil {
			return nil, false
		}
	}
	return md, true
}

// jsonArg reads a JSON array argument (blocks, attachments); ok is false when
// it is present but not a JSON array.
func jsonArg(p params, key string) (json.RawMessage, bool) {
	v := strings.TrimSpace(p[key])
	if v == "" {
		return nil, true
	}
	var arr []json.RawMessage
	if json.Unmarshal([]byte(v), &arr) != nil {
		return nil, false
	}
	return json.RawMessage(v), true
}

// chatPostMessage posts as the bot, echoes the message to the app as an event
// (as Slack does) and tells the Notify functions.
func (s *Server) chatPostMessage(p params) result {
	blocks, okBlocks := jsonArg(p, "blocks")
	if !okBlocks {
		return fail("invalid_blocks")
	}
	attachments, okAtt := jsonArg(p, "attachments")
	if !okAtt {
		return fail("invalid_attachments")
	}
	if p["text"] == "" && blocks == nil && attachments == nil {
		return fail("no_text")
	}
	var md *Metadata
	if raw := strings.TrimSpace(p["metadata"]); raw != "" {
		var good bool
		if md, good = parseMetadata(raw); !good {
			return fail("invalid_metadata_format")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelLocked(p["channel"])
	if ch == nil {
		return fail("channel_not_found")
	}
	m := &stored{
		Message: Message{
			Channel:   ch.info.ID,
			User:      s.BotUserID,
			BotID:     s.BotID,
			AppID:     s.AppID,
			Username:  p["username"],
			IconEmoji: p["icon_emoji"],
			IconURL:   p["icon_url"],
			Text:      p["text"],
			Metadata:  md,
		},
		blocks:      blocks,
		attachments: attachments,
	}
	if t := p["thread_ts"]; t != "" {
		root, found := threadRoot(ch, t)
		if !found {
			return fail("invalid_thread_ts")
		}
		m.ThreadTS = root
	}
	m.TS = s.nextTSLocked()
	s.storeLocked(ch, m)
	m.EventID = s.emitLocked(ch, s.messageEvent(ch, m), 1)
	s.notifyLocked(m.snapshot())
	return ok(map[string]any{
		"channel": ch.info.ID,
		"ts":      m.TS,
		"message": s.messageJSON(ch, m, true),
	})
}

// appMessageLocked finds a live message for chat.update or chat.delete and
// checks that the bot may change it. s.mu must be held.
func (s *Server) appMessageLocked(p params, denied string) (*channel, *stored, string) {
	ch := s.channelLocked(p["channel"])
	if ch == nil {
		return nil, nil, "channel_not_found"
	}
	m := ch.byTS[p["ts"]]
	if m == nil || m.Deleted {
		return nil, nil, "message_not_found"
	}
	if m.BotID != s.BotID {
		return nil, nil, denied
	}
	return ch, m, ""
}

// chatUpdate edits one of the bot's messages and announces message_changed.
func (s *Server) chatUpdate(p params) result {
	blocks, okBlocks := jsonArg(p, "blocks")
	if !okBlocks {
		return fail("invalid_blocks")
	}
	attachments, okAtt := jsonArg(p, "attachments")
	if !okAtt {
		return fail("invalid_attachments")
	}
	var md *Metadata
	if raw := strings.TrimSpace(p["metadata"]); raw != "" {
		var good bool
		if md, good = parseMetadata(raw); !good {
			return fail("invalid_metadata_format")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, m, code := s.appMessageLocked(p, "cant_update_message")
	if code != "" {
		return fail(code)
	}
	if _, has := p["text"]; !has && blocks == nil && attachments == nil {
		return fail("no_text")
	}
	old := s.messageJSON(ch, m, true)
	m.Text = p["text"]
	if blocks != nil {
		m.blocks = blocks
	}
	if attachments != nil {
		m.attachments = attachments
	}
	if md != nil {
		m.Metadata = md
	}
	m.Edited = true
	m.editedTS = s.nextTSLocked()
	s.changedLocked()
	s.emitLocked(ch, s.changeEvent(ch, "message_changed", m, old), 1)
	s.notifyLocked(m.snapshot())
	return ok(map[string]any{
		"channel": ch.info.ID,
		"ts":      m.TS,
		"text":    m.Text,
		"message": s.messageJSON(ch, m, true),
	})
}

// chatDelete deletes one of the bot's messages and announces message_deleted.
func (s *Server) chatDelete(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, m, code := s.appMessageLocked(p, "cant_delete_message")
	if code != "" {
		return fail(code)
	}
	old := s.messageJSON(ch, m, true)
	m.Deleted = true
	s.changedLocked()
	s.emitLocked(ch, s.changeEvent(ch, "message_deleted", m, old), 1)
	s.notifyLocked(m.snapshot())
	return ok(map[string]any{"channel": ch.info.ID, "ts": m.TS})
}

// window is the oldest/latest/inclusive filter of the history methods.
type window struct {
	oldest, latest int64
	inclusive      bool
}

func readWindow(p params) (window, bool) {
	w := window{latest: time.Now().Add(time.Hour).UnixMicro(), inclusive: p.bool("inclusive")}
	if v := p["oldest"]; v != "" {
		t, good := parseTS(v)
		if !good {
			return w, false
		}
		w.oldest = t
	}
	if v := p["latest"]; v != "" {
		t, good := parseTS(v)
		if !good {
			return w, false
		}
		w.latest = t
	}
	return w, true
}

func (w window) contains(ts string) bool {
	t, _ := parseTS(ts)
	if w.inclusive {
		return t >= w.oldest && t <= w.latest
	}
	return t > w.oldest && t < w.latest
}

// page cuts list (in answer order) at the cursor and limit; less(a, b) tells
// whether a comes before b in answer order.
func page(list []*stored, cursor string, limit int, before func(a, b int64) bool) ([]*stored, string, bool) {
	if cursor != "" {
		at, good := decodeCursor(cursor)
		if !good {
			return nil, "", false
		}
		i := slices.IndexFunc(list, func(m *stored) bool {
			t, _ := parseTS(m.TS)
			return !before(t, at)
		})
		if i < 0 {
			i = len(list)
		}
		list = list[i:]
	}
	next := ""
	if len(list) > limit {
		next = encodeCursor(list[limit].TS)
		list = list[:limit]
	}
	return list, next, true
}

// conversationsHistory lists top-level messages, newest first.
func (s *Server) conversationsHistory(p params) result {
	limit, good := p.int("limit", 100)
	if !good {
		return fail("invalid_limit")
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 999)
	w, good := readWindow(p)
	if !good {
		return fail("invalid_ts_oldest")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelLocked(p["channel"])
	if ch == nil {
		return fail("channel_not_found")
	}
	var list []*stored
	for i := len(ch.msgs) - 1; i >= 0; i-- {
		m := ch.msgs[i]
		if m.ThreadTS == "" && !m.Deleted && w.contains(m.TS) {
			list = append(list, m)
		}
	}
	list, next, good := page(list, p["cursor"], limit, func(a, b int64) bool { return a > b })
	if !good {
		return fail("invalid_cursor")
	}
	msgs := []map[string]any{}
	for _, m := range list {
		msgs = append(msgs, s.messageJSON(ch, m, p.bool("include_all_metadata")))
	}
	out := map[string]any{
		"messages":              msgs,
		"has_more":              next != "",
		"pin_count":             0,
		"channel_actions_ts":    nil,
		"channel_actions_count": 0,
	}
	if next != "" {
		out["response_metadata"] = map[string]any{"next_cursor": next}
	}
	return ok(out)
}

// conversationsReplies lists a thread: its root first (on every page, not
// counted in limit), then the replies in the window, oldest first. A ts naming
// a reply lists that reply's thread.
func (s *Server) conversationsReplies(p params) result {
	limit, good := p.int("limit", 1000)
	if !good {
		return fail("invalid_limit")
	}
	if limit <= 0 {
		limit = 1000
	}
	w, good := readWindow(p)
	if !good {
		return fail("invalid_ts_oldest")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelLocked(p["channel"])
	if ch == nil {
		return fail("channel_not_found")
	}
	rootTS, found := threadRoot(ch, p["ts"])
	if !found {
		return fail("thread_not_found")
	}
	root := ch.byTS[rootTS]
	var list []*stored
	for _, m := range ch.replies(rootTS) {
		if w.contains(m.TS) {
			list = append(list, m)
		}
	}
	list, next, good := page(list, p["cursor"], limit, func(a, b int64) bool { return a < b })
	if !good {
		return fail("invalid_cursor")
	}
	withMD := p.bool("include_all_metadata")
	msgs := []map[string]any{}
	if root != nil && !root.Deleted {
		msgs = append(msgs, s.messageJSON(ch, root, withMD))
	}
	for _, m := range list {
		msgs = append(msgs, s.messageJSON(ch, m, withMD))
	}
	out := map[string]any{"messages": msgs, "has_more": next != ""}
	if next != "" {
		out["response_metadata"] = map[string]any{"next_cursor": next}
	}
	return ok(out)
}

func (s *Server) conversationsInfo(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[p["channel"]]
	if ch == nil {
		return fail("channel_not_found")
	}
	return ok(map[string]any{"channel": s.channelJSON(ch.info)})
}

// conversationsList lists conversations of the types asked (public_channel
// by default; im, mpim, private_channel), in creation order, limit (default
// 100, at most 1000) a page. The fake has no private channels, group DMs or
// archived channels.
func (s *Server) conversationsList(p params) result {
	limit, good := p.int("limit", 100)
	if !good || limit > 1000 {
		return fail("invalid_limit")
	}
	if limit <= 0 {
		limit = 100
	}
	types := map[string]bool{}
	for _, t := range strings.Split(cmp.Or(p["types"], "public_channel"), ",") {
		switch t = strings.TrimSpace(t); t {
		case "public_channel", "private_channel", "mpim", "im":
			types[t] = true
		default:
			return fail("invalid_types")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if c := p["cursor"]; c != "" {
		id, good := decodeIDCursor(c)
		start = slices.Index(s.chanIDs, id)
		if !good || start < 0 {
			return fail("invalid_cursor")
		}
	}
	list := []map[string]any{}
	next := ""
	for _, id := range s.chanIDs[start:] {
		info := s.channels[id].info
		if !types[map[bool]string{true: "im", false: "public_channel"}[info.IM]] {
			continue
		}
		if len(list) == limit {
			next = encodeIDCursor(id)
			break
		}
		list = append(list, s.channelJSON(info))
	}
	return ok(map[string]any{"channels": list, "response_metadata": map[string]any{"next_cursor": next}})
}

// conversationsOpen opens (or finds) the bot's IM with one user.
func (s *Server) conversationsOpen(p params) result {
	users := strings.Split(p["users"], ",")
	if p["channel"] != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		ch := s.channels[p["channel"]]
		if ch == nil {
			return fail("channel_not_found")
		}
		return ok(map[string]any{"channel": map[string]any{"id": ch.info.ID}, "already_open": true})
	}
	if len(users) != 1 || users[0] == "" {
		return fail("users_list_not_supplied")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.users[users[0]]; !known {
		return fail("user_not_found")
	}
	ch := s.channelLocked(users[0])
	already := ch != nil
	if ch == nil {
		ch = s.addChannelLocked(Channel{IM: true, User: users[0]})
	}
	return ok(map[string]any{"channel": map[string]any{"id": ch.info.ID}, "already_open": already, "no_op": already})
}

func (s *Server) usersInfo(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, found := s.users[p["user"]]
	if !found {
		return fail("user_not_found")
	}
	return ok(map[string]any{"user": s.userJSON(u)})
}

// reactionTarget finds the message of a reactions call. s.mu must be held.
func (s *Server) reactionTarget(p params) (*stored, string, string) {
	name := strings.Trim(p["name"], ":")
	if name == "" {
		return nil, "", "invalid_name"
	}
	if p["channel"] == "" || p["timestamp"] == "" {
		return nil, "", "bad_timestamp"
	}
	ch := s.channelLocked(p["channel"])
	if ch == nil {
		return nil, "", "channel_not_found"
	}
	m := ch.byTS[p["timestamp"]]
	if m == nil || m.Deleted {
		return nil, "", "message_not_found"
	}
	return m, name, ""
}

// reactionsAdd adds the bot's reaction. Slack announces reaction_added only
// to apps subscribed to it; this server sends no event.
func (s *Server) reactionsAdd(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, name, code := s.reactionTarget(p)
	if code != "" {
		return fail(code)
	}
	i := m.reactionIndex(name)
	if i >= 0 && slices.Contains(m.reactions[i].users, s.BotUserID) {
		return fail("already_reacted")
	}
	if i < 0 {
		m.reactions = append(m.reactions, reaction{name: name})
		i = len(m.reactions) - 1
	}
	m.reactions[i].users = append(m.reactions[i].users, s.BotUserID)
	s.changedLocked()
	return ok(nil)
}

func (s *Server) reactionsRemove(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, name, code := s.reactionTarget(p)
	if code != "" {
		return fail(code)
	}
	i := m.reactionIndex(name)
	if i < 0 || !slices.Contains(m.reactions[i].users, s.BotUserID) {
		return fail("no_reaction")
	}
	r := &m.reactions[i]
	r.users = slices.DeleteFunc(r.users, func(u string) bool { return u == s.BotUserID })
	if len(r.users) == 0 {
		m.reactions = slices.Delete(m.reactions, i, i+1)
	}
	s.changedLocked()
	return ok(nil)
}
