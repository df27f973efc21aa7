package centiontest

import (
	"context"
	"slices"
)

// Chat is what the server recorded of one chat.
type Chat struct {
	Token         string
	SessionID     int64
	SessionSecret string
	Register      Register // the register frame that started it
	Agent         string   // the agent now assigned ("" before Join)

	Lines       []Line       // chat message frames, the first of each umid, in order
	Repeats     []Line       // chat message frames whose umid the chat already had (not taken again)
	AfterEnd    []Line       // chat message frames after the chat ended (answered "chat closed")
	Attachments []Attachment // add attachment frames
	Frames      []string     // the type of every frame on the chat's sockets, in order

	Sockets        int // sockets that carried the chat
	Reregisters    int // register frames with the token while the chat went on
	Resumes        int // resume frames answered with the session
	RefusedResumes int // resume frames answered "no session"

	Ended   bool
	EndedBy string // EndClient, EndAgentUnavailable, EndQueueFull, or the end event's name
	Lost    bool   // forgotten by RefuseResume
}

// Register is a register frame's data.
type Register struct {
	Area           int
	Name           string
	Email          string
	Phone          string
	Message        string
	ExternalData   string // raw JSON
	BaseURL        string
	OfflineChat    bool
	TrackClientURL bool
}

// Line is one chat message frame.
type Line struct {
	Umid      string // data.id
	Mcount    int64  // data.mcount
	Text      string // data.message
	FrameID   string // the frame's id, raw JSON
	MessageID int64  // the server's message id (of the first line with the umid for a repeat; 0 after the end)
	Confirmed bool   // the server has confirmed the umid (sent, or due while no socket was there)
}

// Attachment is one add attachment frame.
type Attachment struct {
	Area          int
	File          string // data.file, raw JSON (the upload's answer)
	SessionSecret string
}

func (ch *chat) snapshot() Chat {
	return Chat{Token: ch.token, SessionID: ch.sessionID, SessionSecret: ch.secret,
		Register: ch.reg, Agent: ch.agent,
		Lines: ch.confirmed(ch.lines), Repeats: ch.confirmed(ch.repeats),
		AfterEnd: slices.Clone(ch.afterEnd), Attachments: slices.Clone(ch.attachments),
		Frames: slices.Clone(ch.frames), Sockets: ch.sockets, Reregisters: ch.reregisters,
		Resumes: ch.resumes, RefusedResumes: ch.refusedResumes,
		Ended: ch.ended, EndedBy: ch.endedBy, Lost: ch.lost}
}

// confirmed copies lines with their Confirmed flag as it is now.
func (ch *chat) confirmed(lines []Line) []Line {
	out := slices.Clone(lines)
	for i := range out {
		if m := ch.byID[out[i].MessageID]; m != nil {
			out[i].Confirmed = m.visible
		}
	}
	return out
}

// Chats returns every chat, in the order they started.
func (s *Server) Chats() []Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chatsLocked()
}

func (s *Server) chatsLocked() []Chat {
	out := make([]Chat, len(s.chats))
	for i, ch := range s.chats {
		out[i] = ch.snapshot()
	}
	return out
}

// Chat returns token's newest chat.
func (s *Server) Chat(token string) (Chat, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.live[token]
	if ch == nil {
		return Chat{}, false
	}
	return ch.snapshot(), true
}

// Wait returns once cond, given every chat, reports true, or when ctx ends.
// cond runs under the server's lock: it must not call the Server.
func (s *Server) Wait(ctx context.Context, cond func([]Chat) bool) error {
	return s.wait(ctx, func() bool { return cond(s.chatsLocked()) })
}

// WaitLines waits until token's newest chat has at least n lines and
// returns them.
func (s *Server) WaitLines(ctx context.Context, token string, n int) ([]Line, error) {
	var lines []Line
	err := s.wait(ctx, func() bool {
		if ch := s.live[token]; ch != nil && len(ch.lines) >= n {
			lines = ch.confirmed(ch.lines)
			return true
		}
		return false
	})
	return lines, err
}
