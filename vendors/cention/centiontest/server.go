package centiontest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Defaults of Config.
const (
	DefaultOrigin    = "https://www.example.com"
	DefaultArea      = 2
	DefaultWorkspace = "demo"
	DefaultReadLimit = 1 << 20
	DefaultMaxUpload = 10 << 20
)

// Config configures a Server. The zero value is usable.
type Config struct {
	// Origin is the Origin header the server requires on the WebSocket
	// upgrade and on the HTTP API calls a page makes (canchat, agentlist,
	// upload); anything else is answered 403. Default "https://www.example.com".
	Origin string
	// Area is the one chat area the server serves; default 2.
	Area int
	// Workspace names the base path: URL() ends in "/s/<Workspace>"; default "demo".
	Workspace string

	// Agent, when set, answers by itself: it joins every new chat at once,
	// sends its greeting, and answers every new client line with Reply.
	// Nil: the agent side acts only when the test calls Join, Say, ...
	Agent *Agent

	// DocumentEvents makes the server speak the vendor document's event
	// names: "chat message" batches instead of CHAT_NEW_MESSAGE, and
	// "message sent" as the umid confirmation instead of the client's
	// message echoed in a batch.
	DocumentEvents bool

	// PingInterval, when set, makes the server send a WebSocket ping on every
	// socket that often; a ping not answered within the interval drops it.
	PingInterval time.Duration
	// IdleTimeout, when set, drops a socket on which nothing (no frame, no
	// ping) arrived for that long, as a server behind an idle-closing proxy.
	IdleTimeout time.Duration

	ReadLimit int64 // bytes of one client frame; default 1 MiB (larger closes the socket)
	MaxUpload int64 // bytes of one upload; default 10 MiB (larger: 413)
}

// Agent is the automatic agent of Config.Agent.
type Agent struct {
	Name     string                   // default "Alice"
	Greeting string                   // sent after joining, if not empty
	Reply    func(text string) string // answer to a client line; "" (or nil Reply) sends nothing
}

func (c Config) withDefaults() Config {
	if c.Origin == "" {
		c.Origin = DefaultOrigin
	}
	if c.Area == 0 {
		c.Area = DefaultArea
	}
	if c.Workspace == "" {
		c.Workspace = DefaultWorkspace
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.MaxUpload <= 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.Agent != nil && c.Agent.Name == "" {
		a := *c.Agent
		a.Name = "Alice"
		c.Agent = &a
	}
	return c
}

// Refusal is one request refused for its Origin.
type Refusal struct {
	Path   string
	Origin string // "" when the header was missing
}

// Server is a fake Cention chat server. All its methods are safe for
// concurrent use.
type Server struct {
	cfg    Config
	ln     net.Listener
	hs     *http.Server
	prefix string // "/s/<workspace>"
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // serve loop, handlers, socket goroutines, ack timers

	mu          sync.Mutex
	closed      bool
	conns       map[*conn]struct{}
	chats       []*chat          // every chat, in creation order
	live        map[string]*chat // token -> its newest chat
	nextMsgID   int64
	nextSession int64
	canChat     bool
	agents      []string
	lateAck     time.Duration
	holdAcks    bool
	held        []heldAck
	redeliverN  int
	refusals    []Refusal
	uploads     []*upload
	pings       map[string]int // client pings per token
	malformed   int
	changed     chan struct{} // closed and replaced whenever something is recorded
}

// heldAck is a confirmation HoldAcks withholds.
type heldAck struct {
	ch     *chat
	m      *message
	repeat bool
}

// Start starts a Server on 127.0.0.1 (plain HTTP and ws://). Close stops it.
func Start(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("centiontest: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ln: ln, prefix: "/s/" + cfg.Workspace, ctx: ctx, cancel: cancel,
		conns: make(map[*conn]struct{}), live: make(map[string]*chat), pings: make(map[string]int),
		nextMsgID: 1000, nextSession: 100, canChat: true, agents: []string{"Alice"},
		changed: make(chan struct{})}
	if cfg.Agent != nil {
		s.agents = []string{cfg.Agent.Name}
	}
	s.hs = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

// NewServer starts a Server for a test and closes it when the test ends.
func NewServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the base_url of the fake, "http://127.0.0.1:port/s/<workspace>":
// the socket is at URL()+"/external.ws" (as ws://), the HTTP API under
// URL()+"/socket/external.api/".
func (s *Server) URL() string {
	return "http://" + s.ln.Addr().String() + s.prefix
}

// WebSocketURL is the socket's URL for token, url-encoded as a client must.
func (s *Server) WebSocketURL(token string) string {
	return "ws://" + s.ln.Addr().String() + s.prefix + "/external.ws?token=" + queryEscape(token)
}

// Origin is the Origin the server requires.
func (s *Server) Origin() string { return s.cfg.Origin }

// Area is the area the server serves.
func (s *Server) Area() int { return s.cfg.Area }

// Close drops every socket and waits for every goroutine of the server. It
// is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := s.detachAllLocked()
	s.mu.Unlock()

	s.cancel()
	s.hs.Close()
	for _, c := range conns {
		c.ws.CloseNow()
	}
	s.wg.Wait()
}

// SetCanChat sets the canchat answer's chatOpen. While it is false, a
// register is also answered "agent unavailable" (the chat is recorded and
// ends at once).
func (s *Server) SetCanChat(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.canChat = ok
}

// SetAgents sets the agents agentlist names and canchat counts
// (agentsAvailable). The default is one, "Alice" (or Config.Agent's name).
func (s *Server) SetAgents(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents = slices.Clone(names)
}

// Refusals returns the requests refused for their Origin, in order.
func (s *Server) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refusals)
}

