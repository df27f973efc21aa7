package cobrowser

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxLine is the longest body one customer stanza carries; a longer line is
// sent in parts, each its own message. ejabberd's default stanza limit is
// 256 KiB; this stays well inside it after escaping.
const maxLine = 32 << 10

// sendRecord is the send progress of one customer message: how many of its
// parts the server confirmed, in which chat session.
type sendRecord struct {
	Chat  string `json:"chat"`
	Parts int    `json:"parts"`
	Sent  int    `json:"sent"`
}

// lineText is what the agent reads for m: its text, then the links of its
// attachments, one a line.
func lineText(m *connector.Message) string {
	parts := []string{}
	if t := strings.TrimSpace(m.Text); t != "" {
		parts = append(parts, m.Text)
	}
	for _, a := range m.Attachments {
		if a.URL != "" {
			parts = append(parts, a.URL)
		}
	}
	return strings.Join(parts, "\n")
}

// lineID is the stanza id of part i of n of the core's message id: the same
// on every attempt, so that a line sent again after a crash carries the id
// it had.
func lineID(id int64, i, n int) string {
	if n == 1 {
		return fmt.Sprintf("connectord-%d", id)
	}
	return fmt.Sprintf("connectord-%d-%d", id, i+1)
}

// send writes the parts of m the server has not confirmed yet, each
// confirmed (a ping answered after it) and recorded in the send-progress
// store before the next, so that a retry, in this process or after a
// restart, does not repeat them.
func (s *session) send(ctx context.Context, m *connector.Message) error {
	parts := splitText(lineText(m), maxLine)
	if len(parts) == 0 {
		return nil
	}
	from, err := s.partsSent(ctx, m.ID, len(parts))
	if err != nil {
		return err
	}
	if from >= len(parts) {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.v.cfg.SendTimeout)
	st, err := s.waitReady(wctx)
	cancel()
	if err != nil {
		return err
	}
	for i := from; i < len(parts); i++ {
		if err := st.write(chatStanza(lineID(m.ID, i, len(parts)), s.state.AgentJID, parts[i])); err != nil {
			return err
		}
		if err := st.confirm(ctx, s.v.cfg.SendTimeout); err != nil {
			return fmt.Errorf("customer line not confirmed: %w", err)
		}
		rec, _ := json.Marshal(sendRecord{Chat: s.state.ChatSession, Parts: len(parts), Sent: i + 1})
		if err := s.v.progress.SaveProgress(ctx, m.ID, rec); err != nil {
			return fmt.Errorf("record send progress: %w", err)
		}
	}
	return nil
}

// partsSent is how many parts of message id were confirmed in this chat.
func (s *session) partsSent(ctx context.Context, id int64, parts int) (int, error) {
	b, err := s.v.progress.LoadProgress(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("load send progress: %w", err)
	}
	if len(b) == 0 {
		return 0, nil
	}
	rec, err := parseSendRecord(b)
	if err != nil {
		s.log.Warn("send progress unreadable; sending the whole line", zap.Error(err))
		return 0, nil
	}
	if rec.Chat != s.state.ChatSession || rec.Parts != parts {
		return 0, nil // another chat (opened again) or another split
	}
	return min(rec.Sent, parts), nil
}

// parseSendRecord reads a stored send-progress record.
func parseSendRecord(b []byte) (sendRecord, error) {
	var rec sendRecord
	if len(b) > maxSession {
		return rec, fmt.Errorf("send progress over %d bytes", maxSession)
	}
	err := json.Unmarshal(b, &rec)
	if rec.Sent < 0 || rec.Parts < 0 {
		return sendRecord{}, fmt.Errorf("send progress with negative counts")
	}
	return rec, err
}

// splitText cuts text into parts of at most n bytes, at rune boundaries,
// preferring a line break or a space in the last quarter of a part.
func splitText(text string, n int) []string {
	var out []string
	for len(text) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		if i := strings.LastIndexAny(text[:cut], "\n "); i > cut*3/4 {
			cut = i + 1
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	if text != "" {
		out = append(out, text)
	}
	return out
}

// htmlTag finds the markup an agent's HTML line carries. A plain line with
// "a < b" has none of it.
var htmlTag = regexp.MustCompile(`(?i)<(?:a\s+href=|/?(?:b|i|u|p|br|em|strong|span|div|ul|ol|li|h[1-6])\s*/?>)|&(?:nbsp|amp|lt|gt|quot);`)

// looksHTML reports whether an agent's body is HTML: CoBrowser's agent
// interface may send markup in the body rather than XHTML-IM.
func looksHTML(s string) bool { return htmlTag.MatchString(s) }

// end ends a live chat from our side: closed and the stream's end, then
// the run goroutine stops. False when there was no live stream to say it
// on (the caller logs in once to say it).
func (s *session) end() bool {
	s.mu.Lock()
	s.ending = true
	st := s.st
	s.mu.Unlock()
	if st != nil {
		s.finishStream(st)
	}
	s.stop()
	return st != nil
}
