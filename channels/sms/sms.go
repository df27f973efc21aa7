// Package sms is the Twilio SMS channel: customers write to a Twilio number,
// Twilio calls the channel's webhooks, and the channel answers through
// Twilio's REST API (its own small client of the Messages resource and its
// own webhook signature check). See README.md.
package sms

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/medialink"
)

// Kind is the "sms" channel kind: one Channel per [channels.sms.NAME] block.
func Kind() connector.ChannelKind { return connector.NewChannelKind("sms", New, Defaults) }

// Channel is one Twilio SMS channel instance. It is safe for concurrent use.
type Channel struct {
	name      string // "sms.main"
	path      string // "/sms/main", the inbound webhook's path
	cfg       Config
	log       *zap.Logger
	sink      connector.ChannelSink
	publicURL string
	client    *http.Client    // every API call; redirects are not followed
	transport *http.Transport // client's; Stop closes its idle connections

	started atomic.Bool
	// lastFailure is the last API call's network or auth failure, "" after a
	// call that reached Twilio.
	lastFailure atomic.Pointer[string]

	// progress keeps what earlier attempts at a message achieved: the core's
	// store, or ownProgress when the channel is built without the core.
	progress    connector.SendProgress
	ownProgress *connector.MemoryProgress // nil when the core keeps progress
	// begun: when a call began whose answer never came, by message, so
	// that the next attempt looks before sending (see Send).
	begun *recentTimes

	metrics  *metrics
	keywords *keywords
	// optOuts is the core's store of opt-outs, or memOptOuts without it.
	optOuts connector.OptOuts
	pacer   *pacer

	// receipts says where the stored customer messages end; nil without
	// the core (no catch-up).
	receipts connector.Receipts

	links        *medialink.Signer
	media        *http.Client // media fetches for links
	mediaRefused *connector.Template
	catchUpNow   chan struct{} // a catch-up is wanted soon
	stopLoops    context.CancelFunc
	loops        sync.WaitGroup
}

var (
	_ connector.Channel     = (*Channel)(nil)
	_ connector.HTTPChannel = (*Channel)(nil)
	_ connector.Splitter    = (*Channel)(nil)
	_ connector.Renderer    = (*Channel)(nil)
	_ connector.Checker     = (*Channel)(nil)
)

// New builds a channel from env without contacting Twilio. Configuration
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
	m, err := newMetrics(env.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%s: register metrics: %w", env.Instance.Path, err)
	}
	kw, err := newKeywords(cfg)
	if err != nil { // checkKeywords parsed the templates already
		return nil, fmt.Errorf("%s: %w", env.Instance.Path, err)
	}
	refused, err := connector.ParseTemplate("media_refused_notice", cfg.MediaRefusedNotice, refusedMedia{})
	if err != nil { // checkMedia parsed it already
		return nil, fmt.Errorf("%s: %w", env.Instance.Path, err)
	}
	// One pool for API calls, sized for as many sends at once as there are
	// busy conversations; media downloads (slow, and redirected to Twilio's
	// CDN) get their own, so that they never hold the API's connections.
	t := connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections})
	c := &Channel{
		links:        medialink.New(cfg.AuthToken.Reveal(), env.Instance.FullName()+" media", cfg.MediaLinkTTL),
		media:        newMediaClient(cfg, connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections})),
		mediaRefused: refused,
		metrics:      m,
		keywords:     kw,
		pacer:        newPacer(cfg),
		receipts:     env.Receipts,
		catchUpNow:   make(chan struct{}, 1),
		optOuts:      env.OptOuts,
		name:         env.Instance.FullName(),
		path:         "/sms/" + env.Instance.Name,
		cfg:          cfg,
		log:          log,
		sink:         env.Sink,
		publicURL:    env.PublicURL,
		client: &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: t,
		progress:  env.Progress,
		begun:     newRecentTimes(maxRecentCalls),
	}
	if c.optOuts == nil {
		c.optOuts = &memOptOuts{}
	}
	if c.progress == nil {
		c.ownProgress = connector.NewMemoryProgress(maxMemProgress)
		c.progress = c.ownProgress
	}
	return c, nil
}

// Name returns the instance name, "sms.main".
func (c *Channel) Name() string { return c.name }

// Start marks the channel started and begins catching up, in the
// background, on what Twilio received while connectord was unreachable.
// Intake is webhooks, which the core serves, so there is nothing to
// connect.
func (c *Channel) Start(context.Context) error {
	if c.started.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopLoops = cancel
	c.loops.Go(func() { c.catchUpLoop(ctx) })
	return nil
}

// Stop marks the channel stopped, ends the catch-up and closes idle API and media
// connections. It tolerates a channel that was never started.
func (c *Channel) Stop(context.Context) error {
	if c.started.Swap(false) {
		c.stopLoops()
		c.loops.Wait()
	}
	c.transport.CloseIdleConnections()
	c.media.CloseIdleConnections()
	return nil
}

// Health is ready once Start ran, unless the last API call failed on the
// network or with an authentication error. Webhooks need no socket.
func (c *Channel) Health() connector.Health {
	if !c.started.Load() {
		return connector.Health{Detail: "not started"}
	}
	if f := c.lastFailure.Load(); f != nil && *f != "" {
		return connector.Health{Detail: "last send failed: " + *f}
	}
	return connector.Health{Ready: true}
}

// noteAPI records how an API call ended for Health: failure "" means it
// reached Twilio (whatever Twilio answered).
// A call that got through after one that did not triggers a catch-up:
// connectord was likely unreachable for Twilio's webhooks too.
func (c *Channel) noteAPI(failure string) {
	if prev := c.lastFailure.Swap(&failure); prev != nil && *prev != "" && failure == "" {
		c.triggerCatchUp()
	}
}

// statusCallbackURL is the URL Twilio reports delivery to, or "" when
// status_callback is off or no public URL is configured.
func (c *Channel) statusCallbackURL() string {
	if !c.cfg.StatusCallback || c.publicURL == "" {
		return ""
	}
	return c.publicURL + c.path + "/status"
}
