package whosontest

import (
	"fmt"
	"time"
)

// Operator scripts the operator who picks up every accepted chat.
type Operator struct {
	Name      string        // display name, e.g. "Alice"
	JoinDelay time.Duration // after accepted (and after QueueFor), before operatorjoined; 0: at once
	Greeting  string        // HTML line said on joining; "" for none

	// Reply answers each visitor line ("" for no answer). It is called
	// outside the server's locks, from the chat's own goroutine, one line at
	// a time; lines sent before the operator joined are answered after.
	Reply func(visitorText string) string

	// Translate, when set, makes every operator line be followed by a linet
	// line carrying Translate(line). It is called outside the server's locks.
	Translate func(string) string

	NotAccepted         bool          // answer Hello with notaccepted
	LeaveMessageEnabled bool          // the connected event's LeaveMessageEnabled
	QueueFor            time.Duration // before joining, send a queue event each second for this long
}

// runOperator plays the operator script of ch until the chat ends or the
// server closes: queue, join, greeting, then an answer to each visitor line.
func (s *Server) runOperator(ch *chat) {
	defer s.wg.Done()
	op := s.cfg.Operator
	if !s.queue(ch, op.QueueFor) || !s.pause(ch, op.JoinDelay) {
		return
	}
	s.mu.Lock()
	if s.liveLocked(ch) {
		s.emitLocked(ch, evOperatorJoined, newOperatorData(op))
	}
	s.mu.Unlock()
	if op.Greeting != "" {
		s.say(ch, op.Greeting)
	}
	for {
		text, ok := s.nextLine(ch)
		if !ok {
			return
		}
		s.answer(ch, text)
	}
}

// queue sends a queuemessage line, then one queue event a second with the
// position counting down to 1, for d (rounded up to whole seconds).
func (s *Server) queue(ch *chat, d time.Duration) bool {
	n := int((d + time.Second - 1) / time.Second)
	for pos := n; pos > 0; pos-- {
		s.mu.Lock()
		if !s.liveLocked(ch) {
			s.mu.Unlock()
			return false
		}
		if (n-pos)%60 == 0 {
			s.lineLocked(ch, classQueue, fmt.Sprintf("Thank you for waiting. You are in position %d of %d.", pos, n))
		}
		s.emitLocked(ch, evQueue, fmt.Sprint(pos))
		s.mu.Unlock()
		if !s.pause(ch, time.Second) {
			return false
		}
	}
	return true
}

// pause waits d, and reports false if the chat ended or the server closed meanwhile.
func (s *Server) pause(ch *chat, d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ch.done:
		case <-s.ctx.Done():
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx.Err() == nil && s.liveLocked(ch)
}

// nextLine waits for the next unanswered visitor line of ch.
func (s *Server) nextLine(ch *chat) (string, bool) {
	for {
		s.mu.Lock()
		if !s.liveLocked(ch) || s.ctx.Err() != nil {
			s.mu.Unlock()
			return "", false
		}
		if len(ch.inbox) > 0 {
			text := ch.inbox[0]
			ch.inbox = ch.inbox[1:]
			s.mu.Unlock()
			return text, true
		}
		s.mu.Unlock()
		select {
		case <-ch.wake:
		case <-ch.done:
		case <-s.ctx.Done():
		}
	}
}

// answer sends the operator's reply to a visitor line, framed by typing and
// typingstop.
func (s *Server) answer(ch *chat, text string) {
	reply := ""
	if s.cfg.Operator.Reply != nil {
		reply = s.cfg.Operator.Reply(text)
	}
	if reply == "" {
		return
	}
	translated := s.translate(reply)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.liveLocked(ch) {
		s.emitLocked(ch, evTyping, "")
		s.sayLocked(ch, reply, translated)
		s.emitLocked(ch, evTypingStop, "")
	}
}

// say sends an operator line if the chat is still going.
func (s *Server) say(ch *chat, html string) {
	translated := s.translate(html)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.liveLocked(ch) {
		s.sayLocked(ch, html, translated)
	}
}

// translate returns the operator's translation of a line, or "".
func (s *Server) translate(html string) string {
	if s.cfg.Operator.Translate == nil {
		return ""
	}
	return s.cfg.Operator.Translate(html)
}

// Say makes the operator say a line in chat uid now: linesays, lineo, and
// linet when Operator.Translate is set. While the chat's socket is down the
// lines are kept for the resuming client.
func (s *Server) Say(uid, html string) error {
	s.mu.Lock()
	_, err := s.liveChatLocked(uid)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	translated := s.translate(html)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.liveChatLocked(uid)
	if err != nil {
		return err
	}
	s.sayLocked(ch, html, translated)
	return nil
}

// Typing sends the operator's typing (on) or typingstop (off) event in chat uid.
func (s *Server) Typing(uid string, on bool) error {
	name := evTypingStop
	if on {
		name = evTyping
	}
	return s.SendEvent(uid, name, "")
}

// Quit makes the operator end chat uid: the quit event, and the chat ends.
func (s *Server) Quit(uid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.liveChatLocked(uid)
	if err != nil {
		return err
	}
	s.emitLocked(ch, evQuit, "")
	s.endLocked(ch)
	return nil
}

// SendEvent sends a raw event in live chat uid, for the cases the script
// does not cover: requestfile (data "pdf, doc"), requestfield (a
// SurveyField), a newline with a "queuemessage" or "lineo final" class
// (a map with Classname and Content), error (a string), and so on. data is
// encoded as JSON.
func (s *Server) SendEvent(uid, name string, data any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.liveChatLocked(uid)
	if err != nil {
		return err
	}
	s.emitLocked(ch, name, data)
	return nil
}

// Event is one event for SendEvents: its name and its Data, encoded as
// JSON.
type Event struct {
	Name string
	Data any
}

// SendEvents sends events in live chat uid in one step: nothing the client
// does meanwhile (a Quit that ends the chat, say) comes between them, so a
// test can follow the events it means with a marker whose arrival proves
// the client has handled them.
func (s *Server) SendEvents(uid string, evs ...Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.liveChatLocked(uid)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		s.emitLocked(ch, ev.Name, ev.Data)
	}
	return nil
}

// LineEvent is a newline event of class classname for SendEvents.
func LineEvent(classname, content string) Event {
	return Event{Name: evNewLine, Data: newLine{Classname: classname, Content: content}}
}

// Line sends a newline event of any Classname in live chat uid, such as
// "lineo final" or "queuemessage".
func (s *Server) Line(uid, classname, content string) error {
	return s.SendEvent(uid, evNewLine, newLine{Classname: classname, Content: content})
}
