package ximatest

import (
	"fmt"
	"slices"
	"time"
)

// EndReason says how a chat ended; "" while it is live.
type EndReason string

// End reasons.
const (
	EndedByCustomer       EndReason = "customer"        // POST /chat/end with the chat's session cookie
	EndedByAgent          EndReason = "agent"           // End: CHAT_ENDED
	EndedByForceClose     EndReason = "force_close"     // ForceClose: FORCE_CLOSE
	EndedByMultimediaDown EndReason = "multimedia_down" // MultimediaDown: MULTIMEDIA_DOWN
	EndedByStillHere      EndReason = "still_here"      // no still-here for StillHereLimit: the chat is gone
	EndedByForget         EndReason = "forgotten"       // Forget: the chat is gone
)

// gone reports whether the reason removes the chat from the server (session
// check 204, REST 404, queue deleted), rather than just ending it.
func (r EndReason) gone() bool { return r == EndedByStillHere || r == EndedByForget }

// ChatInfo is one entry of customChatInfo.
type ChatInfo struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ScreenshotReply is one POST /screenshot/notify.
type ScreenshotReply struct {
	Status string // "ACCEPTED" or "REJECTED"
	UUID   string
}

// Chat is a snapshot of one chat session.
type Chat struct {
	ID             string // the session id: chatSessionId in the REST calls
	InstallationID string
	Email          string
	Name           string
	Skill          string
	CustomChatInfo []ChatInfo
	Created        time.Time
	Agent          string // the agent of CHAT_STARTED or the last CHAT_TRANSFERRED
	Lines          []string
	Typing         []string // the customer's /chat/typing values in order, as sent ("true", "false")
	Focused        int      // POST /chat/focus calls
	StillHere      int      // POST /chat/still-here calls
	Screenshots    []ScreenshotReply
	Cookies        []string  // distinct session cookie values seen on calls for this chat, in order
	Ended          EndReason // the first way it ended; "" while live
	Gone           bool      // the server no longer has it (still-here deadline, Forget)
	QueueURL       string    // serverToClientQueue.url
	ClientQueueURL string    // clientToServerQueue.url (nothing is ever put on it)
}

// chat is the server's state of one chat session; guarded by Server.mu.
type chat struct {
	Chat
	agentImage string
	s2c, c2s   *queue
	timer      *time.Timer // the still-here deadline
	timerGen   int
}

func (c *chat) snapshot() Chat {
	out := c.Chat
	out.CustomChatInfo = slices.Clone(c.CustomChatInfo)
	out.Lines = slices.Clone(c.Lines)
	out.Typing = slices.Clone(c.Typing)
	out.Screenshots = slices.Clone(c.Screenshots)
	out.Cookies = slices.Clone(c.Cookies)
	return out
}

func (c *chat) live() bool { return c.Ended == "" }

func (c *chat) seeCookie(v string) {
	if v != "" && !slices.Contains(c.Cookies, v) {
		c.Cookies = append(c.Cookies, v)
	}
}

func (c *chat) stopTimer() {
	c.timerGen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// armLocked (re)starts the still-here deadline of a live chat.
func (s *Server) armLocked(c *chat) {
	c.stopTimer()
	if s.closed || !c.live() {
		return
	}
	gen := c.timerGen
	c.timer = time.AfterFunc(s.cfg.StillHereLimit, func() { s.expire(c, gen) })
}

// expire kills a chat whose still-here deadline passed, unless a still-here
// came meanwhile (a newer generation) or it ended.
func (s *Server) expire(c *chat, gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || c.timerGen != gen || !c.live() {
		return
	}
	s.endLocked(c, EndedByStillHere)
}

// endLocked ends a live chat (an ended one keeps its first reason). A gone
// reason also removes the chat: its queues are deleted and its browser
// session unbound.
func (s *Server) endLocked(c *chat, why EndReason) {
	if c.live() {
		c.Ended = why
	}
	c.stopTimer()
	if why.gone() {
		c.Gone = true
		c.s2c.gone = true
		c.c2s.gone = true
		for k, v := range s.sessions {
			if v == c {
				delete(s.sessions, k)
			}
		}
	}
	s.notifyLocked()
}

// Chats returns every chat started so far, in start order.
func (s *Server) Chats() []Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Chat, len(s.chats))
	for i, c := range s.chats {
		out[i] = c.snapshot()
	}
	return out
}

// Chat returns one chat by id.
func (s *Server) Chat(id string) (Chat, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[id]
	if !ok {
		return Chat{}, false
	}
	return c.snapshot(), true
}

// Forget makes the server lose a chat, as after a restart of Xima's side:
// the session check answers 204, REST calls naming it 404, its queue no
// longer exists.
func (s *Server) Forget(chatID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.byID[chatID]; ok {
		s.endLocked(c, EndedByForget)
	}
}

