// Package slack is the Slack channel: people write in a Slack channel's
// threads (also Slack Connect channels) or in a DM to the app, and agents
// answer in the same thread or DM. Events arrive over Socket Mode or the
// Events API; replies go out through the Web API. See README.md.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/netguard"
)

// Kind is the "slack" channel kind: one Channel per [channels.slack.NAME] block.
func Kind() connector.ChannelKind { return connector.NewChannelKind("slack", New, Defaults) }

// Channel is one Slack app installation. It is safe for concurrent use.
type Channel struct {
	name      string // "slack.support"
	key       string // "channels.slack.support": the block, for errors naming a key
	path      string // "/slack/support"
	cfg       Config
	log       *zap.Logger
	sink      connector.ChannelSink
	lister    connector.ConversationLister // nil: no catch-up
	publicURL string
	channels  map[string]bool // configured channel ids

	http *http.Client // Web API, Socket Mode, uploads
	// slackFiles fetches customers' files from Slack with the bot token;
	// fetcher fetches agents' attachments, never from an internal address
	// unless fetch_allow says so, and without the token.
	slackFiles, fetcher *http.Client
	api                 *slack.Client
	pace                *pacer
	names               *nameCache
	lanes               *connector.Lanes[string] // Socket Mode events, in order per conversation
	// typingLanes order one conversation's typing indicator changes.
	typingLanes *connector.Lanes[string]
	links       *linkSigner

	self  atomic.Pointer[identity] // nil until auth.test answered
	known chan struct{}            // closed once self is set

	apiFailure atomic.Pointer[string] // the last Web API call's auth or network failure; "" after a success
	socket     connector.Status       // the Socket Mode session, kept by connector.Supervise
	// stale says why the newest socket was found dead, until the next
	// hello; nil while it is not.
	stale atomic.Pointer[string]
	// firstURL is the Socket Mode URL Start got, for the first dial.
	firstURL atomic.Pointer[string]

	// progress keeps what earlier attempts at each message achieved: the
	// core's store, or ownProgress when built without the core.
	progress    connector.SendProgress
	ownProgress *connector.MemoryProgress // nil when the core keeps progress

	mu sync.Mutex
	// Each bounded to maxRemembered entries, least recently used forgotten:
	// a forgotten DM costs one more conversations.open, a forgotten typing
	// indicator one left for catch-up to delete.
	typing   *lru[address, string] // conversations showing "typing…": the indicator's ts
	dms      *lru[string, string]  // user id -> the app's DM channel with them
	started  time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopped  bool
	catching atomic.Bool // a catch-up pass is running
}

// identity is who the app is in the workspace, from auth.test.
type identity struct {
	UserID, BotID, TeamID string
}

var (
	_ connector.Channel      = (*Channel)(nil)
	_ connector.HTTPChannel  = (*Channel)(nil)
	_ connector.Checker      = (*Channel)(nil)
	_ connector.NoticeMarker = (*Channel)(nil)
	_ connector.Splitter     = (*Channel)(nil)
	_ connector.Renderer     = (*Channel)(nil)
	_ connector.Resolver     = (*Channel)(nil)
)

