package centiontest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// chat is one chat session, keyed on the client's token. Guarded by Server.mu.
type chat struct {
	token     string
	sessionID int64
	secret    string
	reg       Register
	agent     string // "" until an agent joined
	agentID   int

	msgs        []*message // the chat's history, in order
	byID        map[int64]*message
	umids       map[string]*message // client messages by umid
	lines       []Line
	repeats     []Line
	afterEnd    []Line
	attachments []Attachment
	frames      []string

	sockets, reregisters, resumes, refusedResumes int

	ended      bool
	endedBy    string
	endTold    bool   // the end reached a socket
	pendingEnd string // a top-level end event produced while no socket carried the chat
	lost       bool   // RefuseResume: the server forgot the session

	conn *conn // the socket carrying the chat, if any
}

// live reports whether the chat goes on.
func (ch *chat) live() bool { return !ch.ended && !ch.lost }

// resumable reports whether a socket may (re)attach: a live chat, or an
// ended one whose end no socket has seen yet.
func (ch *chat) resumable() bool { return !ch.lost && (!ch.ended || !ch.endTold) }

// message is one message of a chat's history.
type message struct {
	id      int64
	umid    string
	text    string
	sender  string
	agent   string
	aid     int
	sent    time.Time
	visible bool // client lines: their confirmation is due (LateAck hides them until then)
	shown   bool // sent to a socket at least once
	acked   bool // reported by AgentSeen
}

func (ch *chat) byUmid(umid string) *message {
	return ch.umids[umid]
}

// newMessageLocked appends a message to ch's history.
func (s *Server) newMessageLocked(ch *chat, sender, umid, text string) *message {
	s.nextMsgID++
	m := &message{id: s.nextMsgID, umid: umid, text: text, sender: sender, sent: time.Now(),
		visible: sender != SenderClient}
	if sender == SenderAgent {
		m.agent, m.aid = ch.agent, ch.agentID
	}
	ch.msgs = append(ch.msgs, m)
	if ch.byID == nil {
		ch.byID = make(map[int64]*message)
	}
	ch.byID[m.id] = m
	if sender == SenderClient && umid != "" {
		if ch.umids == nil {
			ch.umids = make(map[string]*message)
		}
		ch.umids[umid] = m
	}
	return m
}

func (s *Server) wireOf(ch *chat, m *message) wireMessage {
	return wireMessage{ID: m.id, Umid: m.umid, Text: m.text, FromClient: m.sender == SenderClient,
		Sender: m.sender, Agent: m.agent, AID: m.aid, Client: ch.reg.Name,
		Sent: m.sent.Unix(), SentHuman: human(m.sent)}
}

// sendBatchLocked writes msgs as one batch to ch's socket, if it has one.
// Messages not written stay in the history for the next resume.
func (s *Server) sendBatchLocked(ch *chat, msgs []*message) {
	c := ch.conn
	if c == nil || len(msgs) == 0 {
		return
	}
	if n := s.redeliverN; n > 0 {
		msgs = append(s.lastShown(ch, n, msgs), msgs...)
	}
	wire := make([]wireMessage, len(msgs))
	for i, m := range msgs {
		wire[i] = s.wireOf(ch, m)
		m.shown = true
	}
	if s.cfg.DocumentEvents {
		c.sendLocked(evChatMessage, docBatch{Agent: ch.agent, Chat: wire, Client: ch.reg.Name})
		return
	}
	c.sendLocked(evNewMessage, sdkBatch{SessionID: ch.sessionID, ErrandID: ch.sessionID,
		Session: batchSession{Client: ch.reg.Name, Agent: ch.agent}, Messages: wire})
}

// lastShown returns up to n messages already shown, newest last, not in except.
func (s *Server) lastShown(ch *chat, n int, except []*message) []*message {
	var out []*message
	for i := len(ch.msgs) - 1; i >= 0 && len(out) < n; i-- {
		m := ch.msgs[i]
		if m.shown && m.visible && !containsMsg(except, m) {
			out = append([]*message{m}, out...)
		}
	}
	return out
}

