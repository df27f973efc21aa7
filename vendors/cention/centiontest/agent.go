package centiontest

import (
	"errors"
	"fmt"
)

// Errors of the scripted agent side.
var (
	ErrNoChat = errors.New("centiontest: no chat for this token")
	ErrEnded  = errors.New("centiontest: the chat has ended")
)

// Reasons a chat ended (Chat.EndedBy).
const (
	EndClient           = "client"            // close chat frame
	EndAgentUnavailable = "agent unavailable" // AgentUnavailable, or register while SetCanChat(false)
	EndQueueFull        = "queue full"
	// An in-text end is recorded by its event (OwnerEndsChat, ChatExpired,
	// ...); a top-level end event by its name ("finish chat session", ...).
)

// agentLocked returns token's newest chat if it goes on.
func (s *Server) agentLocked(token string) (*chat, error) {
	ch := s.live[token]
	switch {
	case ch == nil:
		return nil, fmt.Errorf("%w: %q", ErrNoChat, token)
	case !ch.live():
		return nil, fmt.Errorf("%w: %q", ErrEnded, token)
	}
	return ch, nil
}

// act runs f on token's live chat under the lock and wakes waiters.
func (s *Server) act(token string, f func(*chat)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.agentLocked(token)
	if err != nil {
		return err
	}
	f(ch)
	s.changedLocked()
	return nil
}

// joinLocked assigns agent to ch and tells the client: a SYSTEM message
// "Agent(s) added: <name>" in a batch whose session.agent (document: the
// batch's agent) now names the agent.
func (s *Server) joinLocked(ch *chat, agent string) {
	ch.agent = agent
	ch.agentID++
	s.sendBatchLocked(ch, []*message{s.newMessageLocked(ch, SenderSystem, "", "Agent(s) added: "+agent)})
}

// Join makes agent the chat's agent (a transfer when one was there).
func (s *Server) Join(token, agent string) error {
	return s.act(token, func(ch *chat) { s.joinLocked(ch, agent) })
}

// Say sends one agent message (plain text or HTML, sent as is). Without a
// socket it waits in the history for the next resume.
func (s *Server) Say(token, text string) error {
	return s.SayBatch(token, text)
}

// SayBatch sends several agent messages in one batch.
func (s *Server) SayBatch(token string, texts ...string) error {
	return s.act(token, func(ch *chat) {
		msgs := make([]*message, len(texts))
		for i, t := range texts {
			msgs[i] = s.newMessageLocked(ch, SenderAgent, "", t)
		}
		s.sendBatchLocked(ch, msgs)
	})
}

// File sends an agent file notice: a message whose text is FilePrefix and
// {"event":"FILE_UPLOAD","fileDownload":url,"fileName":name,"sizeHuman":""}.
func (s *Server) File(token, name, url string) error {
	return s.SayBatch(token, fileNoticeText(name, url, ""))
}

// Redeliver sends again, in one batch, every message the client was
// already sent: the "may contain messages already received" of the document.
func (s *Server) Redeliver(token string) error {
	return s.act(token, func(ch *chat) {
		var msgs []*message
		for _, m := range ch.msgs {
			if m.shown && m.visible {
				msgs = append(msgs, m)
			}
		}
		saved := s.redeliverN
		s.redeliverN = 0
		s.sendBatchLocked(ch, msgs)
		s.redeliverN = saved
	})
}

// Typing sends "agent preview" with the length of what the agent types.
func (s *Server) Typing(token string, messageLen int) error {
	return s.act(token, func(ch *chat) {
		if ch.conn != nil {
			ch.conn.sendLocked(evAgentPreview, agentPreview{MessageLen: messageLen})
		}
	})
}

// Queue sends "queue" with the client's position.
func (s *Server) Queue(token string, position int) error {
	return s.act(token, func(ch *chat) {
		if ch.conn != nil {
			ch.conn.sendLocked(evQueue, position)
		}
	})
}

// AgentSeen sends "message acked" with the ids of the client's messages the
// agent has not acked yet (none: no event).
func (s *Server) AgentSeen(token string) error {
	return s.act(token, func(ch *chat) {
		var ids []int64
		for _, m := range ch.msgs {
			if m.sender == SenderClient && m.visible && !m.acked {
				m.acked = true
				ids = append(ids, m.id)
			}
		}
		if len(ids) > 0 && ch.conn != nil {
			ch.conn.sendLocked(evMessageAcked, messageAcked{IDs: ids})
		}
	})
}

// EndInText ends the chat with an in-text system event: a SYSTEM message
// whose text is {"event":event} (OwnerEndsChat, ChatExpired, ...).
func (s *Server) EndInText(token, event string) error {
	return s.act(token, func(ch *chat) {
		s.sendBatchLocked(ch, []*message{s.newMessageLocked(ch, SenderSystem, "", systemEventText(event))})
		s.endLocked(ch, event)
	})
}

// EndByEvent ends the chat with the document's "finish chat session" event.
func (s *Server) EndByEvent(token string) error {
	return s.EndWithEvent(token, evFinishSession)
}

// EndWithEvent ends the chat with a top-level event of that name and no
// args: "finish chat session", "chat closed", or the SDK's "OWNER_ENDS_CHAT".
// Without a socket, the event is kept for the next resume.
func (s *Server) EndWithEvent(token, event string) error {
	return s.act(token, func(ch *chat) { s.endEventLocked(ch, event, event) })
}

// AgentUnavailable sends "agent unavailable"; the chat ends.
func (s *Server) AgentUnavailable(token string) error {
	return s.act(token, func(ch *chat) { s.endEventLocked(ch, evAgentUnavailable, EndAgentUnavailable) })
}

// QueueFull sends "queue full"; the chat ends.
func (s *Server) QueueFull(token string) error {
	return s.act(token, func(ch *chat) { s.endEventLocked(ch, evQueueFull, EndQueueFull) })
}

func (s *Server) endEventLocked(ch *chat, event, reason string) {
	if ch.conn != nil {
		ch.conn.sendLocked(event)
	} else {
		ch.pendingEnd = event
	}
	s.endLocked(ch, reason)
}
