package whosontest

import (
	"bytes"
	"encoding/json"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// writeTimeout bounds one frame write.
const writeTimeout = 10 * time.Second

// closeWait bounds how long a socket the server closes with a status waits
// for the client's close frame before it is dropped.
const closeWait = 5 * time.Second

// conn is one client WebSocket. An idle one costs one goroutine, its reader,
// and no buffers but gorilla's small read buffer: events are written by a
// writer goroutine that runs only while some are queued. Fields after wmu
// are guarded by Server.mu.
type conn struct {
	s   *Server
	ws  *websocket.Conn
	ip  string     // client IP: first X-Forwarded-For address, else the peer's
	wmu sync.Mutex // serializes data frames: the writer's and a flood's

	sessionID string // "" until a valid Connect
	cookie    string // Connect's visitor tracking cookie
	visitorIP string // Connect's visitor IP, else ip
	uid       string // the ChatUid announced by connected for the next Hello, if any
	chat      *chat  // the chat this socket carries, if any

	out     []event      // events not yet written
	closing *closeStatus // set: write out, then close with this status; enqueue nothing more
	dead    bool         // dropped by the server; enqueue nothing more
	writing bool         // a writer goroutine is running (or the socket failed writing)
}

// closeStatus is the status of a close frame the server sends.
type closeStatus struct {
	code   int
	reason string
}

func newConn(s *Server, ws *websocket.Conn, ip string) *conn {
	return &conn{s: s, ws: ws, ip: ip}
}

// kickLocked starts the writer if something is left to write and none runs.
func (c *conn) kickLocked() {
	if c.writing || c.dead || (len(c.out) == 0 && c.closing == nil) {
		return
	}
	c.writing = true
	c.s.wg.Add(1)
	go c.writeOut()
}

// enqueueLocked queues ev for the writer.
func (c *conn) enqueueLocked(ev event) {
	if c.dead || c.closing != nil {
		return
	}
	c.out = append(c.out, ev)
	c.kickLocked()
}

// eventLocked queues an event carrying the socket's ChatUid (null without a chat).
func (c *conn) eventLocked(name string, data any) {
	var uid *string
	if c.chat != nil {
		uid = &c.chat.uid
	}
	c.enqueueLocked(event{EventName: name, ChatUid: uid, Data: data})
}

// failLocked sends an error event and closes the socket once it is written.
func (c *conn) failLocked(msg string) {
	c.eventLocked(evError, msg)
	c.closing = &closeStatus{code: websocket.ClosePolicyViolation, reason: "error"}
	c.kickLocked()
}

// serve reads the socket until it ends, then drops it.
func (c *conn) serve() {
	defer c.s.wg.Done()
	c.readLoop()
	c.s.mu.Lock()
	if !c.dead {
		c.s.dropConnLocked(c)
	}
	c.s.mu.Unlock()
	c.ws.Close()
}

// readLoop handles frames until the socket fails. Reading also answers
// pings (gorilla's default handler) and close frames. Each frame is read
// into a pooled buffer, so an idle socket holds none.
func (c *conn) readLoop() {
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		b := c.s.bufs.Get().(*bytes.Buffer)
		b.Reset()
		_, err = b.ReadFrom(r)
		if err == nil {
			p := b.Bytes()
			if typ != websocket.TextMessage {
				p = nil // not JSON text: invalid data
			}
			c.handle(p)
		}
		if b.Cap() <= maxFrame {
			c.s.bufs.Put(b)
		}
		if err != nil {
			return
		}
	}
}

// writeOut writes queued events in order until none is left, the socket
// fails or is dropped, or it has written everything before a close; then
// it ends, so that an idle socket has no writer.
func (c *conn) writeOut() {
	defer c.s.wg.Done()
	for {
		c.s.mu.Lock()
		evs, closing, dead := c.out, c.closing, c.dead
		c.out = nil
		if dead || (len(evs) == 0 && closing == nil) {
			c.writing = false
			c.s.mu.Unlock()
			return
		}
		c.s.mu.Unlock()
		for _, ev := range evs {
			if err := c.write(ev); err != nil {
				c.ws.Close() // writing stays set: nothing more is written
				return
			}
		}
		if closing != nil && len(evs) == 0 {
			c.close(*closing)
			return
		}
	}
}

