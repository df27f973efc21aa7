package ximatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Defaults of Config.
const (
	DefaultAPIKey         = "test-api-key"
	DefaultInstallationID = "test-installation"
	DefaultRegion         = "us-east-1"
	DefaultStillHereLimit = 30 * time.Second
	DefaultCredentialTTL  = time.Hour
	DefaultVisibility     = 30 * time.Second // SQS's default visibility timeout

	// Account is the AWS account id in queue URLs and ARNs.
	Account = "123456789012"
	// SessionCookie is the name of the browser-session cookie /chat/apiqueue
	// sets and /chat/end needs.
	SessionCookie = "JSESSIONID"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	APIKey         string        // /chat/apiqueue's apiKey must equal it; default "test-api-key"
	InstallationID string        // the one installation the server knows; default "test-installation"
	Region         string        // sqsRegion handed out and required in SigV4 scopes; default "us-east-1"
	StillHereLimit time.Duration // a live chat with no still-here for this long dies; default 30s
	CredentialTTL  time.Duration // lifetime of the SQS credentials /chat/queue/auth hands out; default 1h
}

func (c Config) withDefaults() Config {
	if c.APIKey == "" {
		c.APIKey = DefaultAPIKey
	}
	if c.InstallationID == "" {
		c.InstallationID = DefaultInstallationID
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.StillHereLimit <= 0 {
		c.StillHereLimit = DefaultStillHereLimit
	}
	if c.CredentialTTL <= 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	return c
}

// Server is a fake Xima web chat backend: the REST API on URL and the SQS
// queues on SQSEndpoint. All its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	ctx    context.Context // canceled by Close: ends long polls
	cancel context.CancelFunc
	rest   *listener
	sqs    *listener
	calls  sync.WaitGroup // handlers running; Add only while !closed, under mu

	mu       sync.Mutex
	closed   bool
	changed  chan struct{} // closed and replaced whenever anything is recorded
	chats    []*chat       // in start order
	byID     map[string]*chat
	sessions map[string]*chat    // browser session cookie -> the chat it holds
	queues   map[string]*queue   // by name
	handles  map[string]*message // every receipt handle ever issued
	creds    sqsCreds
	requests []Request
	sqsCalls []SQSCall
	faults   faults
	polling  int // ReceiveMessage calls waiting right now
	received int
	deleted  int
	lastSent time.Time // SentTimestamps are strictly increasing
}

// listener is one HTTP server of the fake.
type listener struct {
	ln net.Listener
	hs *http.Server
	wg sync.WaitGroup
}

func listen(h http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ximatest: %w", err)
	}
	l := &listener{ln: ln, hs: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.hs.Serve(ln)
	}()
	return l, nil
}

func (l *listener) url() string { return "http://" + l.ln.Addr().String() }

// close stops the server; handlers still running (long polls) have been told
// to return by the server's context.
func (l *listener) close() {
	l.hs.Close()
	l.wg.Wait()
}

// New starts a Server on two 127.0.0.1 ports (REST and SQS). Close stops it.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ctx: ctx, cancel: cancel, changed: make(chan struct{}),
		byID: make(map[string]*chat), sessions: make(map[string]*chat),
		queues: make(map[string]*queue), handles: make(map[string]*message)}
	s.faults.visibility = DefaultVisibility
	s.creds = newCredentials(time.Now())
	var err error
	if s.rest, err = listen(s.tracked(s.serveREST)); err != nil {
		cancel()
		return nil, err
	}
	if s.sqs, err = listen(s.tracked(s.serveSQS)); err != nil {
		s.rest.close()
		cancel()
		return nil, err
	}
	return s, nil
}

// NewServer starts a Server for a test; t.Cleanup closes it.
func NewServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the base URL of the REST API ("http://127.0.0.1:port"), the
// adapter's base_url; the paths are the document's (/chat/apiqueue, ...).
func (s *Server) URL() string { return s.rest.url() }

// SQSEndpoint is the URL of the fake SQS service, what the SDK's
// BaseEndpoint must be set to. Queue URLs the REST API hands out start with
// it, as real ones start with https://sqs.REGION.amazonaws.com.
func (s *Server) SQSEndpoint() string { return s.sqs.url() }

// Region is the region of the credentials and of the queues.
func (s *Server) Region() string { return s.cfg.Region }

// Close ends long polls, stops both HTTP servers and every still-here timer,
// and waits for the calls in progress. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, c := range s.chats {
		c.stopTimer()
	}
	s.mu.Unlock()
	s.cancel()
	s.rest.close()
	s.sqs.close()
	s.calls.Wait()
}

// tracked counts h's calls so that Close can wait for them; once closed,
// calls are refused with 503.
func (s *Server) tracked(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.calls.Add(1)
		s.mu.Unlock()
		defer s.calls.Done()
		h(w, r)
	})
}

// notifyLocked wakes everything waiting for a change (long polls, Wait).
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait returns nil as soon as cond returns true, re-evaluating it whenever
// the server records something (a REST call, an SQS call, a message put,
// a chat dying), or ctx's error. cond runs without the server's lock held,
// so it may call the server's accessors.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
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
			return fmt.Errorf("ximatest: wait: %w", ctx.Err())
		}
	}
}

// WaitChats waits until at least n chats were started and returns them.
func (s *Server) WaitChats(ctx context.Context, n int) ([]Chat, error) {
	var chats []Chat
	err := s.Wait(ctx, func() bool {
		chats = s.Chats()
		return len(chats) >= n
	})
	return chats, err
}

// WaitLines waits until the chat received at least n customer lines
// (POST /chat) and returns them.
func (s *Server) WaitLines(ctx context.Context, chatID string, n int) ([]string, error) {
	var lines []string
	err := s.Wait(ctx, func() bool {
		c, ok := s.Chat(chatID)
		lines = c.Lines
		return ok && len(lines) >= n
	})
	return lines, err
}

// Request is one recorded REST call.
type Request struct {
	Method string
	Path   string
	Query  string // raw query
	Header http.Header
	Body   []byte
	Status int // what the server answered
	At     time.Time
}

// Requests returns every REST call so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// SQSCall is one recorded SQS call.
type SQSCall struct {
	Op        string // the X-Amz-Target operation, "ReceiveMessage"
	AccessKey string // the access key id of the Authorization header
	QueueURL  string
	ErrorCode string // the query-compatible error code answered, "" on success
	Messages  int    // ReceiveMessage: messages returned
	At        time.Time
}

// SQSCalls returns every SQS call so far, in arrival order.
func (s *Server) SQSCalls() []SQSCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sqsCalls)
}

// Received is how many messages ReceiveMessage handed out, redeliveries
// and duplicates included.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Deleted is how many messages were removed by DeleteMessage(Batch). A
// delete with a stale receipt handle succeeds without removing anything, as
// in SQS, and is not counted.
func (s *Server) Deleted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleted
}

// Polling is how many ReceiveMessage calls are waiting for a message now.
func (s *Server) Polling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

// ErrNoChat is returned by the agent-side methods for a chat the server does
// not have, or no longer has.
var ErrNoChat = errors.New("ximatest: no such chat")

// marshal is json.Marshal without HTML escaping ("<" stays "<"), as Xima's
// and AWS's servers write JSON.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("ximatest: marshal %T: %v", v, err)) // only our own types get here
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// newID returns a random UUID (version 4), the form of Xima's ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
