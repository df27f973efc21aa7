package slack

import (
	"encoding/json"
	"fmt"
	"strings"
)

// callback is an Events API request body (also a Socket Mode envelope's
// payload): an event_callback, or the url_verification handshake.
type callback struct {
	Type      string          `json:"type"`
	Challenge string          `json:"challenge"`
	TeamID    string          `json:"team_id"`
	APIAppID  string          `json:"api_app_id"`
	EventID   string          `json:"event_id"`
	Event     json.RawMessage `json:"event"`
}

// message is the part of a message event (or of a message read back from
// history) that the channel uses.
type message struct {
	Type        string      `json:"type"`
	Subtype     string      `json:"subtype"`
	Channel     string      `json:"channel"`
	ChannelType string      `json:"channel_type"`
	User        string      `json:"user"`
	BotID       string      `json:"bot_id"`
	AppID       string      `json:"app_id"`
	Text        string      `json:"text"`
	TS          string      `json:"ts"`
	ThreadTS    string      `json:"thread_ts"`
	Files       []slackFile `json:"files"`
	// UserProfile comes with messages from people of another workspace in a
	// Slack Connect channel, whom users.info may not show.
	UserProfile *userProfile `json:"user_profile"`
}

type userProfile struct {
	DisplayName string `json:"display_name"`
	RealName    string `json:"real_name"`
	Name        string `json:"name"`
}

// slackFile is a file shared in a message.
type slackFile struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Title              string `json:"title"`
	Mimetype           string `json:"mimetype"`
	Size               int64  `json:"size"`
	URLPrivate         string `json:"url_private"`
	URLPrivateDownload string `json:"url_private_download"`
	// IsExternal marks a remote file (Google Drive, a remote file added by
	// an app): its url_private is the outside URL, not Slack's.
	IsExternal bool `json:"is_external"`
}

// envelope is a Socket Mode frame from Slack.
type envelope struct {
	Type         string          `json:"type"` // hello, events_api, disconnect, ...
	EnvelopeID   string          `json:"envelope_id"`
	Payload      json.RawMessage `json:"payload"`
	RetryAttempt int             `json:"retry_attempt"`
	RetryReason  string          `json:"retry_reason"`
	Reason       string          `json:"reason"` // disconnect: refresh_requested, warning, link_disabled
}

// ack acknowledges an envelope.
type ack struct {
	EnvelopeID string `json:"envelope_id"`
}

// address is where a conversation lives: a thread in a channel (Root set) or
// a DM (Root empty). As a customer address it is "C0123/1763900000.000100"
// or "D0123"; Slack ids contain no "/".
type address struct {
	Channel string
	Root    string
}

func (a address) String() string {
	if a.Root == "" {
		return a.Channel
	}
	return a.Channel + "/" + a.Root
}

func parseAddress(s string) (address, error) {
	ch, root, slash := strings.Cut(s, "/")
	if !(channelID(ch) || userID(ch) && root == "") || strings.Contains(root, "/") || slash && root == "" {
		return address{}, fmt.Errorf("not a Slack address: %q", s)
	}
	return address{Channel: ch, Root: root}, nil
}

// userID reports whether s looks like a user id (U or W, then upper-case
// letters and digits). A user id as an address means a DM with that user: a
// chat server's campaign message names its customer so.
func userID(s string) bool {
	return len(s) >= 3 && (s[0] == 'U' || s[0] == 'W') && channelID("C"+s[1:])
}

// isDM reports whether a message was written in a direct message to the app.
func (m *message) isDM() bool {
	return m.ChannelType == "im" || strings.HasPrefix(m.Channel, "D")
}

// address is the conversation a message belongs to: its DM, or the thread
// it started or replies in.
func (m *message) address() address {
	if m.isDM() {
		return address{Channel: m.Channel}
	}
	if m.ThreadTS != "" {
		return address{Channel: m.Channel, Root: m.ThreadTS}
	}
	return address{Channel: m.Channel, Root: m.TS}
}

// sourceID is the message's de-duplication key: a ts is unique within its
// channel, and the same message read back by catch-up has the same one.
func sourceID(channel, ts string) string { return channel + "/" + ts }