// agentImage is a 1x1 PNG, base64: what Xima sends as an agent's picture.
const agentImage = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

// The document's messages, with its key names and order.
type (
	msgType struct {
		Type string `json:"type"`
	}
	msgWait struct {
		Type          string `json:"type"`
		EstimatedWait string `json:"estimatedWait"`
	}
	msgStarted struct {
		Type             string `json:"type"`
		Agent            string `json:"agent"`
		AgentBase64Image string `json:"agentBase64Image"`
	}
	msgTransferred struct {
		Type          string `json:"type"`
		NewAgent      string `json:"newAgent"`
		NewAgentImage string `json:"newAgentImage"`
	}
	msgText struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	msgTyping struct {
		Type     string `json:"type"`
		IsTyping string `json:"isTyping"`
	}
)

// StartChat sends CHAT_STARTED: agent takes the chat.
func (s *Server) StartChat(chatID, agent string) error {
	return s.agentSays(chatID, msgStarted{"CHAT_STARTED", agent, agentImage}, func(c *chat) {
		c.Agent, c.agentImage = agent, agentImage
	})
}

// Say sends CHAT_TEXT: a line from the agent.
func (s *Server) Say(chatID, text string) error {
	return s.agentSays(chatID, msgText{"CHAT_TEXT", text}, nil)
}

// Typing sends AGENT_TYPING with isTyping "true" or "false" (a string, as
// in the document).
func (s *Server) Typing(chatID string, on bool) error {
	return s.agentSays(chatID, msgTyping{"AGENT_TYPING", fmt.Sprint(on)}, nil)
}

// Transfer sends CHAT_TRANSFERRED to a new agent.
func (s *Server) Transfer(chatID, agent string) error {
	return s.agentSays(chatID, msgTransferred{"CHAT_TRANSFERRED", agent, agentImage}, func(c *chat) {
		c.Agent, c.agentImage = agent, agentImage
	})
}

// EstimatedWait sends ESTIMATED_WAIT_TIME with d in English, as
// "about 2 minutes" (see WaitText).
func (s *Server) EstimatedWait(chatID string, d time.Duration) error {
	return s.agentSays(chatID, msgWait{"ESTIMATED_WAIT_TIME", WaitText(d)}, nil)
}

// WaitText is the English description of a wait EstimatedWait sends:
// "less than a minute", "about 1 minute", "about N minutes" (rounded).
func WaitText(d time.Duration) string {
	m := int((d + 30*time.Second) / time.Minute)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case m == 1:
		return "about 1 minute"
	default:
		return fmt.Sprintf("about %d minutes", m)
	}
}

// Screenshot sends TAKE_SCREENSHOT. The widget answers with POST
// /screenshot/notify (recorded in Chat.Screenshots).
func (s *Server) Screenshot(chatID string) error {
	return s.agentSays(chatID, msgType{"TAKE_SCREENSHOT"}, nil)
}

// End sends CHAT_ENDED and ends the chat.
func (s *Server) End(chatID string) error {
	return s.ending(chatID, "CHAT_ENDED", EndedByAgent)
}

// ForceClose sends FORCE_CLOSE (the agent dropped) and ends the chat.
func (s *Server) ForceClose(chatID string) error {
	return s.ending(chatID, "FORCE_CLOSE", EndedByForceClose)
}

// MultimediaDown sends MULTIMEDIA_DOWN (the customer's Chronicall server is
// offline) and ends the chat.
func (s *Server) MultimediaDown(chatID string) error {
	return s.ending(chatID, "MULTIMEDIA_DOWN", EndedByMultimediaDown)
}

func (s *Server) ending(chatID, typ string, why EndReason) error {
	return s.agentSays(chatID, msgType{typ}, func(c *chat) {
		if c.live() {
			s.endLocked(c, why)
		}
	})
}

// Raw puts body as is on the chat's queue: an SNS envelope written by hand,
// an unknown type, junk. It is not wrapped even when SNS wrapping is on.
func (s *Server) Raw(chatID, body string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[chatID]
	if !ok || c.Gone {
		return fmt.Errorf("%w: %s", ErrNoChat, chatID)
	}
	s.putLocked(c.s2c, body)
	return nil
}

// agentSays puts msg (JSON, SNS-wrapped when that is on) on the chat's
// queue, then applies change. An ended chat still gets messages (a line
// racing the customer's end); a gone one does not.
func (s *Server) agentSays(chatID string, msg any, change func(*chat)) error {
	b := marshal(msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[chatID]
	if !ok || c.Gone {
		return fmt.Errorf("%w: %s", ErrNoChat, chatID)
	}
	body := string(b)
	if s.faults.sns {
		body = s.snsEnvelope(c.s2c, body)
	}
	s.putLocked(c.s2c, body)
	if change != nil {
		change(c)
	}
	return nil
}
