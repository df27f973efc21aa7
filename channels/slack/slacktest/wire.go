package slacktest

import (
	"encoding/base64"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
)

// This file renders the server's state in Slack's JSON shapes, shared by the Web
// API answers and the events.

// workspace names, as auth.test reports them.
const (
	teamName   = "Fake Workspace"
	teamDomain = "fakeworkspace"
	botName    = "fakebot"
)

// botProfile is the bot_profile Slack attaches to the app's messages.
func (s *Server) botProfile() map[string]any {
	return map[string]any{
		"id":      s.BotID,
		"app_id":  s.AppID,
		"name":    botName,
		"deleted": false,
		"team_id": s.TeamID,
		"icons":   map[string]any{"image_36": s.URL + "/avatars/bot_36.png", "image_48": s.URL + "/avatars/bot_48.png", "image_72": s.URL + "/avatars/bot_72.png"},
		"updated": 1700000000,
	}
}

// messageJSON is m as conversations.history and conversations.replies list it.
// Metadata is included only when withMetadata, as include_all_metadata asks.
// s.mu must be held.
func (s *Server) messageJSON(ch *channel, m *stored, withMetadata bool) map[string]any {
	o := map[string]any{
		"type": "message",
		"ts":   m.TS,
		"text": m.Text,
		"team": s.TeamID,
	}
	if m.User != "" {
		o["user"] = m.User
	}
	if m.BotID != "" {
		o["bot_id"] = m.BotID
	}
	if m.AppID != "" {
		o["app_id"] = m.AppID
	}
	if m.BotID == s.BotID {
		o["bot_profile"] = s.botProfile()
	}
	if m.Username != "" {
		o["username"] = m.Username
	}
	switch {
	case m.IconEmoji != "":
		o["icons"] = map[string]any{"emoji": m.IconEmoji}
	case m.IconURL != "":
		o["icons"] = map[string]any{"image_48": m.IconURL}
	}
	if m.Subtype != "" {
		o["subtype"] = m.Subtype
	}
	if m.ThreadTS != "" {
		o["thread_ts"] = m.ThreadTS
		if root := ch.byTS[m.ThreadTS]; root != nil {
			o["parent_user_id"] = root.User
		}
	} else if replies := ch.replies(m.TS); len(replies) > 0 {
		var users []string
		for _, r := range replies {
			if r.User != "" && !slices.Contains(users, r.User) {
				users = append(users, r.User)
			}
		}
		o["thread_ts"] = m.TS
		o["reply_count"] = len(replies)
		o["reply_users_count"] = len(users)
		o["reply_users"] = users
		o["latest_reply"] = replies[len(replies)-1].TS
		o["is_locked"] = false
		o["subscribed"] = false
	}
	if m.blocks != nil {
		o["blocks"] = m.blocks
	}
	if m.attachments != nil {
		o["attachments"] = m.attachments
	}
	if len(m.Files) > 0 {
		var files []map[string]any
		for _, f := range m.Files {
			files = append(files, s.fileJSONLocked(f.ID))
		}
		o["files"] = files
		o["upload"] = m.upload
		o["display_as_bot"] = false
	}
	if len(m.reactions) > 0 {
		var rs []map[string]any
		for _, r := range m.reactions {
			rs = append(rs, map[string]any{"name": r.name, "users": r.users, "count": len(r.users)})
		}
		o["reactions"] = rs
	}
	if m.Edited {
		o["edited"] = map[string]any{"user": m.User, "ts": m.editedTS}
	}
	if withMetadata && m.Metadata != nil {
		o["metadata"] = metadataJSON(m.Metadata)
	}
	return o
}

func metadataJSON(md *Metadata) map[string]any {
	payload := maps.Clone(md.EventPayload)
	if payload == nil {
		payload = map[string]any{}
	}
	return map[string]any{"event_type": md.EventType, "event_payload": payload}
}