func containsMsg(ms []*message, m *message) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// historyLocked sends every visible message of ch as one batch.
func (s *Server) historyLocked(ch *chat) {
	var msgs []*message
	for _, m := range ch.msgs {
		if m.visible {
			msgs = append(msgs, m)
		}
	}
	saved := s.redeliverN
	s.redeliverN = 0 // the history already carries everything
	s.sendBatchLocked(ch, msgs)
	s.redeliverN = saved
}

// attachLocked makes c carry ch, dropping a socket that carried it before.
func (s *Server) attachLocked(ch *chat, c *conn) {
	if old := ch.conn; old != nil && old != c {
		s.dropConnLocked(old)
	}
	if prev := c.chat; prev != nil && prev != ch && prev.conn == c {
		prev.conn = nil
	}
	if ch.conn != c {
		ch.sockets++
	}
	ch.conn, c.chat = c, ch
}

// endLocked ends ch; the caller has queued what tells the client.
func (s *Server) endLocked(ch *chat, by string) {
	ch.ended, ch.endedBy = true, by
	ch.endTold = ch.conn != nil
}

// handleLocked runs one client frame.
func (s *Server) handleLocked(c *conn, f clientFrame) {
	switch f.Type {
	case frameRegister:
		s.onRegister(c, f)
	case frameResume:
		s.onResume(c)
	case frameMessage:
		s.onMessage(c, f)
	case frameAttachment:
		s.onAttachment(c, f)
	case frameClose:
		s.onClose(c)
	}
	ch := c.chat
	if ch == nil {
		ch = s.live[c.token]
	}
	if ch != nil {
		ch.frames = append(ch.frames, f.Type)
	}
	s.changedLocked()
}

// decodeData decodes a frame's data, closing the socket when it is not the
// expected object.
func (s *Server) decodeData(c *conn, f clientFrame, v any) bool {
	if err := json.Unmarshal(f.Data, v); err != nil {
		s.malformed++
		c.closeLocked(websocket.StatusInvalidFramePayloadData, "malformed data")
		return false
	}
	return true
}

func (s *Server) onRegister(c *conn, f clientFrame) {
	var d registerData
	if !s.decodeData(c, f, &d) {
		return
	}
	if int(d.Area) != s.cfg.Area {
		c.sendLocked(evRegister, errorArg{Error: errInvalidArea})
		return
	}
	if ch := s.live[c.token]; ch != nil && ch.live() {
		// The same token again: an Open retried. The chat goes on.
		ch.reregisters++
		s.attachLocked(ch, c)
		s.answerSessionLocked(ch)
		s.historyLocked(ch)
		return
	}
	ch := &chat{token: c.token, secret: randomHex(16), reg: registerOf(d)}
	s.nextSession++
	ch.sessionID = s.nextSession
	s.chats = append(s.chats, ch)
	s.live[c.token] = ch
	s.attachLocked(ch, c)
	s.answerSessionLocked(ch)
	q := s.newMessageLocked(ch, SenderClient, "", d.Message)
	q.visible = true
	s.sendBatchLocked(ch, []*message{q})
	switch {
	case !s.canChat:
		c.sendLocked(evAgentUnavailable)
		s.endLocked(ch, EndAgentUnavailable)
	case s.cfg.Agent != nil:
		s.joinLocked(ch, s.cfg.Agent.Name)
		if g := s.cfg.Agent.Greeting; g != "" {
			s.sendBatchLocked(ch, []*message{s.newMessageLocked(ch, SenderAgent, "", g)})
		}
	}
}

func registerOf(d registerData) Register {
	return Register{Area: int(d.Area), Name: d.Name, Email: d.Email, Phone: d.Phone,
		Message: d.Message, ExternalData: string(d.ExternalData), BaseURL: d.BaseURL,
		OfflineChat: d.OfflineChat, TrackClientURL: d.TrackClientURL}
}

func (s *Server) answerSessionLocked(ch *chat) {
	ch.conn.sendLocked(evRegister, session{SessionID: ch.sessionID, SessionSecret: ch.secret,
		AreaID: s.cfg.Area, ClientName: ch.reg.Name})
}

