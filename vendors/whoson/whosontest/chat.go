package whosontest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Chat is a snapshot of one chat the server started (a Hello that got
// accepted or notaccepted).
type Chat struct {
	UID         string
	Cookie      string // the visitor tracking cookie of Connect (else of Hello)
	VisitorName string
	Department  string
	Language    string
	Fields      map[string]string // the pre-chat survey fields of Hello, plus DynamicField answers
	Ended       bool              // quit by either side, notaccepted, forgotten or past its resume grace
}

// LeftMessage is one LeaveMessage command, by the vendor document's parameters.
type LeftMessage struct {
	ChatUID    string // "" when no chat was attempted
	SessionID  string
	Domain     string
	VisitorIP  string
	Name       string
	Department string
	Email      string
	Phone      string
	Text       string
}

// Command is one command the server received.
type Command struct {
	Chat       string // UID of the connection's chat after the command ran, or ""
	Name       string // the vendor document's spelling for known commands ("StartTyping"), else as sent
	Parameters []string
}

// chat is the server's state of one chat. Every field is guarded by Server.mu.
type chat struct {
	uid, cookie, name, dept, lang string
	fields                        map[string]string
	sessions                      map[string]bool // every SessionID a client of this chat was given

	conn       *conn     // the socket the chat is attached to; nil while detached
	detachedAt time.Time // when conn became nil
	pending    []event   // events produced while detached, sent on resume

	ended bool

	// The operator script runs on timers and on a goroutine that lives only
	// while visitor lines wait for answers, so an idle chat has neither.
	timer     *time.Timer // the script's next step (queue, join), if one is due
	joined    bool        // the operator has joined and greeted: lines get answered
	answering bool        // a goroutine is answering the inbox
	inbox     []string    // visitor lines the operator has not answered yet
	lines     []string    // every visitor line
}

func newChat(uid string) *chat {
	return &chat{uid: uid, sessions: make(map[string]bool), fields: make(map[string]string)}
}

func (ch *chat) snapshot() Chat {
	return Chat{UID: ch.uid, Cookie: ch.cookie, VisitorName: ch.name, Department: ch.dept,
		Language: ch.lang, Fields: maps.Clone(ch.fields), Ended: ch.ended}
}

// findLocked returns the chat with this UID, or nil. It is a map lookup:
// a benchmark resumes tens of thousands of chats, and a scan of every chat
// per Connect made that quadratic under the server's lock.
func (s *Server) findLocked(uid string) *chat {
	return s.byUID[uid]
}

// addChatLocked records a new chat and indexes it by UID and cookie.
func (s *Server) addChatLocked(ch *chat) {
	s.chats = append(s.chats, ch)
	s.byUID[ch.uid] = ch
	if ch.cookie != "" {
		s.byCookie[ch.cookie] = append(s.byCookie[ch.cookie], ch)
	}
}

// liveLocked reports whether ch is still going, ending it first if it has
// outlived its resume grace while detached.
func (s *Server) liveLocked(ch *chat) bool {
	if !ch.ended && ch.conn == nil && !ch.detachedAt.IsZero() &&
		time.Since(ch.detachedAt) > s.cfg.ResumeGrace {
		s.endLocked(ch)
	}
	return !ch.ended
}

// endLocked ends ch: its operator script stops. Its socket stays open.
func (s *Server) endLocked(ch *chat) {
	if ch.ended {
		return
	}
	ch.ended = true
	s.stopTimerLocked(ch)
	s.changedLocked()
}

// liveChatLocked returns the live chat with this UID, or an error.
func (s *Server) liveChatLocked(uid string) (*chat, error) {
	ch := s.findLocked(uid)
	switch {
	case ch == nil:
		return nil, fmt.Errorf("whosontest: no chat %q", uid)
	case !s.liveLocked(ch):
		return nil, fmt.Errorf("whosontest: chat %q has ended", uid)
	}
	return ch, nil
}

// emitLocked sends an event of ch to its socket, or keeps it for a resuming
// client while ch is detached.
func (s *Server) emitLocked(ch *chat, name string, data any) {
	ev := event{EventName: name, ChatUid: &ch.uid, Data: data}
	if ch.conn == nil {
		ch.pending = append(ch.pending, ev)
		return
	}
	ch.conn.enqueueLocked(ev)
}

// lineLocked sends a newline event of ch.
func (s *Server) lineLocked(ch *chat, class, content string) {
	s.emitLocked(ch, evNewLine, newLine{Classname: class, Content: content})
}

// sayLocked sends an operator line: linesays, lineo, and linet when
// translated is not "".
func (s *Server) sayLocked(ch *chat, html, translated string) {
	s.lineLocked(ch, classSays, s.cfg.Operator.Name+" says:")
	s.lineLocked(ch, classOperator, html)
	if translated != "" {
		s.lineLocked(ch, classTrans, translated)
	}
}

// attachLocked attaches ch to c, detaching it from any other socket (which
// is returned for the caller to close), and flushes what was kept for it.
func (s *Server) attachLocked(ch *chat, c *conn) (old *conn) {
	if ch.conn != nil && ch.conn != c {
		old = ch.conn
		s.dropConnLocked(old)
	}
	ch.conn, ch.detachedAt = c, time.Time{}
	c.chat = ch
	for _, ev := range ch.pending {
		c.enqueueLocked(ev)
	}
	ch.pending = nil
	return old
}

// resumeLocked finds the chat a Connect asks to continue. The UID hint (the
// optional 8th parameter, or a cookie equal to a UID) names a chat exactly
// and may take it over from a socket the server still thinks is open; a
// cookie alone matches the newest detached live chat with that cookie.
// known reports whether the Connect referred to any chat the server has
// seen, resumable or not.
func (s *Server) resumeLocked(cookie, hint string) (ch *chat, known bool) {
	for _, uid := range []string{hint, cookie} {
		if uid == "" {
			continue
		}
		if ch := s.findLocked(uid); ch != nil {
			if !s.liveLocked(ch) {
				return nil, true
			}
			return ch, true
		}
	}
	if cookie == "" {
		return nil, false
	}
	for _, ch := range slices.Backward(s.byCookie[cookie]) {
		known = true
		if s.liveLocked(ch) && ch.conn == nil {
			return ch, true
		}
	}
	return nil, known
}

// Chats returns every chat ever started, in order.
func (s *Server) Chats() []Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Chat, 0, len(s.chats))
	for _, ch := range s.chats {
		s.liveLocked(ch)
		out = append(out, ch.snapshot())
	}
	return out
}

