// Package slacktest is a stateful fake of the parts of Slack that a bot uses: the Web
// API (auth, chat, conversations, users, reactions, the external file upload flow),
// event delivery over Socket Mode or the Events API (HTTP), and the private file
// URLs that customer uploads are served from. It is for tests and demos, in the
// spirit of net/http/httptest: NewServer starts it on a loopback port and Close
// stops it.
//
// The server plays the workspace: Post makes a user (or another bot) write a
// message, which is stored and announced to the app as an event_callback, exactly
// as Slack would. Whatever the app does through the Web API is stored too, can be
// read back with History, Replies, Message and Calls, and is echoed to the app as
// events, as real Slack echoes an app's own messages.
//
// Failures are scripted with Fail (an error answer, a 429 or a 5xx, optionally
// after the effect, optionally slow), SetRateLimit, WithholdAcks, Refresh,
// DropSockets and by answering event POSTs with errors.
//
// Choices where Slack's behaviour is not pinned down are documented on the methods
// and in README.md. All methods are safe for concurrent use.
package slacktest

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Default settings; see the matching Set methods.
const (
	defaultRetryDelay   = time.Second
	defaultAckTimeout   = 3 * time.Second
	defaultPingInterval = 10 * time.Second
	// refreshGrace is how long a socket stays open after its disconnect message,
	// so that the app can open a new one first, as Slack allows.
	refreshGrace = time.Second
	// eventHTTPTimeout is how long Slack waits for an Events API answer.
	eventHTTPTimeout = 3 * time.Second
	// maxRetries is how many times Slack redelivers an event.
	maxRetries = 3
)

// Server is a running fake Slack workspace with one installed app. Create it with
// NewServer and stop it with Close. The exported fields are fixed identities; do
// not change them.
type Server struct {
	URL           string // base URL, "http://127.0.0.1:PORT", no trailing slash
	TeamID        string // the workspace, "T0FAKE0001"
	BotToken      string // the app's bot token, accepted by every Web API method
	AppToken      string // the app-level token, only for apps.connections.open
	SigningSecret string // signs Events API requests
	BotUserID     string // the bot's user, as auth.test reports it
	BotID         string // the bot, as bot_id in its messages
	AppID         string // the app, as api_app_id in events

	srv    *http.Server
	client *http.Client // posts Events API requests

	ctx       context.Context // cancelled by Close; every goroutine watches it
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup // serve loop, handlers, workers, sockets

	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced on every recorded change

	// workspace
	users    map[string]User
	channels map[string]*channel
	chanIDs  []string // in creation order
	lastTS   int64    // microseconds of the last ts handed out
	uploads  map[string]*upload
	files    map[string]*fileEntry // shared files by ID, for url_private

	// records
	calls      []Call
	deliveries []Delivery
	acks       []Ack
	ignored    []Ack
	notify     []func(Message)

	// scripted failures
	faults map[string][]*faultState
	limits map[string]*rateLimit // by method

	// event delivery
	eventsURL    string
	retryDelay   time.Duration
	queues       map[string]*serialQueue // per channel, plus notifyQueue
	ackTimeout   time.Duration
	withhold     int
	events       map[string]*event    // every event emitted, for Redeliver
	envelopes    map[string]*envelope // sent or queued, not yet acked
	unsent       []*envelope          // waiting for an open socket
	sockets      []*socket            // open, in connection order
	rr           int                  // round robin position over sockets
	connections  int                  // opened since start
	tickets      map[string]bool      // issued, unused
	appRevoked   bool                 // RevokeAppToken
	lost         []string             // event ids of envelopes lost in silent sockets
	pingInterval time.Duration
	refreshEvery time.Duration
}

