// Package smstest is a stateful fake of Twilio's Programmable Messaging REST API and of
// the webhooks Twilio posts, for tests and for the demo command.
//
// A Server listens on a loopback address and speaks the 2010-04-01 API that the
// twilio-go client uses: it creates, lists and fetches Message resources, checks HTTP
// basic auth, answers Twilio's error JSON, moves every outbound message through
// queued -> sent -> delivered (or undelivered) and posts signed status callbacks. It
// also plays the customer's side: Inbound and InboundMedia post a signed inbound-SMS
// or MMS webhook exactly as Twilio does, and serve the MMS's media behind basic auth.
// Failures can be scripted with FailNext, SetLatency, SetOptOut(From) and
// SetUndelivered; opt-out keyword replies, per-sender queueing, loop protection
// (14107) and the download of outbound media are switched on in Config. See
// README.md for what is Twilio's documented behaviour and what is the fake's choice.
//
// Choices where Twilio's behaviour is not fully pinned down:
//   - With SetLatency the work happens before the delay: a create is recorded even
//     when the client times out, leaving it an unknown outcome that a list reveals.
//   - date_sent stays null until the message is "sent", so DateSent filters skip
//     queued messages; reconcile by To/From and compare date_created yourself.
//   - The list includes inbound messages (direction "inbound"), newest first.
//   - Status callbacks are retried after a transport error or a 5xx (4 attempts in
//     all); inbound webhooks are posted once (replay them with PostWebhook).
//   - Opt-out is kept per (sender, customer) pair, the sender a number or a
//     Messaging Service; with Config.MessagingServiceSID every number belongs to it.
//   - A message that Twilio fails after creation (14107, 30001, bad media) is
//     answered 201 "queued" and becomes "failed" StatusDelay later.
//
// To point twilio-go at a Server, give its client.Client an *http.Client whose
// RoundTripper rewrites https://api.twilio.com to URL(). twilio-go never closes the
// body of an error answer; with http.Client.Timeout and a RoundTripper that is not an
// *http.Transport, that leaves a goroutine until the timeout after each error (goleak
// sees it). Bound the exchange inside the RoundTripper and buffer the body instead, as
// this package's tests do.
//
// All methods are safe for concurrent use.
package smstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. The zero value is ready to use.
type Config struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// AccountSID is the account the API accepts; default a generated "AC" + 32 hex.
	AccountSID string
	// AuthToken is the account's auth token, the API password and the webhook
	// signing key; default 32 generated hex characters.
	AuthToken string
	// StatusDelay is how long a created message stays "queued" before it is "sent",
	// and again how long it stays "sent" before its final status; default 50ms.
	StatusDelay time.Duration
	// MessagingServiceSID, when set, is sent as MessagingServiceSid in inbound
	// webhooks, as when the receiving number belongs to a Messaging Service. Every
	// number of the fake then belongs to that service (the fake's choice): an opt-out
	// received on any of them blocks the service and all its numbers, as Twilio
	// documents for numbers in a Messaging Service.
	MessagingServiceSID string

	// KeywordReplies makes the fake answer the opt-out, opt-in and help keywords
	// itself, as Twilio does by default on long codes and, customisable, with a
	// Messaging Service's Advanced Opt-Out: the reply is an outbound message from the
	// number the customer wrote to (Sent.AutoReply, direction "outbound-reply"), and
	// with MessagingServiceSID set the inbound webhook carries OptOutType. Off (the
	// default) the fake stays silent, as when Twilio Support turned the replies off.
	KeywordReplies bool

	// MPS is every sender's rate in message segments per second (a US long code: 1);
	// SetMPS overrides it per sender. A create beyond the rate is accepted and queued,
	// as Twilio does: it leaves its sender's queue 1/MPS per segment after the one
	// before (see Departures). 0 (the default) queues nothing.
	MPS float64
	// MaxQueue is how far ahead a sender's queue may run before a create from a
	// number is refused with 21611 (or, through a Messaging Service, the message
	// fails with 30001); default 10h, Twilio's documented limit. Only with MPS.
	MaxQueue time.Duration

	// LoopProtection enables Twilio's error 14107: when more than LoopLimit messages
	// go between the same two numbers each within LoopWindow of the one before, the
	// following ones fail ("failed", error 14107) for LoopWindow. Defaults: 30 and
	// 30s, Twilio's documented figures.
	LoopProtection bool
	LoopLimit      int
	LoopWindow     time.Duration

	// PublicMedia serves inbound media without authentication, as for accounts
	// created before Twilio enforced HTTP basic authentication on media URLs; by
	// default a media URL answers 401 without the account SID and auth token.
	PublicMedia bool
	// MediaRedirect makes a media URL answer 307 to a one-time unauthenticated URL,
	// as Twilio redirects media downloads to its CDN; by default the media URL
	// answers with the content itself.
	MediaRedirect bool
	// FetchMedia makes the fake download every outbound MediaUrl once, as Twilio
	// does, and fail the message when it cannot be used (see MediaFetches). Off by
	// default, so that tests may name URLs that do not exist.
	FetchMedia bool
}