// WaitChats waits until at least n chats have started and returns them all,
// or returns ctx's error naming how many there are.
func (s *Server) WaitChats(ctx context.Context, n int) ([]Chat, error) {
	have := 0
	err := s.wait(ctx, func() bool { have = len(s.chats); return have >= n })
	if err != nil {
		return s.Chats(), fmt.Errorf("whosontest: %d of %d chats: %w", have, n, err)
	}
	return s.Chats(), nil
}

// VisitorLines returns the Message texts the visitor sent in chat uid.
func (s *Server) VisitorLines(uid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.findLocked(uid); ch != nil {
		return slices.Clone(ch.lines)
	}
	return nil
}

// AllVisitorLines returns every visitor Message text across chats, in arrival order.
func (s *Server) AllVisitorLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

// WaitVisitorLines waits until at least n visitor lines have arrived in all
// and returns them all, or returns ctx's error naming how many arrived.
func (s *Server) WaitVisitorLines(ctx context.Context, n int) ([]string, error) {
	have := 0
	err := s.wait(ctx, func() bool { have = len(s.lines); return have >= n })
	if err != nil {
		return s.AllVisitorLines(), fmt.Errorf("whosontest: %d of %d visitor lines: %w", have, n, err)
	}
	return s.AllVisitorLines(), nil
}

// LeftMessages returns the messages left with LeaveMessage, in order.
func (s *Server) LeftMessages() []LeftMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.left)
}

// Commands returns every command received, in order.
func (s *Server) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Command, len(s.commands))
	for i, c := range s.commands {
		c.Parameters = slices.Clone(c.Parameters)
		out[i] = c
	}
	return out
}

// Forget makes the server lose chat uid: it ends without any event, its
// socket (if any) is dropped abruptly, and a client that tries to resume it
// gets a new ChatUid. It does nothing for an unknown UID.
func (s *Server) Forget(uid string) {
	s.mu.Lock()
	ch := s.findLocked(uid)
	if ch == nil {
		s.mu.Unlock()
		return
	}
	s.endLocked(ch)
	c := ch.conn
	if c != nil {
		s.dropConnLocked(c)
	}
	s.mu.Unlock()
	if c != nil {
		c.ws.Close()
	}
}

// Drop drops the socket of chat uid abruptly, without a close frame; the
// chat stays resumable for ResumeGrace.
func (s *Server) Drop(uid string) error {
	s.mu.Lock()
	ch, err := s.liveChatLocked(uid)
	var c *conn
	if err == nil && ch.conn != nil {
		c = ch.conn
		s.dropConnLocked(c)
	}
	s.mu.Unlock()
	if c != nil {
		c.ws.Close()
	}
	return err
}