// NewServer starts a Server on 127.0.0.1 with an empty workspace apart from the
// bot's own user. Add people and conversations with AddUser and AddChannel (Post
// also creates an unknown channel on first use).
func NewServer() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("slacktest: listen on loopback: " + err.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		URL:           "http://" + ln.Addr().String(),
		TeamID:        "T0FAKE0001",
		BotToken:      "xoxb-fake-bot-token",
		AppToken:      "xapp-1-fake-app-token",
		SigningSecret: "5f2b7c9e1a4d8f3b6c0e2a7d9b1f4c8e", // 32 hex digits, like a real one
		BotUserID:     "U0FAKEBOT1",
		BotID:         "B0FAKEBOT1",
		AppID:         "A0FAKEAPP1",
		client:        &http.Client{Transport: &http.Transport{}},
		ctx:           ctx,
		cancel:        cancel,
		changed:       make(chan struct{}),
		users:         map[string]User{},
		channels:      map[string]*channel{},
		uploads:       map[string]*upload{},
		files:         map[string]*fileEntry{},
		faults:        map[string][]*faultState{},
		limits:        map[string]*rateLimit{},
		retryDelay:    defaultRetryDelay,
		queues:        map[string]*serialQueue{},
		ackTimeout:    defaultAckTimeout,
		events:        map[string]*event{},
		envelopes:     map[string]*envelope{},
		tickets:       map[string]bool{},
		pingInterval:  defaultPingInterval,
	}
	s.users[s.BotUserID] = User{
		ID: s.BotUserID, TeamID: s.TeamID, Name: "fakebot", RealName: "Fake Bot",
		DisplayName: "fakebot", IsBot: true, BotID: s.BotID,
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/socket-mode", s.handleSocket)
	mux.HandleFunc("/upload/", s.handleUpload)
	mux.HandleFunc("/files-pri/", s.handleFilePrivate)
	mux.HandleFunc("/signin", s.handleSignin)
	s.srv = &http.Server{
		Handler:           s.track(mux),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       connContext,
		// Close waits for connection goroutines too (net/http lingers up to
		// half a second on a connection closed after an oversized body), so
		// that callers checking for leaked goroutines see none. StateNew runs in
		// the serve loop, which holds a count of s.wg, so the Add is safe.
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.wg.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.wg.Done()
			}
		},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(gateListener{ln}) // returns on Close
	}()
	return s
}

// track counts handlers in s.wg so that Close waits for them, and refuses requests
// once Close has begun (wg.Add must not race with wg.Wait).
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "server closed", http.StatusServiceUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		h.ServeHTTP(w, r)
	})
}

// APIURL is the Web API base, URL + "/api/", as slack.OptionAPIURL takes it.
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Close stops the server: it closes the listener, every socket (abruptly) and
// every pending delivery, and waits for its goroutines, which all stop promptly.
// Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		socks := slices.Clone(s.sockets)
		s.mu.Unlock()
		s.cancel()
		_ = s.srv.Close()
		for _, so := range socks {
			_ = so.conn.CloseNow()
		}
		s.wg.Wait()
		s.client.CloseIdleConnections()
	})
}

// changedLocked wakes WaitFor callers. s.mu must be held.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor calls cond now and again after every recorded change (an API call, a
// post, an ack, a delivery, a socket opening or closing) until it returns true,
// and then returns nil; it returns ctx.Err() when ctx ends first. cond is called
// without the server's lock held, so it may call any Server method.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Notify registers f to be called after every message the app posts (by
// chat.postMessage or files.completeUploadExternal), updates or deletes, with the
// message as stored then. Calls are made one at a time, in the order of the
// changes, outside the server's locks, from a goroutine of the server; f may
// call the Server's methods, and must return (Close waits for it).
func (s *Server) Notify(f func(Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = append(s.notify, f)
}

// notifyLocked queues calls of the Notify functions with m. s.mu must be held.
func (s *Server) notifyLocked(m Message) {
	if len(s.notify) == 0 {
		return
	}
	fs := slices.Clone(s.notify)
	s.enqueueLocked(notifyQueue, func() {
		for _, f := range fs {
			f(m)
		}
	})
}

// notifyQueue is the serialQueue key of Notify calls; channel IDs never start
// with a space.
const notifyQueue = " notify"

// serialQueue runs functions one at a time in the order queued. Its goroutine
// exits when the queue is empty, so idle queues cost nothing.
type serialQueue struct {
	items   []func()
	running bool
}

// enqueueLocked appends f to the queue named key, starting its worker if needed.
// s.mu must be held.
func (s *Server) enqueueLocked(key string, f func()) {
	if s.closed {
		return
	}
	q := s.queues[key]
	if q == nil {
		q = &serialQueue{}
		s.queues[key] = q
	}
	q.items = append(q.items, f)
	if q.running {
		return
	}
	q.running = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			s.mu.Lock()
			if len(q.items) == 0 || s.ctx.Err() != nil {
				q.running = false
				q.items = nil
				s.mu.Unlock()
				return
			}
			f := q.items[0]
			q.items = q.items[1:]
			s.mu.Unlock()
			f()
		}
	}()
}

// goLocked runs f in a goroutine that Close waits for; f must return promptly
// once s.ctx is done. s.mu must be held.
func (s *Server) goLocked(f func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// sleep waits d or until the server closes; it reports whether d elapsed.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}