// channelJSON is c as conversations.info describes it.
func (s *Server) channelJSON(c Channel) map[string]any {
	o := map[string]any{
		"id":                    c.ID,
		"created":               c.Created.Unix(),
		"is_archived":           false,
		"is_org_shared":         false,
		"is_ext_shared":         c.Shared,
		"is_shared":             c.Shared,
		"is_pending_ext_shared": false,
		"context_team_id":       s.TeamID,
	}
	if c.IM {
		o["is_im"] = true
		o["is_channel"] = false
		o["is_group"] = false
		o["is_mpim"] = false
		o["is_private"] = true
		o["user"] = c.User
		o["is_open"] = true
		o["is_user_deleted"] = false
		return o
	}
	o["name"] = c.Name
	o["name_normalized"] = c.Name
	o["is_channel"] = true
	o["is_group"] = false
	o["is_im"] = false
	o["is_mpim"] = false
	o["is_private"] = false
	o["is_general"] = false
	o["is_member"] = true
	o["creator"] = ""
	o["topic"] = map[string]any{"value": "", "creator": "", "last_set": 0}
	o["purpose"] = map[string]any{"value": "", "creator": "", "last_set": 0}
	return o
}

// userJSON is u as users.info describes it.
func (s *Server) userJSON(u User) map[string]any {
	display := u.DisplayName
	profile := map[string]any{
		"real_name":               u.RealName,
		"real_name_normalized":    u.RealName,
		"display_name":            display,
		"display_name_normalized": display,
		"image_72":                s.URL + "/avatars/" + u.ID + "_72.png",
		"image_48":                s.URL + "/avatars/" + u.ID + "_48.png",
		"team":                    u.TeamID,
	}
	if u.Email != "" {
		profile["email"] = u.Email
	}
	if u.BotID != "" {
		profile["bot_id"] = u.BotID
		if u.ID == s.BotUserID {
			profile["api_app_id"] = s.AppID
		}
	}
	return map[string]any{
		"id":          u.ID,
		"team_id":     u.TeamID,
		"name":        u.Name,
		"deleted":     false,
		"real_name":   u.RealName,
		"tz":          "Europe/London",
		"tz_label":    "Greenwich Mean Time",
		"tz_offset":   0,
		"is_admin":    false,
		"is_owner":    false,
		"is_bot":      u.IsBot,
		"is_app_user": false,
		"updated":     1700000000,
		"profile":     profile,
	}
}

// fileURLs are a shared file's url_private and url_private_download.
func (s *Server) fileURLs(f File) (private, download string) {
	base := s.URL + "/files-pri/" + s.TeamID + "-" + f.ID + "/"
	name := url.PathEscape(f.Name)
	return base + name, base + "download/" + name
}

// fileJSONLocked is the shared file id as message files and events list it.
// s.mu must be held.
func (s *Server) fileJSONLocked(id string) map[string]any {
	e := s.files[id]
	if e == nil {
		return map[string]any{"id": id, "mode": "tombstone"}
	}
	private, download := s.fileURLs(e.File)
	ft := fileType(e.Name)
	return map[string]any{
		"id":                   e.ID,
		"created":              e.created,
		"timestamp":            e.created,
		"name":                 e.Name,
		"title":                e.title,
		"mimetype":             e.Mimetype,
		"filetype":             ft,
		"pretty_type":          strings.ToUpper(ft),
		"user":                 e.user,
		"user_team":            s.TeamID,
		"editable":             false,
		"size":                 len(e.Content),
		"mode":                 "hosted",
		"is_external":          false,
		"external_type":        "",
		"is_public":            false,
		"public_url_shared":    false,
		"display_as_bot":       false,
		"username":             "",
		"url_private":          private,
		"url_private_download": download,
		"permalink":            s.URL + "/files/" + e.user + "/" + e.ID + "/" + url.PathEscape(e.Name),
	}
}

// fileType is Slack's short file type, from the extension.
func fileType(name string) string {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	switch ext {
	case "":
		return "binary"
	case "jpeg":
		return "jpg"
	case "txt":
		return "text"
	case "md":
		return "markdown"
	}
	return ext
}

// Cursors look like Slack's: base64 of "next_ts:<ts>".
// encodeIDCursor and decodeIDCursor page conversations.list: the cursor
// names the next conversation's ID.
func encodeIDCursor(id string) string {
	return base64.StdEncoding.EncodeToString([]byte("next_id:" + id))
}

func decodeIDCursor(c string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), "next_id:")
}

func encodeCursor(ts string) string {
	return base64.StdEncoding.EncodeToString([]byte("next_ts:" + ts))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	ts, found := strings.CutPrefix(string(b), "next_ts:")
	if !found {
		return 0, false
	}
	return parseTS(ts)
}