// New builds a channel from env without contacting Slack. Configuration
// problems are returned joined, each a *connector.ConfigError.
func New(env connector.ChannelEnv) (*Channel, error) {
	cfg, err := decodeConfig(env.Instance)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	// Three pools, each of http_connections per host: Web API calls (one
	// per busy conversation at once), downloads from Slack's file hosts and
	// agents' attachments, so that slow files never hold the API's
	// connections. slack-go closes a large answer without reading its end,
	// which would cost the connection: DrainOnClose reads it.
	hc := &http.Client{Timeout: cfg.RequestTimeout,
		Transport: connector.DrainOnClose(connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections}))}
	opts := []slack.Option{slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(hc)}
	if cfg.SocketMode() {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken.Reveal()))
	}
	c := &Channel{
		name: env.Instance.FullName(), key: env.Instance.Path, path: "/slack/" + env.Instance.Name, cfg: cfg, log: log,
		sink: env.Sink, lister: env.Conversations, publicURL: env.PublicURL,
		channels: map[string]bool{}, http: hc,
		api:      slack.New(cfg.BotToken.Reveal(), opts...),
		pace:     newPacer(cfg.PostInterval),
		links:    newLinkSigner(cfg.BotToken.Reveal(), cfg.FileLinkTTL),
		known:    make(chan struct{}),
		progress: env.Progress,
		typing:   newLRU[address, string](maxRemembered, 0),
		dms:      newLRU[string, string](maxRemembered, 0),
	}
	if c.progress == nil {
		c.ownProgress = connector.NewMemoryProgress(maxRemembered)
		c.progress = c.ownProgress
	}
	c.lanes = connector.NewLanes(connector.LanesOptions[string]{MaxCount: maxQueued, MaxBytes: maxQueuedBytes, OnPanic: c.lanePanic})
	c.typingLanes = connector.NewLanes(connector.LanesOptions[string]{MaxCount: maxTypingQueued, OnPanic: c.lanePanic})
	c.slackFiles = newSlackFileClient(&c.cfg, connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections}))
	c.fetcher = &http.Client{Timeout: cfg.FetchTimeout, CheckRedirect: netguard.LimitRedirects(maxRedirects),
		Transport: connector.SizePool(netguard.New(cfg.fetchAllow).Transport(), cfg.HTTPConnections)}
	c.names = newNameCache(c.api, time.Hour, maxCachedNames)
	for _, id := range cfg.Channels {
		c.channels[id] = true
	}
	return c, nil
}

// Name returns the instance name, "slack.support".
func (c *Channel) Name() string { return c.name }

// MarksNotices says that the channel shows conversation states as reactions.
func (c *Channel) MarksNotices() {}

// Start asks Slack who the app is, then starts intake: the Socket Mode
// connection, or (Events API) nothing, since the core serves the webhook.
// A bot token Slack rejects fails Start, and so does (Socket Mode) an app
// token that apps.connections.open refuses, with an error naming the key.
// An unreachable Slack does not: Start keeps trying in the background and
// Health says so; an app token refused only then (or later, revoked) leaves
// the channel not ready, naming the key, while it retries.
func (c *Channel) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.cancel != nil || c.stopped {
		c.mu.Unlock()
		return errors.New("slack channel started twice or after Stop")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel, c.started = cancel, time.Now()
	c.mu.Unlock()

	first, err := c.identify(ctx)
	if err != nil && authError(err) {
		return fmt.Errorf("slack %s: bot_token rejected by auth.test: %w", c.name, err)
	}
	if first == nil {
		c.log.Warn("Slack not reachable yet; retrying in the background", zap.Error(err))
	} else if err := c.checkAppToken(ctx); err != nil {
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if first == nil && !c.identifyLoop(runCtx) {
			return
		}
		if c.cfg.SocketMode() {
			c.runSocket(runCtx)
			return
		}
		defer c.recoverPanic("catch-up")
		c.catchUp(runCtx)
	}()
	return nil
}

// checkAppToken, in Socket Mode, gets the first socket's URL from
// apps.connections.open and keeps it for the first dial. Slack refusing the
// token is returned, naming the key; any other failure is left to the
// socket's own retries.
func (c *Channel) checkAppToken(ctx context.Context) error {
	if !c.cfg.SocketMode() {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	u, err := c.openSocket(octx)
	var refused *appTokenError
	switch {
	case err == nil:
		c.firstURL.Store(&u)
	case errors.As(err, &refused):
		return refused // without the retry's wait: there is none
	default:
		c.log.Warn("apps.connections.open failed; the socket retries", zap.Error(err))
	}
	return nil
}

// Stop closes the socket, waits for running work and closes idle API
// connections; unacknowledged events are redelivered by Slack. It tolerates
// a channel that was never started.
func (c *Channel) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopped = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); c.lanes.Wait(); c.typingLanes.Wait(); c.names.close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("slack %s: stop: %w", c.name, ctx.Err())
	}
	c.http.CloseIdleConnections()
	c.slackFiles.CloseIdleConnections()
	c.fetcher.CloseIdleConnections()
	return nil
}