func (s *Server) onResume(c *conn) {
	ch := s.live[c.token]
	if ch == nil || !ch.resumable() {
		if ch != nil {
			ch.refusedResumes++
		}
		c.sendLocked(evRegister, errorArg{Error: errNoSession})
		return
	}
	ch.resumes++
	s.attachLocked(ch, c)
	s.answerSessionLocked(ch)
	s.historyLocked(ch)
	if ch.ended {
		if ch.pendingEnd != "" {
			c.sendLocked(ch.pendingEnd)
			ch.pendingEnd = ""
		}
		ch.endTold = true
	}
}

// chatOfLocked is the chat c's frames act on: the one it carries, else its
// token's live chat (which it then carries: the server keys on the token).
func (s *Server) chatOfLocked(c *conn) *chat {
	if ch := c.chat; ch != nil && ch.live() {
		return ch
	}
	if ch := s.live[c.token]; ch != nil && ch.live() {
		s.attachLocked(ch, c)
		return ch
	}
	return nil
}

func (s *Server) onMessage(c *conn, f clientFrame) {
	var d messageData
	if !s.decodeData(c, f, &d) {
		return
	}
	line := Line{Umid: d.ID, Mcount: int64(d.Mcount), Text: d.Message, FrameID: string(f.ID)}
	ch := s.chatOfLocked(c)
	if ch == nil {
		if old := s.live[c.token]; old != nil {
			old.afterEnd = append(old.afterEnd, line)
		}
		c.sendLocked(evChatClosed)
		return
	}
	if d.ID != "" {
		if m := ch.byUmid(d.ID); m != nil {
			line.MessageID = m.id
			ch.repeats = append(ch.repeats, line)
			if m.visible { // else its first confirmation is still on its way
				s.confirmLaterLocked(ch, m, true)
			}
			return
		}
	}
	m := s.newMessageLocked(ch, SenderClient, d.ID, d.Message)
	line.MessageID = m.id
	ch.lines = append(ch.lines, line)
	s.confirmLaterLocked(ch, m, false)
	if a := s.cfg.Agent; a != nil && a.Reply != nil && ch.agent != "" {
		if r := a.Reply(d.Message); r != "" {
			s.sendBatchLocked(ch, []*message{s.newMessageLocked(ch, SenderAgent, "", r)})
		}
	}
}

// confirmLaterLocked confirms m's umid now, after LateAck, or at ReleaseAcks.
func (s *Server) confirmLaterLocked(ch *chat, m *message, repeat bool) {
	if s.holdAcks {
		s.held = append(s.held, heldAck{ch, m, repeat})
		return
	}
	d := s.lateAck
	if d <= 0 || s.closed {
		s.confirmLocked(ch, m, repeat)
		return
	}
	s.wg.Add(1) // the socket's handler holds the group, so this never races Wait
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.confirmLocked(ch, m, repeat)
		s.changedLocked()
	}()
}

// confirmLocked tells the client the server has m: the SDK's way is m
// itself in a batch (fromClient, with its umid); the document's is
// "message sent". Without a socket, m waits in the history.
func (s *Server) confirmLocked(ch *chat, m *message, repeat bool) {
	m.visible = true
	c := ch.conn
	if c == nil {
		return
	}
	if !s.cfg.DocumentEvents {
		s.sendBatchLocked(ch, []*message{m})
		return
	}
	id := strconv.FormatInt(m.id, 10)
	if repeat {
		id = alreadySeen(m.umid)
	}
	m.shown = true
	c.sendLocked(evMessageSent, messageSent{ID: id, Umid: m.umid, Sent: m.sent.Unix(), SentHuman: human(m.sent)})
}

func (s *Server) onAttachment(c *conn, f clientFrame) {
	var d attachmentData
	if !s.decodeData(c, f, &d) {
		return
	}
	ch := s.chatOfLocked(c)
	if ch == nil {
		c.sendLocked(evChatClosed)
		return
	}
	ch.attachments = append(ch.attachments, Attachment{Area: int(d.Area), File: string(d.File),
		SessionSecret: d.SessionSecret})
}

func (s *Server) onClose(c *conn) {
	ch := s.chatOfLocked(c)
	if ch == nil {
		c.sendLocked(evChatClosed)
		return
	}
	s.sendBatchLocked(ch, []*message{s.newMessageLocked(ch, SenderSystem, "", systemEventText(ClientEndsChat))})
	s.endLocked(ch, EndClient)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
