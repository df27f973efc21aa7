package cobrowser

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
	"github.com/connectord/connectord/connector/portspread"
)

var (
	_ connector.Vendor  = (*Vendor)(nil)
	_ connector.Resumer = (*Vendor)(nil)
	_ connector.Checker = (*Vendor)(nil)
)

// Kind is the "cobrowser" vendor kind for the daemon's registry.
func Kind() connector.VendorKind { return connector.NewVendorKind("cobrowser", Build, Defaults) }

// maxMemProgress bounds the send-progress records kept in memory when the
// vendor is built without the core's store.
const maxMemProgress = 4096

// Vendor is one [vendors.cobrowser.NAME] instance: REST calls to the Public
// API to start a chat, and one XMPP stream per chat.
type Vendor struct {
	name     string
	cfg      *settings
	log      *zap.Logger
	sink     connector.EventSink
	api      *api
	progress connector.SendProgress
	blocks   *blockList
	pinger   *keepalive.Keepalive
	wsPool   *sync.Pool  // WebSocket write buffers, lent for one message
	reads    readBuffers // the streams' read buffers, lent while a stanza arrives
	// dialer opens every chat's TCP connection, with its local port from a
	// window of the range (see connector/portspread): a vendor's chats all
	// go to one XMPP server.
	dialer *portspread.Dialer

	// group ends with Stop; every chat's stream lives under it: chats start
	// in Open and Resume, whose own contexts end when they return.
	group *connector.Group

	mu       sync.Mutex
	sessions map[int64]*session
	// opened keeps, by conversation, a chat created at CoBrowser whose Open
	// did not finish (the XMPP login failed): the retry logs in with it
	// instead of taking a second agent slot. Bounded; forgotten on take.
	opened  map[int64]sessionState
	surveys map[int64]*surveyWait
	started bool
	probe   probeResult

	// now is time.Now; tests move it.
	now func() time.Time
}

// probeResult is what the last campaign read said, for Health.
type probeResult struct {
	done   bool
	err    error
	active bool
	why    string // why no chat can start now, "" when one can
}

// Build validates env.Instance's block and makes the vendor without
// connecting anything. Every configuration problem is returned, joined.
func Build(env connector.VendorEnv) (*Vendor, error) {
	cfg, err := parseConfig(env.Instance)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	progress := env.Progress
	if progress == nil {
		progress = connector.NewMemoryProgress(maxMemProgress)
	}
	v := &Vendor{
		name: env.Instance.FullName(), cfg: cfg, log: log, sink: env.Sink, progress: progress,
		api: &api{base: cfg.api, token: cfg.APIToken, timeout: cfg.RequestTimeout, client: &http.Client{
			// One REST call per busy conversation at once, at most
			// http_connections per host.
			Transport: connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections,
				TLS: cfg.tls, TLSHandshakeTimeout: cfg.RequestTimeout}),
			// Redirects are not followed: the token header would go along.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}},
		blocks: newBlockList(maxBlocks),
		group:  connector.NewGroup(), sessions: map[int64]*session{}, opened: map[int64]sessionState{},
		surveys: map[int64]*surveyWait{},
		now:     time.Now,
	}
	v.wsPool = &sync.Pool{}
	v.dialer = portspread.New(net.Dialer{})
	v.pinger = keepalive.NewTimeout(cfg.PingInterval, cfg.SendTimeout, v.group)
	v.warnInsecure()
	return v, nil
}

func (v *Vendor) warnInsecure() {
	if v.cfg.InsecureSkipVerify {
		v.log.Warn("INSECURE: cobrowser insecure_skip_verify is on; the XMPP server's and the API's certificates " +
			"are NOT checked and anyone on the path can read and change every chat and take the chats' passwords. " +
			"Use ca_file instead.")
	}
}

// Name is the instance name, "cobrowser.web".
func (v *Vendor) Name() string { return v.name }

// Start starts the campaign probe that Health reads, and returns; chats
// connect when opened or resumed.
func (v *Vendor) Start(context.Context) error {
	v.mu.Lock()
	v.started = true
	v.mu.Unlock()
	v.warnInsecure()
	if !v.group.Go(v.probeLoop) {
		return errStopped
	}
	return nil
}

var errStopped = errors.New("cobrowser vendor stopped")

// Stop drops every stream at once, without closed (the chats are resumed
// on the next start), and waits for every goroutine within ctx.
func (v *Vendor) Stop(ctx context.Context) error {
	defer v.api.client.CloseIdleConnections()
	if err := v.group.Stop(ctx); err != nil {
		return fmt.Errorf("cobrowser: %w", err)
	}
	return nil
}

