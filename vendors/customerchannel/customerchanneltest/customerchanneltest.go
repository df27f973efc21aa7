// Package customerchanneltest starts and scripts a simulated Expertflow "Customer Channel"
// chat server for tests: server.js in this folder, run on the reference Node.js socket.io
// server (socket.io 2.x for Engine.IO 3, socket.io 4.x for Engine.IO 4).
//
// It needs Node.js 20 and the packages of package-lock.json installed:
//
//	npm ci --prefix vendors/customerchannel/customerchanneltest --no-audit --no-fund
//
// (scripts/test.sh does that). See README.md for the control API.
package customerchanneltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Dir returns the folder holding server.js, found from this source file's location so that
// tests in any package can start the simulator.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "vendors/customerchannel/customerchanneltest"
	}
	return filepath.Dir(file)
}

// Server is a running simulator.
type Server struct {
	URL string // "http://127.0.0.1:PORT"
	EIO int    // 3 or 4

	cmd      *exec.Cmd
	stdin    io.WriteCloser
	logs     *logBuffer
	done     chan struct{} // closed when the process has exited
	waitErr  error         // valid after done
	client   *http.Client
	closeOne sync.Once
	// maxAnswer bounds a control API answer read into memory; 0 means
	// defaultMaxAnswer.
	maxAnswer int64
}

// defaultMaxAnswer is far above any test's state (every message of every
// conversation) and far below what would hurt a test machine.
const defaultMaxAnswer = 64 << 20

// Start runs `node server.js --eio N` from this package's folder and returns once it
// listens. The process lives until Close (ctx bounds only the start). It exits by itself
// when this process dies, because its stdin closes.
func Start(ctx context.Context, eio int) (*Server, error) {
	return start(ctx, eio, nil)
}

// StartArgs is Start with extra arguments for server.js, for instance
// "--ping-interval", "500", "--ping-timeout", "500".
func StartArgs(ctx context.Context, eio int, args ...string) (*Server, error) {
	return start(ctx, eio, args)
}

// StartTest starts a simulator for a test, fails the test with a clear message when it
// cannot (never skips: a missing Node.js is an error, in CI and elsewhere), stops it in
// t.Cleanup and, when the test failed, logs the simulator's stderr.
func StartTest(t testing.TB, eio int, args ...string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := start(ctx, eio, args)
	if err != nil {
		t.Fatalf("customer channel simulator: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("customer channel simulator (eio %d) log:\n%s", eio, s.Logs())
		}
	})
	return s
}

// Requirements reports what is missing to run the simulator, with the command that fixes
// it, or nil when Node.js and the packages are in place.
func Requirements() error {
	dir := Dir()
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not installed (need Node.js 20 with npm): install it, e.g. `apt-get install nodejs npm`, then run `npm ci --prefix %s --no-audit --no-fund`", dir)
	}
	// The versions the lock file pins must be the ones installed.
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err == nil {
		err = json.Unmarshal(data, &lock)
	}
	if err != nil {
		return fmt.Errorf("customerchanneltest: package-lock.json: %v", err)
	}
	for _, pkg := range []string{"socket.io-v2", "socket.io-v4"} {
		var installed struct{ Version string }
		data, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
		if err != nil {
			return fmt.Errorf("the simulator's Node packages are missing (%s): run `npm ci --prefix %s --no-audit --no-fund` (or bash scripts/test.sh)", pkg, dir)
		}
		_ = json.Unmarshal(data, &installed)
		if want := lock.Packages["node_modules/"+pkg].Version; installed.Version != want {
			return fmt.Errorf("the simulator's Node packages are stale (%s %s installed, %s locked): run `npm ci --prefix %s --no-audit --no-fund` (or bash scripts/test.sh)", pkg, installed.Version, want, dir)
		}
	}
	return nil
}

