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
	// outside the server's locks, one line of a chat at a time and in order
	// (from a goroutine that lives while the chat's lines wait for answers);
	// lines sent before the operator joined are answered after.
	Reply func(visitorText string) string

	// Translate, when set, makes every operator line be followed by a linet
	// line carrying Translate(line). It is called outside the server's locks.
	Translate func(string) string

	NotAccepted         bool          // answer Hello with notaccepted
	LeaveMessageEnabled bool          // the connected event's LeaveMessageEnabled
	QueueFor            time.Duration // before joining, send a queue event each second for this long
}

// startOperatorLocked starts the operator script of ch, which plays until
// the chat ends or the server closes: queue, join, greeting, then an answer
// to each visitor line. Its waits are timers, so a waiting chat has no
// goroutine.
func (s *Server) startOperatorLocked(ch *chat) {
	n := int((s.cfg.Operator.QueueFor + time.Second - 1) / time.Second)
	s.queueLocked(ch, n, n)
}

// queueLocked is the queue's step at position pos of n: a queuemessage line
// every minute from the first, then a queue event with the position, and
// the next step a second later. After position 1 comes the join, after
// JoinDelay.
func (s *Server) queueLocked(ch *chat, pos, n int) {
	if s.closed || !s.liveLocked(ch) {
		return
	}
	if pos <= 0 {
		s.afterLocked(ch, s.cfg.Operator.JoinDelay, func() { s.join(ch) })
		return
	}
	if (n-pos)%60 == 0 {
		s.lineLocked(ch, classQueue, fmt.Sprintf("Thank you for waiting. You are in position %d of %d.", pos, n))
	}
	s.emitLocked(ch, evQueue, fmt.Sprint(pos))
	s.afterLocked(ch, time.Second, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.queueLocked(ch, pos-1, n)
	})
}

// afterLocked runs f after d on a timer of ch, unless the chat ends or the
// server closes first (stopTimerLocked).
func (s *Server) afterLocked(ch *chat, d time.Duration, f func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	ch.timer = time.AfterFunc(d, func() {
		defer s.wg.Done()
		f()
	})
}

// stopTimerLocked cancels ch's pending step, if any.
func (s *Server) stopTimerLocked(ch *chat) {
	if ch.timer != nil && ch.timer.Stop() {
		s.wg.Done() // its f will not run
	}
	ch.timer = nil
}

// join sends operatorjoined and the greeting, then answers the lines that
// came before.
func (s *Server) join(ch *chat) {
	op := s.cfg.Operator
	s.mu.Lock()
	ch.timer = nil
	ok := !s.closed && s.liveLocked(ch)
	if ok {
		s.emitLocked(ch, evOperatorJoined, newOperatorData(op))
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	if op.Greeting != "" {
		s.say(ch, op.Greeting)
	}
	s.mu.Lock()
	ch.joined = true
	start := s.answerLocked(ch)
	s.mu.Unlock()
	if start != nil {
		s.answerAll(ch) // on this goroutine, which is ending anyway
	}
}

// answerLocked marks ch as being answered when it has lines to answer and
// nobody answers them yet, and returns what starts the answering goroutine,
// to call once Server.mu is released; else nil.
func (s *Server) answerLocked(ch *chat) func() {
	if !ch.joined || ch.answering || len(ch.inbox) == 0 || s.closed {
		return nil
	}
	ch.answering = true
	return func() {
		s.wg.Add(1) // the caller's own goroutine is counted, so Close waits
		go func() {
			defer s.wg.Done()
			s.answerAll(ch)
		}()
	}
}

// answerAll answers ch's visitor lines in order until none is left or the
// chat ends.
func (s *Server) answerAll(ch *chat) {
	for {
		text, ok := s.nextLine(ch)
		if !ok {
			return
		}
		s.answer(ch, text)
	}
}

// nextLine takes the next unanswered visitor line of ch, or ends the
// answering when there is none or the chat is over.
func (s *Server) nextLine(ch *chat) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.liveLocked(ch) || len(ch.inbox) == 0 {
		ch.answering = false
		return "", false
	}
	text := ch.inbox[0]
	ch.inbox = ch.inbox[1:]
	return text, true
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