// Health reports the real state: the app's identity known, the Socket Mode
// connection open (Socket Mode), and the last Web API call not failing on
// authentication or the network.
func (c *Channel) Health() connector.Health {
	c.mu.Lock()
	started, stopped := c.cancel != nil, c.stopped
	c.mu.Unlock()
	switch {
	case !started || stopped:
		return connector.Health{Detail: "not started"}
	case c.self.Load() == nil:
		return connector.Health{Detail: "auth.test has not answered: " + c.lastAPIFailure()}
	}
	h := connector.Health{Ready: true, Detail: "events over HTTP"}
	if c.cfg.SocketMode() {
		if s := c.socket.Health(); !s.Ready {
			return connector.Health{Detail: "socket mode: " + s.Detail}
		}
		if why := c.stale.Load(); why != nil {
			return connector.Health{Detail: *why}
		}
		h.Detail = "socket mode connected"
	}
	if f := c.lastAPIFailure(); f != "" {
		return connector.Health{Detail: "Web API: " + f}
	}
	return h
}

func (c *Channel) lastAPIFailure() string {
	if f := c.apiFailure.Load(); f != nil {
		return *f
	}
	return ""
}

// noteAPI records how a Web API call ended, for Health: only network and
// authentication failures count; Slack answering anything else is fine.
func (c *Channel) noteAPI(err error) {
	failure := ""
	if err != nil && (authError(err) || unknownOutcome(err)) {
		failure = connector.RedactError(err) // Health shows it: no URL query or userinfo
	}
	if old := c.apiFailure.Load(); old == nil || *old != failure {
		c.apiFailure.Store(&failure)
	}
}

// Routes are the Events API webhook (when not in Socket Mode) and the links
// agents open customers' files with.
func (c *Channel) Routes() map[string]http.Handler {
	r := map[string]http.Handler{"GET " + c.path + "/files/{id}/{name}": http.HandlerFunc(c.serveFile)}
	if !c.cfg.SocketMode() {
		r["POST "+c.path+"/events"] = http.HandlerFunc(c.serveEvents)
	}
	return r
}

// identify calls auth.test once and remembers the answer.
func (c *Channel) identify(ctx context.Context) (*identity, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	r, err := c.api.AuthTestContext(ctx)
	c.noteAPI(err)
	if err != nil {
		return nil, err
	}
	id := &identity{UserID: r.UserID, BotID: r.BotID, TeamID: r.TeamID}
	if c.self.CompareAndSwap(nil, id) {
		close(c.known)
		c.log.Info("slack app identified", zap.String("bot_user", id.UserID), zap.String("team", id.TeamID))
	}
	return id, nil
}

// identifyLoop retries auth.test until it answers; false means stopped.
func (c *Channel) identifyLoop(ctx context.Context) bool {
	for attempt := 0; ; attempt++ {
		if _, err := c.identify(ctx); err == nil {
			return true
		} else if attempt%10 == 0 {
			c.log.Warn("auth.test failed, will retry", zap.Error(err))
		}
		if !sleep(ctx, backoff(attempt)) {
			return false
		}
	}
}

// backoff is 250ms doubling to 30s, with up to 25% jitter.
func backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond << min(attempt, 7)
	d = min(d, 30*time.Second)
	return d - time.Duration(float64(d)*0.25*jitter())
}

// sleep waits d or until ctx is done; false means ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// goCatchUp runs a catch-up pass in the background, tracked by Stop.
func (c *Channel) goCatchUp(ctx context.Context) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.recoverPanic("catch-up")
		c.catchUp(ctx)
	}()
}

// recoverPanic, deferred, stops a panic from killing the daemon: it is
// logged with its stack and what it was doing, and the work is left undone
// (an unacked envelope is redelivered, a catch-up pass runs again on the
// next start or hello). It must be deferred directly.
func (c *Channel) recoverPanic(what string) {
	if v := recover(); v != nil {
		c.log.Error("panic recovered in "+what, zap.Any("panic", v), zap.Stack("stack"))
	}
}

// lanePanic reports a panic in one lane function (an envelope's commit,
// which is then not acked; a typing change).
func (c *Channel) lanePanic(key string, v any) {
	c.log.Error("panic recovered in a lane; its event is not acked and Slack will redeliver it",
		zap.String("lane", key), zap.Any("panic", v), zap.Stack("stack"))
}