// Health is ready while the API answers, the campaign is active and every
// chat's stream is up. It does not block.
func (v *Vendor) Health() connector.Health {
	v.mu.Lock()
	started, stopped, p := v.started, v.group.Stopped(), v.probe
	var chats connector.Chats
	for _, s := range v.sessions {
		chats.Add(s.id, s.status.Health())
	}
	v.mu.Unlock()
	switch {
	case stopped:
		return connector.Health{Detail: "stopped"}
	case chats.Down > 0:
		return chats.Trouble("chat streams", "reconnecting")
	case !started:
		return connector.Health{Detail: "not started"}
	case !p.done:
		return connector.Health{Detail: "checking the cobrowser API"}
	case p.err != nil:
		return connector.Health{Detail: "cobrowser API: " + connector.RedactError(p.err)}
	case !p.active:
		return connector.Health{Detail: "the cobrowser campaign is inactive"}
	}
	detail := fmt.Sprintf("%d chats connected", chats.Total)
	if p.why != "" {
		detail += "; new chats wait: " + p.why
	}
	return connector.Health{Ready: true, Detail: detail}
}

// probeLoop reads the campaign now and every health_interval.
func (v *Vendor) probeLoop(ctx context.Context) {
	tick := time.NewTicker(v.cfg.HealthInterval)
	defer tick.Stop()
	for {
		c, err := v.api.campaign(ctx, v.cfg.CampaignID)
		if ctx.Err() != nil {
			return
		}
		p := probeResult{done: true, err: err}
		if c != nil {
			p.active = bool(c.Active)
			_, p.why = c.open()
		}
		v.mu.Lock()
		if (v.probe.err == nil) != (err == nil) || !v.probe.done {
			if err != nil {
				v.log.Warn("cobrowser API unreachable", zap.String("error", connector.RedactError(err)))
			} else {
				v.log.Info("cobrowser API reachable", zap.Bool("campaign_active", p.active))
			}
		}
		v.probe = p
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lifetime is a context that ends with Stop, for work that outlives the
// context at hand (a chat's closed, the stanzas read before a drop).
func (v *Vendor) lifetime() (context.Context, context.CancelFunc) {
	return v.group.Bind(context.Background())
}

func (v *Vendor) session(id int64) *session {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sessions[id]
}

// register makes s the conversation's session, stopping an older one.
func (v *Vendor) register(s *session) bool {
	v.mu.Lock()
	if v.group.Stopped() {
		v.mu.Unlock()
		return false
	}
	old := v.sessions[s.id]
	v.sessions[s.id] = s
	delete(v.opened, s.id)
	v.mu.Unlock()
	if old != nil && old != s {
		old.stop()
	}
	return true
}

// launch registers s and starts it on its first stream, logged in by Open
// or Resume; false when the vendor stopped meanwhile, and then the stream is
// closed: nothing else would close it.
func (v *Vendor) launch(s *session, first *stream) bool {
	if !v.register(s) {
		first.close()
		return false
	}
	return s.start(first)
}

// take removes and returns the conversation's session.
func (v *Vendor) take(id int64) *session {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.sessions[id]
	delete(v.sessions, id)
	delete(v.opened, id)
	return s
}

// forget removes s if it is still the conversation's session.
func (v *Vendor) forget(s *session) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sessions[s.id] == s {
		delete(v.sessions, s.id)
	}
}

// maxOpened bounds the half-opened chats kept for a retry of Open.
const maxOpened = 1024

func (v *Vendor) keepOpened(id int64, st sessionState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, known := v.opened[id]; !known && len(v.opened) >= maxOpened {
		for old := range v.opened {
			delete(v.opened, old)
			break
		}
	}
	v.opened[id] = st
}

func (v *Vendor) halfOpened(id int64) (sessionState, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, ok := v.opened[id]
	return st, ok
}

// deliver commits e through the sink, which itself retries a store that
// refuses for a moment; an error means ctx ended or e can never be stored.
func (v *Vendor) deliver(ctx context.Context, e connector.Event) error {
	if v.sink == nil {
		return connector.Permanent(errors.New("cobrowser vendor has no event sink"))
	}
	if err := v.sink.Event(ctx, e); err != nil {
		return fmt.Errorf("commit %s event: %w", e.Type, err)
	}
	return nil
}
