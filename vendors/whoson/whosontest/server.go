package whosontest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults of Config.
const (
	DefaultAddr        = "127.0.0.1:0"
	DefaultAuthString  = "test-auth"
	DefaultDomain      = "www.example.com"
	DefaultResumeGrace = 30 * time.Second
)

// badConnectLimit is how many refused Connect commands from one IP get it blacklisted.
const badConnectLimit = 3

// Config configures a Server. The zero value is usable.
type Config struct {
	Addr       string // listen address; default "127.0.0.1:0"
	AuthString string // Connect's first parameter must equal it; default "test-auth"
	Domain     string // Connect's domain must equal it (case-insensitively); default "www.example.com"
	APIKey     string // if non-empty, Connect's API key (7th parameter) must equal it; empty: any
	Operator   Operator

	// ResumeGrace is how long a chat survives its socket dropping, so that a
	// reconnecting client can continue it (see the package doc); 0 means 30s.
	ResumeGrace time.Duration

	// EnforceBlacklist makes the server refuse (HTTP 403) WebSocket upgrades
	// from blacklisted IPs. Blacklisting is always recorded (Blacklisted); it
	// is enforced only when this is set, so tests sharing 127.0.0.1 are not
	// poisoned by one another. X-Forwarded-For gives a test its own IP.
	EnforceBlacklist bool
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.AuthString == "" {
		c.AuthString = DefaultAuthString
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.ResumeGrace <= 0 {
		c.ResumeGrace = DefaultResumeGrace
	}
	return c
}

// Server is a fake WhosOn Chat API server. All its methods are safe for
// concurrent use.
type Server struct {
	cfg  Config
	ln   net.Listener
	hs   *http.Server
	up   websocket.Upgrader
	bufs sync.Pool      // *bytes.Buffer for one client frame at a time
	wg   sync.WaitGroup // the serve loop, every handler, reader, writer, flood and operator goroutine

	mu          sync.Mutex
	closed      bool
	conns       map[*conn]struct{}
	chats       []*chat
	byUID       map[string]*chat   // every chat of chats by UID
	byCookie    map[string][]*chat // chats by visitor cookie, oldest first
	commands    []Command
	lines       []string // every visitor line, in arrival order
	left        []LeftMessage
	blacklist   []string
	badConnects map[string]int
	changed     chan struct{} // closed and replaced whenever something is recorded
	flood       Flood         // the fault SetFlood set
	down        bool          // the fault SetDown set: upgrades refused
	noReattach  bool          // the fault RefuseReattach set
	onLine      []func(uid, text string)
	onResume    []func(uid string)

	flooded atomic.Int64 // flood events written
}

// New starts a Server listening on cfg.Addr (plain ws://).
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("whosontest: %w", err)
	}
	s := &Server{cfg: cfg, ln: ln,
		conns: make(map[*conn]struct{}), badConnects: make(map[string]int),
		byUID: make(map[string]*chat), byCookie: make(map[string][]*chat),
		changed: make(chan struct{})}
	s.up = newUpgrader()
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

// URL returns the WebSocket URL of the server, "ws://127.0.0.1:port". The
// Chat API has no path: clients dial the URL as is.
func (s *Server) URL() string {
	return "ws://" + s.ln.Addr().String()
}

// Close drops every socket, stops every operator script and waits for all
// of the server's goroutines. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := s.detachAllLocked()
	for _, ch := range s.chats {
		s.stopTimerLocked(ch)
	}
	s.mu.Unlock()

	s.hs.Close()
	for _, c := range conns {
		c.ws.Close()
	}
	s.wg.Wait()
}

// DropAll drops every socket abruptly, without a close frame. Their chats
// stay resumable for ResumeGrace.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := s.detachAllLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.Close()
	}
}

// SetDown is a fault: while down, the server drops every socket and
// answers every new upgrade 503, as a server that is restarting does. Chats
// stay resumable for ResumeGrace.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	var conns []*conn
	if down {
		conns = s.detachAllLocked()
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.Close()
	}
}

// Blacklisted returns the client IPs blacklisted so far, in order, each once.
func (s *Server) Blacklisted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.blacklist)
}

// Unblacklist clears the blacklist and the count of refused Connects.
func (s *Server) Unblacklist() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blacklist = nil
	clear(s.badConnects)
}

// detachAllLocked forgets every connection and detaches its chat, returning
// the connections for the caller to close outside the lock.
func (s *Server) detachAllLocked() []*conn {
	var conns []*conn
	for c := range s.conns {
		s.dropConnLocked(c)
		conns = append(conns, c)
	}
	return conns
}

// dropConnLocked removes c from the live set and detaches its chat, which
// becomes resumable. Events for the chat are kept until a client resumes it.
func (s *Server) dropConnLocked(c *conn) {
	delete(s.conns, c)
	c.dead = true
	if ch := c.chat; ch != nil && ch.conn == c {
		ch.conn = nil
		ch.detachedAt = time.Now()
	}
}

// blacklistLocked records ip as blacklisted.
func (s *Server) blacklistLocked(ip string) {
	if !slices.Contains(s.blacklist, ip) {
		s.blacklist = append(s.blacklist, ip)
	}
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

// serveHTTP upgrades a request to a WebSocket and serves it until it ends.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	s.mu.Lock()
	refuse := s.closed || (s.cfg.EnforceBlacklist && slices.Contains(s.blacklist, ip))
	down := s.down
	if !refuse && !down {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if refuse || down {
		w.Header().Set("Connection", "close")
		code := http.StatusForbidden
		if down {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, http.StatusText(code), code)
		return
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		s.wg.Done()
		return
	}
	ws.SetReadLimit(maxFrame)
	c := newConn(s, ws, ip)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		s.wg.Done()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	// The reader is a goroutine of its own rather than this handler, which
	// returns so that net/http's buffers of the request are freed.
	go c.serve()
}

// The upgrader's buffers: the read buffer is small because frames are read
// into pooled buffers (see readLoop), and a write buffer is borrowed from a
// pool for one frame at a time, so that an idle socket holds neither. A
// frame longer than writeBufferSize goes out as several WebSocket frames,
// which the protocol allows.
const (
	readBufferSize  = 256
	writeBufferSize = 16 << 10
)

func newUpgrader() websocket.Upgrader {
	return websocket.Upgrader{
		ReadBufferSize:  readBufferSize,
		WriteBufferSize: writeBufferSize,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true }, // any page may embed a chat
	}
}

// clientIP is the first X-Forwarded-For address, else the peer's address.
func clientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