// close sends a close frame and gives the client closeWait to answer it;
// the reader then meets the end of the socket.
func (c *conn) close(st closeStatus) {
	msg := websocket.FormatCloseMessage(st.code, st.reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeTimeout)); err != nil {
		c.ws.Close()
		return
	}
	c.ws.SetReadDeadline(time.Now().Add(closeWait))
}

func (c *conn) write(ev event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return c.writeFrame(b)
}

// writeFrame writes one text frame within writeTimeout.
func (c *conn) writeFrame(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// request is one command being handled.
type request struct {
	c      *conn
	params []string
	drop   []*conn  // sockets to close once Server.mu is released
	after  []func() // hooks to call once Server.mu is released
}

// commandSpec describes a visitor command of the vendor document.
type commandSpec struct {
	name      string // the document's spelling
	minParams int
	connected bool // needs a prior Connect
	run       func(*Server, *request)
}

// lookupCommand finds a command by name, case-insensitively.
func lookupCommand(name string) (commandSpec, bool) {
	switch strings.ToLower(name) {
	case "connect":
		return commandSpec{"Connect", 2, false, (*Server).onConnect}, true
	case "hello":
		return commandSpec{"Hello", 5, true, (*Server).onHello}, true
	case "message":
		return commandSpec{"Message", 3, true, (*Server).onMessage}, true
	case "preview":
		return commandSpec{"Preview", 3, true, (*Server).onChatCommand}, true
	case "file":
		return commandSpec{"File", 4, true, (*Server).onFile}, true
	case "dynamicfield":
		return commandSpec{"DynamicField", 4, true, (*Server).onDynamicField}, true
	case "starttyping":
		return commandSpec{"StartTyping", 1, true, (*Server).onChatCommand}, true
	case "stoptyping":
		return commandSpec{"StopTyping", 1, true, (*Server).onChatCommand}, true
	case "quit":
		return commandSpec{"Quit", 1, true, (*Server).onQuit}, true
	case "postchatsurvey":
		return commandSpec{"PostChatSurvey", 5, true, (*Server).onPostChatSurvey}, true
	case "transcript":
		return commandSpec{"Transcript", 5, true, (*Server).onTranscript}, true
	case "leavemessage":
		return commandSpec{"LeaveMessage", 9, true, (*Server).onLeaveMessage}, true
	case "getoperators":
		return commandSpec{"GetOperators", 1, true, (*Server).onGetOperators}, true
	case "getimage":
		return commandSpec{"GetImage", 3, true, (*Server).onGetImage}, true
	}
	return commandSpec{}, false
}

// handle runs one client frame. Malformed JSON or an unknown command
// blacklists the client IP and closes the socket after an error event.
func (c *conn) handle(p []byte) {
	s := c.s
	name, params, err := decodeCommand(p)
	r := &request{c: c, params: params}
	s.mu.Lock()
	if c.dead || c.closing != nil {
		s.mu.Unlock()
		return
	}
	spec, ok := lookupCommand(name)
	switch {
	case err != nil:
		s.blacklistLocked(c.ip)
		c.failLocked(invalidCommand)
	case !ok:
		s.commands = append(s.commands, Command{Chat: c.chatUID(), Name: name, Parameters: params})
		s.blacklistLocked(c.ip)
		c.failLocked(invalidCommand)
	default:
		s.runLocked(spec, r)
	}
	s.changedLocked()
	s.mu.Unlock()
	for _, old := range r.drop {
		old.ws.Close()
	}
	for _, f := range r.after {
		f()
	}
}

// runLocked validates and runs a known command, and records it.
func (s *Server) runLocked(spec commandSpec, r *request) {
	c := r.c
	i := len(s.commands)
	s.commands = append(s.commands, Command{Name: spec.name, Parameters: r.params})
	switch {
	case len(r.params) < spec.minParams:
		c.eventLocked(evError, tooFewParams)
	case spec.connected && c.sessionID == "":
		c.eventLocked(evError, notConnected)
	default:
		spec.run(s, r)
	}
	s.commands[i].Chat = c.chatUID()
}

func (c *conn) chatUID() string {
	if c.chat != nil {
		return c.chat.uid
	}
	return ""
}

// sessionOK reports whether sid was issued to this socket or to its chat.
func (c *conn) sessionOK(sid string) bool {
	return sid != "" && (sid == c.sessionID || (c.chat != nil && c.chat.sessions[sid]))
}

// checkSessionLocked sends an error event unless sid is valid here.
func (c *conn) checkSessionLocked(sid string) bool {
	if !c.sessionOK(sid) {
		c.eventLocked(evError, badSession)
		return false
	}
	return true
}

// connChatLocked returns the socket's live chat after checking sid, or sends
// an error event and returns nil.
func (s *Server) connChatLocked(c *conn, sid string) *chat {
	switch {
	case !c.checkSessionLocked(sid):
		return nil
	case c.chat == nil:
		c.eventLocked(evError, noChat)
		return nil
	case !s.liveLocked(c.chat):
		c.eventLocked(evError, chatEnded)
		return nil
	}
	return c.chat
}

// onConnect checks the credentials, opens a session, and continues the chat
// the Connect refers to when it can (see the package doc).
func (s *Server) onConnect(r *request) {
	c, p := r.c, r.params
	switch {
	case c.sessionID != "":
		c.eventLocked(evError, "Already connected.")
		return
	case p[0] != s.cfg.AuthString || !strings.EqualFold(p[1], s.cfg.Domain):
		s.refuseConnectLocked(c, accessDenied)
		return
	case s.cfg.APIKey != "" && param(p, 6) != s.cfg.APIKey:
		s.refuseConnectLocked(c, badAPIKey)
		return
	}
	c.sessionID, c.cookie, c.visitorIP = newSessionID(), param(p, 3), param(p, 2)
	if c.visitorIP == "" {
		c.visitorIP = c.ip
	}
	data := newConnectedData(s.cfg, c.sessionID, c.visitorIP)
	ch, known := s.resumeLocked(c.cookie, param(p, 7))
	if ch != nil && s.noReattach {
		if ch.conn == nil {
			s.endLocked(ch)
		}
		ch = nil
	}
	switch {
	case ch != nil:
		r.after = append(r.after, s.resumeHooksLocked(ch.uid))
		ch.sessions[c.sessionID] = true
		s.answerConnectLocked(c, event{EventName: evConnected, ChatUid: &ch.uid, Data: data})
		if old := s.attachLocked(ch, c); old != nil {
			r.drop = append(r.drop, old)
		}
	case known:
		c.uid = newUID()
		s.answerConnectLocked(c, event{EventName: evConnected, ChatUid: &c.uid, Data: data})
	default:
		s.answerConnectLocked(c, event{EventName: evConnected, Data: data})
	}
}

// refuseConnectLocked answers a bad Connect with an error event and closes
// the socket; repeated refusals blacklist the IP.
func (s *Server) refuseConnectLocked(c *conn, msg string) {
	s.badConnects[c.ip]++
	if s.badConnects[c.ip] >= badConnectLimit {
		s.blacklistLocked(c.ip)
	}
	c.failLocked(msg)
}

// onHello starts a chat: accepted (and the operator script), or notaccepted.
func (s *Server) onHello(r *request) {
	c, p := r.c, r.params
	if !c.checkSessionLocked(p[4]) {
		return
	}
	if c.chat != nil && s.liveLocked(c.chat) {
		s.emitLocked(c.chat, evAccepted, pagingText) // a repeated Hello changes nothing
		return
	}
	fields, err := parseFields(param(p, 9))
	if err != nil {
		c.eventLocked(evError, badSurvey)
		return
	}
	ch := s.startChatLocked(c, p, fields)
	op := s.cfg.Operator
	if op.NotAccepted || (p[3] != "" && !strings.EqualFold(p[3], op.Name)) {
		text := notAcceptedText
		if op.LeaveMessageEnabled {
			text += leaveText
		}
		s.emitLocked(ch, evNotAccepted, text)
		s.endLocked(ch)
		return
	}
	s.emitLocked(ch, evAccepted, pagingText)
	s.lineLocked(ch, classPaging, pagingText)
	s.startOperatorLocked(ch)
}

// startChatLocked records a new chat from Hello's parameters, attached to c.
func (s *Server) startChatLocked(c *conn, p []string, fields map[string]string) *chat {
	uid := c.uid
	if uid == "" {
		uid = newUID()
	}
	c.uid = ""
	ch := newChat(uid)
	ch.name, ch.dept, ch.lang, ch.fields = p[0], param(p, 2), param(p, 7), fields
	ch.cookie = c.cookie
	if ch.cookie == "" {
		ch.cookie = param(p, 6)
	}
	ch.sessions[p[4]] = true
	ch.sessions[c.sessionID] = true
	s.addChatLocked(ch)
	s.attachLocked(ch, c)
	return ch
}

// onMessage records a visitor line, echoes it (linesays + linev) and hands
// it to the operator.
func (s *Server) onMessage(r *request) {
	ch := s.connChatLocked(r.c, r.params[0])
	if ch == nil {
		return
	}
	text := r.params[2]
	if utf8.RuneCountInString(text) > maxLineChars {
		r.c.eventLocked(evError, lineTooLong)
		return
	}
	ch.lines = append(ch.lines, text)
	s.lines = append(s.lines, text)
	r.after = append(r.after, s.lineHooksLocked(ch.uid, text))
	s.lineLocked(ch, classSays, ch.name+" says:")
	s.lineLocked(ch, classVisitor, text)
	ch.inbox = append(ch.inbox, text)
	if start := s.answerLocked(ch); start != nil {
		r.after = append(r.after, start) // after the line hooks
	}
}

// onChatCommand checks a command that only informs the operator (Preview,
// StartTyping, StopTyping); the record in Commands is all it leaves.
func (s *Server) onChatCommand(r *request) {
	s.connChatLocked(r.c, r.params[0])
}

// onFile accepts a file link whose extension is in AllowedFileTypes.
func (s *Server) onFile(r *request) {
	if s.connChatLocked(r.c, r.params[0]) == nil {
		return
	}
	ext := strings.TrimPrefix(strings.ToLower(path.Ext(r.params[2])), ".")
	if !slices.Contains(strings.Split(allowedFiles, ", "), ext) {
		r.c.eventLocked(evError, badFileType)
	}
}

// onDynamicField adds the answered field to the chat's fields.
func (s *Server) onDynamicField(r *request) {
	if ch := s.connChatLocked(r.c, r.params[0]); ch != nil {
		ch.fields[r.params[2]] = r.params[3]
	}
}

// onQuit ends the socket's chat, if it is still going. No event answers it.
func (s *Server) onQuit(r *request) {
	c := r.c
	if !c.checkSessionLocked(r.params[0]) {
		return
	}
	if c.chat != nil && s.liveLocked(c.chat) {
		s.endLocked(c.chat)
	}
}

// onPostChatSurvey answers acknowledged.
func (s *Server) onPostChatSurvey(r *request) {
	if !r.c.checkSessionLocked(r.params[1]) {
		return
	}
	if _, err := parseFields(r.params[4]); err != nil {
		r.c.eventLocked(evError, badSurvey)
		return
	}
	r.c.enqueueLocked(event{EventName: evAcknowledged, ChatUid: new(string), Data: ""})
}

// onTranscript accepts a transcript request; no event answers it.
func (s *Server) onTranscript(r *request) {
	r.c.checkSessionLocked(r.params[1])
}

// onLeaveMessage records a left message and answers acknowledged. The Chat
// Uid and Session ID may be blank.
func (s *Server) onLeaveMessage(r *request) {
	p := r.params
	if p[1] != "" && !r.c.checkSessionLocked(p[1]) {
		return
	}
	s.left = append(s.left, LeftMessage{ChatUID: p[0], SessionID: p[1], Domain: p[2],
		VisitorIP: p[3], Name: p[4], Department: p[5], Email: p[6], Phone: p[7], Text: p[8]})
	r.c.enqueueLocked(event{EventName: evAcknowledged, ChatUid: new(string), Data: ""})
}

// onGetOperators answers the operators event with the one operator.
func (s *Server) onGetOperators(r *request) {
	if r.c.checkSessionLocked(r.params[0]) {
		r.c.enqueueLocked(event{EventName: evOperators,
			Data: []operatorData{newOperatorData(s.cfg.Operator)}})
	}
}

// onGetImage answers the image event with a 1x1 PNG.
func (s *Server) onGetImage(r *request) {
	if !r.c.checkSessionLocked(r.params[0]) {
		return
	}
	typ, _ := strconv.Atoi(r.params[2])
	r.c.enqueueLocked(event{EventName: evImage, ChatUid: new(string), Data: imageData{
		Domain: s.cfg.Domain, ImageType: typ, Language: "en", Ext: ".png", Base64: onePixelPNG}})
}