func start(ctx context.Context, eio int, extra []string) (*Server, error) {
	if eio != 3 && eio != 4 {
		return nil, fmt.Errorf("eio must be 3 or 4, not %d", eio)
	}
	if err := Requirements(); err != nil {
		return nil, err
	}
	dir := Dir()
	args := append([]string{filepath.Join(dir, "server.js"), "--eio", strconv.Itoa(eio)}, extra...)
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	logs := &logBuffer{max: 1 << 20}
	cmd.Stderr = logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// The first stdout line is "listening <port>"; anything after it goes to the log.
	ready := make(chan string, 1)
	cmd.Stdout = &firstLine{ch: ready, rest: logs}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s: %w", dir, err)
	}
	s := &Server{
		EIO:   eio,
		cmd:   cmd,
		stdin: stdin,
		logs:  logs,
		done:  make(chan struct{}),
		// No idle connections left behind: a test's goroutine-leak check
		// must not see the control client's.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}

	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	select {
	case <-s.done:
		return nil, fmt.Errorf("simulator (eio %d) exited before listening: %v\n%s", eio, s.waitErr, s.Logs())
	case line := <-ready:
		port, found := strings.CutPrefix(line, "listening ")
		if !found {
			s.Close()
			return nil, fmt.Errorf("simulator (eio %d) did not start (first line %q): %v\n%s", eio, line, s.waitErr, s.Logs())
		}
		if _, err := strconv.Atoi(port); err != nil {
			s.Close()
			return nil, fmt.Errorf("simulator (eio %d): bad first line %q\n%s", eio, line, s.Logs())
		}
		s.URL = "http://127.0.0.1:" + port
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("simulator (eio %d) did not start: %w\n%s", eio, ctx.Err(), s.Logs())
	}
}

// Close stops node: it closes its stdin (the simulator exits on that), sends SIGTERM if it
// is still running after 2 s and kills it after 2 s more, then waits. Safe to call twice.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		_ = s.stdin.Close()
		select {
		case <-s.done:
			return
		case <-time.After(2 * time.Second):
		}
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
			return
		case <-time.After(2 * time.Second):
		}
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// Exited reports whether the node process has exited, and its exit error.
func (s *Server) Exited() (bool, error) {
	select {
	case <-s.done:
		return true, s.waitErr
	default:
		return false, nil
	}
}

// Pid is the node process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Logs returns the simulator's stderr (and stray stdout) so far, for failure messages.
func (s *Server) Logs() string { return s.logs.String() }

// AutoAgent configures the scripted agent that takes every new conversation (POST
// /_sim/autoagent).
type AutoAgent struct {
	Name      string        // required
	Greeting  string        // said after joining, if set
	Echo      bool          // answer every customer ChatMessage with "echo: <text>"
	Whisper   bool          // first send a tag "whisper" ChatMessage "whisper: <text>"
	JoinDelay time.Duration // between the customer's first joinConversation and participantJoined
}

// AutoAgent sets the scripted agent for conversations joined from now on.
func (s *Server) AutoAgent(ctx context.Context, a AutoAgent) error {
	body := map[string]any{
		"name":        a.Name,
		"greeting":    a.Greeting,
		"echo":        a.Echo,
		"whisper":     a.Whisper,
		"joinDelayMs": a.JoinDelay.Milliseconds(),
	}
	return s.post(ctx, "/_sim/autoagent", body, nil)
}

// DisableAutoAgent stops the scripted agent taking new conversations.
func (s *Server) DisableAutoAgent(ctx context.Context) error {
	return s.post(ctx, "/_sim/autoagent", map[string]any{"disable": true}, nil)
}

// Attachment is the vendor's Attachment object.
type Attachment struct {
	Type         string `json:"type"`
	Name         string `json:"name"`
	ContentURL   string `json:"contentUrl"`
	ThumbnailURL string `json:"thumbnailUrl,omitempty"`
}

// AgentAction is one scripted agent step (POST /_sim/agent). Action is one of join, say,
// typing, whisper, transfer, leave, end, noagent, activity, raw; see README.md.
type AgentAction struct {
	ConversationID string         `json:"conversationId,omitempty"`
	Action         string         `json:"action"`
	Name           string         `json:"name,omitempty"`
	Text           string         `json:"text,omitempty"`
	ActivityType   string         `json:"activityType,omitempty"`
	Typing         bool           `json:"typing,omitempty"`
	Attachments    []Attachment   `json:"attachments,omitempty"`
	Info           map[string]any `json:"info,omitempty"`  // activity: the ActivityMessage's info
	Event          string         `json:"event,omitempty"` // raw: event name, default messageArrived
	// Payload is what raw emits as is (an object, a JSON string, garbage text...). Nil emits
	// the event without any argument.
	Payload any `json:"payload,omitempty"`
}