// Pings returns how many WebSocket pings clients sent on sockets of token.
func (s *Server) Pings(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings[token]
}

// Malformed returns how many frames were not JSON text with a type (each
// closed its socket with status 1007).
func (s *Server) Malformed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.malformed
}

// routes is the server's HTTP surface, all under the workspace prefix.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.prefix
	mux.HandleFunc("GET "+p+"/external.ws", s.serveSocket)
	mux.HandleFunc("GET "+p+"/socket/external.api/canchat", s.originChecked(s.serveCanChat))
	mux.HandleFunc("GET "+p+"/socket/external.api/agentlist", s.originChecked(s.serveAgentList))
	mux.HandleFunc("GET "+p+"/socket/external.api/savehistory", s.serveHistory)
	mux.HandleFunc("GET "+p+"/socket/external.api/printhistory", s.serveHistory)
	mux.HandleFunc("POST "+p+uploadPath, s.originChecked(s.serveUpload))
	mux.HandleFunc("GET "+p+downloadPath+"{id}", s.serveDownload)
	return mux
}

// originOK checks r's Origin, recording a refusal.
func (s *Server) originOK(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if strings.EqualFold(origin, s.cfg.Origin) {
		return true
	}
	s.mu.Lock()
	s.refusals = append(s.refusals, Refusal{Path: r.URL.Path, Origin: origin})
	s.changedLocked()
	s.mu.Unlock()
	return false
}

func (s *Server) originChecked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.originOK(r) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// serveSocket upgrades to the chat WebSocket and serves it until it ends.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	if !s.originOK(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" {
		http.Error(w, "no token", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closed {
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	c := &conn{s: s, token: token, wake: make(chan struct{}, 1)}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // Origin is checked above, exactly
		OnPingReceived: func(context.Context, []byte) bool {
			c.seen()
			s.mu.Lock()
			s.pings[token]++
			s.changedLocked()
			s.mu.Unlock()
			return true
		},
	})
	if err != nil {
		return
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	c.ws = ws
	if !s.attachNew(c) {
		ws.CloseNow()
		return
	}
	c.serve()
}

// attachNew registers a new socket. When its token has a live chat the
// socket takes it over at once (the server keys chats on the token); the
// socket that carried it is dropped.
func (s *Server) attachNew(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	if ch := s.live[c.token]; ch != nil && ch.resumable() {
		s.attachLocked(ch, c)
	}
	s.changedLocked()
	return true
}

// detachAllLocked forgets every socket, returning them for the caller to
// close outside the lock.
func (s *Server) detachAllLocked() []*conn {
	var conns []*conn
	for c := range s.conns {
		s.dropConnLocked(c)
		conns = append(conns, c)
	}
	return conns
}

// dropConnLocked removes c from the live set and detaches its chat.
func (s *Server) dropConnLocked(c *conn) {
	delete(s.conns, c)
	c.dead = true
	if ch := c.chat; ch != nil && ch.conn == c {
		ch.conn = nil
	}
	c.notify()
	s.changedLocked()
}

// changedLocked wakes every waiter.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait calls done under the lock until it reports true, or ctx ends.
func (s *Server) wait(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := done(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