// Server is a running fake Twilio. Create it with New and stop it with Close.
type Server struct {
	cfg    Config
	url    string
	srv    *http.Server
	client *http.Client // posts webhooks and status callbacks

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup // the serve loop, API handlers and message lifecycles
	accepted  atomic.Int64   // connections the API accepted, for Connections

	mu          sync.Mutex
	closed      bool
	msgs        []*message // inbound and outbound, oldest first
	bySID       map[string]*message
	changed     chan struct{} // closed and replaced when an outbound message is recorded
	onSent      []func(Sent)
	callbacks   []Callback
	fail        failure
	latency     time.Duration
	optedOut    map[optOutKey]bool
	undelivered map[string]int
	queues      map[string]*senderQueue // by sender: From, else MessagingServiceSid
	loops       map[pairKey]*loopState
	media       map[string]*storedMedia // by media SID
	cdn         map[string]*storedMedia // by one-time token of MediaRedirect
	fetches     []MediaFetch            // inbound media downloads
	outFetches  map[string][]MediaResult
}

const (
	defaultAddr        = "127.0.0.1:0"
	defaultStatusDelay = 50 * time.Millisecond
	defaultMaxQueue    = 10 * time.Hour
	defaultLoopLimit   = 30
	defaultLoopWindow  = 30 * time.Second
	// webhookTimeout is how long Twilio waits for a webhook's answer.
	webhookTimeout = 15 * time.Second
	// idleConnsPerHost is how many connections to one receiver the fake keeps
	// for its next webhooks and status callbacks. Go's default keeps two, so
	// at hundreds of callbacks a second most connections would serve one
	// request and close, and the receiver would pay for connection churn
	// that Twilio's pooled senders do not cause.
	idleConnsPerHost = 256
)

// New starts a Server listening on cfg.Addr (by default a free loopback port).
func New(cfg Config) (*Server, error) {
	cfg = withDefaults(cfg)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:         cfg,
		url:         "http://" + ln.Addr().String(),
		client:      &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: idleConnsPerHost}, Timeout: webhookTimeout},
		ctx:         ctx,
		cancel:      cancel,
		bySID:       make(map[string]*message),
		changed:     make(chan struct{}),
		optedOut:    make(map[optOutKey]bool),
		undelivered: make(map[string]int),
		queues:      make(map[string]*senderQueue),
		loops:       make(map[pairKey]*loopState),
		media:       make(map[string]*storedMedia),
		cdn:         make(map[string]*storedMedia),
		outFetches:  make(map[string][]MediaResult),
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.accepted.Add(1)
			}
		},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.srv.Serve(ln) // returns http.ErrServerClosed once Close is called
	}()
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if cfg.AccountSID == "" {
		cfg.AccountSID = newSID("AC")
	}
	if cfg.AuthToken == "" {
		cfg.AuthToken = newSID("")
	}
	if cfg.StatusDelay <= 0 {
		cfg.StatusDelay = defaultStatusDelay
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = defaultMaxQueue
	}
	if cfg.LoopLimit <= 0 {
		cfg.LoopLimit = defaultLoopLimit
	}
	if cfg.LoopWindow <= 0 {
		cfg.LoopWindow = defaultLoopWindow
	}
	return cfg
}

// URL returns the base URL of the API, "http://127.0.0.1:port"; the API lives under
// URL()+"/2010-04-01/". Point a client's https://api.twilio.com at it.
func (s *Server) URL() string { return s.url }

// Connections returns how many connections the API has accepted since New:
// a client that reuses its connections opens few.
func (s *Server) Connections() int64 { return s.accepted.Load() }

// AccountSID returns the account SID the API accepts.
func (s *Server) AccountSID() string { return s.cfg.AccountSID }

// AuthToken returns the auth token: the API password and the webhook signing key.
func (s *Server) AuthToken() string { return s.cfg.AuthToken }

// Close stops the listener, aborts delayed answers, pending status changes and
// callbacks in flight, and waits for every goroutine the Server started. Recorded
// messages stay readable. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.srv.Close()
		s.wg.Wait()
		s.client.CloseIdleConnections()
	})
}

// goTrack reports whether the Server is still open and, if so, counts one more
// goroutine that Close must wait for; the caller must call s.wg.Done when it ends.
func (s *Server) goTrack() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// sleep waits for d and reports whether it did, false when Close or ctx came first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil && s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

// newSID returns prefix followed by 32 random hex digits, the shape of Twilio SIDs.
func newSID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