// Agent performs a scripted agent action.
func (s *Server) Agent(ctx context.Context, a AgentAction) error {
	return s.post(ctx, "/_sim/agent", a, nil)
}

// Campaign sends a third-party ChatMessage {refId, text} to every connected socket whose
// registerConnector channel is channel ("" = every registered socket) and returns the
// message id (id, or a new one when id is ""). With no such socket the server keeps it and
// sends it to the next socket that registers for channel (State.Campaigns says Pending).
func (s *Server) Campaign(ctx context.Context, refID, text, id, channel string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	body := map[string]any{"refId": refID, "text": text, "id": id, "channel": channel}
	if err := s.post(ctx, "/_sim/campaign", body, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Drop cuts every client socket: mode "disconnect" (Socket.IO disconnect), "close"
// (Engine.IO transport closed) or "kill" (TCP connections destroyed).
func (s *Server) Drop(ctx context.Context, mode string) error {
	return s.post(ctx, "/_sim/drop", map[string]any{"mode": mode}, nil)
}

// SetDown starts (true) or ends (false) an outage (POST /_sim/down): going down cuts every
// client connection, and until SetDown(false) Engine.IO handshakes and REST requests are
// refused (403/400 and 503). The control API keeps answering.
func (s *Server) SetDown(ctx context.Context, down bool) error {
	return s.post(ctx, "/_sim/down", map[string]any{"down": down}, nil)
}

// Fail makes the next times requests to the REST path answer status. A path ending in
// "/*" matches every path below it.
func (s *Server) Fail(ctx context.Context, path string, status, times int) error {
	return s.post(ctx, "/_sim/fail", map[string]any{"path": path, "status": status, "times": times}, nil)
}

// Lose makes the server lose the next times customer ChatMessages (POST
// /_sim/lose): each is taken and neither stored nor echoed, and the
// sender's TCP connection is destroyed, as a server that dies holding it.
func (s *Server) Lose(ctx context.Context, times int) error {
	return s.post(ctx, "/_sim/lose", map[string]any{"times": times}, nil)
}

// Forget makes the server forget one conversation (every one when conversationID is ""),
// as a server restarted without keeping its chats would (POST /_sim/forget): from then on
// a join of it gets no conversationInfo and a message to it is refused. Connections stay up.
func (s *Server) Forget(ctx context.Context, conversationID string) error {
	body := map[string]any{}
	if conversationID != "" {
		body["conversationId"] = conversationID
	}
	return s.post(ctx, "/_sim/forget", body, nil)
}

// Reset forgets everything: conversations, registrations, recorded requests, autoagent,
// failures. Connected sockets stay connected but leave their rooms.
func (s *Server) Reset(ctx context.Context) error {
	return s.post(ctx, "/_sim/reset", map[string]any{}, nil)
}

// State is GET /_sim/state.
type State struct {
	EIO           int              `json:"eio"`
	SocketIO      string           `json:"socketIo"` // version of the socket.io package
	Connectors    []Connector      `json:"connectors"`
	Registered    []Connector      `json:"registered"` // each connected socket's latest registration: who takes campaigns
	Inits         []map[string]any `json:"inits"`      // accepted init bodies
	Rejected      []Rejected       `json:"rejected"`   // REST requests refused as bad input
	Requests      []Request        `json:"requests"`   // every /api/ request
	Transcripts   []Transcript     `json:"transcripts"`
	Conversations []Conversation   `json:"conversations"`
	Campaigns     []CampaignSent   `json:"campaigns"`
	Connected     []string         `json:"connected"`   // socket ids connected now
	Connections   int              `json:"connections"` // socket connections ever
	Down          bool             `json:"down"`        // an outage is on (SetDown)
}

// Connector is one registerConnector call (a socket that registers again after a
// reconnect, or twice, has several).
type Connector struct {
	SocketID  string `json:"socketId"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Channel   string `json:"channel"`
	Connected bool   `json:"connected"`
}

// Rejected is a REST request refused for bad input.
type Rejected struct {
	Path   string         `json:"path"`
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
	Error  string         `json:"error"`
}

// Request is one REST request and the status answered.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
}

// Transcript is one transcript request.
type Transcript struct {
	ConversationID string `json:"conversationId"`
	Type           string `json:"type"`
	Status         int    `json:"status"`
}

// Conversation is the simulator's view of one conversation.
type Conversation struct {
	ID                    string        `json:"id"`
	CustomerParticipantID string        `json:"customerParticipantId"`
	Channel               string        `json:"channel"`
	RefID                 string        `json:"refId"`
	JoinedBy              []string      `json:"joinedBy"` // one per joinConversation
	Ended                 bool          `json:"ended"`
	EndedBy               string        `json:"endedBy"` // "customer" or "agent"
	Agents                []Participant `json:"agents"`  // in the conversation now
	Messages              []Message     `json:"messages"`
	Activities            []Message     `json:"activities"` // ActivityMessages the client sent
}

// CampaignSent is one /_sim/campaign call.
type CampaignSent struct {
	ID             string   `json:"id"`
	ConversationID string   `json:"conversationId"`
	RefID          string   `json:"refId"`
	Text           string   `json:"text"`
	Channel        string   `json:"channel"`
	DeliveredTo    []string `json:"deliveredTo"` // socket ids
	// Pending: no registered socket has taken it yet; the next socket that
	// registers for its channel does.
	Pending bool `json:"pending"`
}

// Participant is the vendor's Participant object.
type Participant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Message is a ChatMessage or an ActivityMessage.
type Message struct {
	Type           string         `json:"type"`
	ConversationID string         `json:"conversationId"`
	ID             string         `json:"id,omitempty"`
	From           Participant    `json:"from"`
	To             []Participant  `json:"to,omitempty"`
	Text           string         `json:"text,omitempty"`
	Tag            string         `json:"tag,omitempty"`
	RefID          string         `json:"refId,omitempty"`
	Attachments    []Attachment   `json:"attachments,omitempty"`
	ActivityType   string         `json:"activityType,omitempty"`
	Info           map[string]any `json:"info,omitempty"`
	Timestamp      string         `json:"timestamp,omitempty"`
}

// Conversation returns the conversation with that id, or nil.
func (st State) Conversation(id string) *Conversation {
	for i := range st.Conversations {
		if st.Conversations[i].ID == id {
			return &st.Conversations[i]
		}
	}
	return nil
}

// State fetches the simulator's state.
func (s *Server) State(ctx context.Context) (State, error) {
	var st State
	err := s.do(ctx, http.MethodGet, "/_sim/state", nil, &st)
	return st, err
}

// WaitFor polls State every 20 ms until cond holds or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func(State) bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := s.State(ctx)
		if err == nil && cond(st) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("customerchanneltest: wait: %w (last state request: %v)", ctx.Err(), err)
			}
			js, _ := json.Marshal(st)
			return fmt.Errorf("customerchanneltest: wait: %w; last state: %s", ctx.Err(), js)
		case <-tick.C:
		}
	}
}

func (s *Server) post(ctx context.Context, path string, in, out any) error {
	return s.do(ctx, http.MethodPost, path, in, out)
}

func (s *Server) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if exited, werr := s.Exited(); exited {
			return fmt.Errorf("customerchanneltest: %s %s: %w (node exited: %v)\n%s", method, path, err, werr, s.Logs())
		}
		return fmt.Errorf("customerchanneltest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	limit := s.maxAnswer
	if limit <= 0 {
		limit = defaultMaxAnswer
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("customerchanneltest: %s %s: %w", method, path, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("customerchanneltest: %s %s: answer larger than %d bytes", method, path, limit)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("customerchanneltest: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("customerchanneltest: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// firstLine sends the first line written to it on ch and passes the rest to rest.
type firstLine struct {
	mu   sync.Mutex
	line []byte
	sent bool
	ch   chan<- string
	rest io.Writer
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return w.rest.Write(p)
	}
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		w.line = append(w.line, p[:i]...)
		w.sent = true
		w.ch <- strings.TrimSpace(string(w.line))
		if i+1 < len(p) {
			_, _ = w.rest.Write(p[i+1:])
		}
		return len(p), nil
	}
	w.line = append(w.line, p...)
	if len(w.line) > 4096 { // not the line we wait for: give up on it
		w.sent = true
		w.ch <- string(w.line)
	}
	return len(p), nil
}

// logBuffer is a goroutine-safe buffer that keeps the first max bytes.
type logBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room < len(p) {
		if room > 0 {
			b.buf.Write(p[:room])
		}
		b.truncated = true
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "\n[log truncated]\n"
	}
	return b.buf.String()
}
