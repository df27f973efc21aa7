package whosontest

import (
	"encoding/json"
	"strings"
)

// Flood is a fault: a server that answers Connect with a stream of events
// nobody asked for before the connected event, as a broken or hostile
// server might. Each is a typing event whose Data is a string of Size bytes.
type Flood struct {
	// Events is how many events come before connected; negative: no end,
	// until the socket fails or the server closes (connected never comes).
	Events int
	// Size is the length of each event's Data in bytes; 0 means 16.
	Size int
}

// SetFlood makes every later Connect that passes the credential check be
// answered with f's events first. The zero Flood turns the fault off.
func (s *Server) SetFlood(f Flood) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flood = f
}

// Flooded returns how many flood events the server has written so far (into
// the socket: what the client had not read yet is still counted).
func (s *Server) Flooded() int64 { return s.flooded.Load() }

// RefuseReattach is a fault (on while refuse is true): a server that does
// not re-attach a chat to a new socket, which WhosOn's document allows. A
// Connect that refers to a chat (by cookie or ChatUid) gets a NEW ChatUid
// instead, as for a chat that cannot continue, and the chat it referred to
// ends if no socket carries it (its visitor came back without it); one
// still attached to another socket stays there.
func (s *Server) RefuseReattach(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noReattach = refuse
}

// answerConnectLocked queues the connected event ev on c, after a flood when
// one is set.
func (s *Server) answerConnectLocked(c *conn, ev event) {
	f := s.flood
	if f.Events == 0 || s.closed {
		c.enqueueLocked(ev)
		return
	}
	s.wg.Add(1)
	go s.runFlood(c, f, ev)
}

// runFlood writes f's events straight to c's socket (the writer has nothing
// queued before connected), then queues then.
func (s *Server) runFlood(c *conn, f Flood, then event) {
	defer s.wg.Done()
	size := f.Size
	if size <= 0 {
		size = 16
	}
	frame, err := json.Marshal(event{EventName: evTyping, Data: strings.Repeat("x", size)})
	if err != nil {
		return
	}
	for i := 0; f.Events < 0 || i < f.Events; i++ {
		if err := c.writeFrame(frame); err != nil {
			return
		}
		s.flooded.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.enqueueLocked(then)
}
