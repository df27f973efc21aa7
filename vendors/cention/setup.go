package cention

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
	"github.com/connectord/connectord/connector/netguard"
	"github.com/connectord/connectord/connector/wsock"
)

var (
	_ connector.Vendor        = (*Vendor)(nil)
	_ connector.Resumer       = (*Vendor)(nil)
	_ connector.MessageLeaver = (*Vendor)(nil)
	_ connector.Checker       = (*Vendor)(nil)
)

// Kind is the "cention" vendor kind for the daemon's registry.
func Kind() connector.VendorKind { return connector.NewVendorKind("cention", Build, Defaults) }

// maxMemProgress bounds the send-progress records kept in memory when the
// vendor is built without the core's store.
const maxMemProgress = 4096

// Vendor is one [vendors.cention.NAME] instance: one chat socket per
// conversation, and canchat for Health and before every new chat.
type Vendor struct {
	name     string
	cfg      *settings
	log      *zap.Logger
	sink     connector.EventSink
	progress connector.SendProgress
	client   *http.Client // Cention: the sockets and the HTTP calls
	// fetchClient fetches customers' files for upload; it refuses internal
	// addresses. Tests replace it.
	fetchClient *http.Client

	// group ends with Stop; every chat's socket lives under it: chats start
	// in Open and Resume, whose own contexts end when they return.
	group *connector.Group
	// dialer opens every chat socket; keep pings them all, from one
	// goroutine; bufs holds the frame buffers the sockets read into and
	// write from (conn.getBuf).
	dialer *websocket.Dialer
	keep   *keepalive.Keepalive
	bufs   wsock.Buffers

	mu       sync.Mutex
	sessions map[int64]*session
	// opened keeps, by conversation, the token of a register whose answer
	// Open did not see: the retry resumes that chat instead of starting a
	// second one. lost keeps the token of a chat Cention refused to resume,
	// so that a Send or Resume for it meanwhile returns ErrChatLost at once.
	// Both are bounded and forgotten when the conversation is opened again.
	opened  map[int64]string
	lost    map[int64]string
	started bool
	probe   probeResult
}

// probeResult is what the last canchat said, for Health.
type probeResult struct {
	done bool
	err  error
	why  string // why no chat starts now, "" when one can
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
	group := connector.NewGroup()
	v := &Vendor{
		name: env.Instance.FullName(), cfg: cfg, log: log, sink: env.Sink, progress: progress,
		client: &http.Client{
			// REST calls, one per busy conversation at once, and the chats'
			// WebSocket dials (an open socket leaves the pool).
			Transport: connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections,
				TLS: cfg.tls, TLSHandshakeTimeout: cfg.ConnectTimeout}),
			// A redirect would carry the Origin elsewhere; Cention's calls do not redirect.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		fetchClient: &http.Client{Timeout: cfg.RequestTimeout, CheckRedirect: netguard.LimitRedirects(3),
			Transport: connector.SizePool(netguard.New(nil).Transport(), cfg.HTTPConnections)},
		group: group, dialer: wsock.NewDialer(cfg.tls, cfg.ConnectTimeout), keep: keepalive.New(cfg.PingInterval, group),
		sessions: map[int64]*session{}, opened: map[int64]string{}, lost: map[int64]string{},
	}
	return v, nil
}

// Name is the instance name, "cention.cloud".
func (v *Vendor) Name() string { return v.name }

// Start starts the canchat probe that Health reads, and returns; chats
// connect when opened or resumed.
func (v *Vendor) Start(context.Context) error {
	v.mu.Lock()
	v.started = true
	v.mu.Unlock()
	if !v.group.Go(v.probeLoop) {
		return errStopped
	}
	return nil
}

// Stop drops every socket at once, without close chat (the chats are
// resumed on the next start), and waits for every goroutine within ctx.
func (v *Vendor) Stop(ctx context.Context) error {
	defer v.client.CloseIdleConnections()
	defer v.fetchClient.CloseIdleConnections()
	if err := v.group.Stop(ctx); err != nil {
		return fmt.Errorf("cention %w", err)
	}
	return nil
}

// Health is ready while canchat answers and every live chat has its
// socket; otherwise it says how many chat sockets are down and why the
// first is. It does not block.
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
		return chats.Trouble("chat sockets", "reconnecting")
	case !started:
		return connector.Health{Detail: "not started"}
	case !p.done:
		return connector.Health{Detail: "checking cention"}
	case p.err != nil:
		return connector.Health{Detail: "cention canchat: " + connector.RedactError(p.err)}
	}
	detail := fmt.Sprintf("%d chats connected", chats.Total)
	if p.why != "" {
		detail += "; new chats refused now: " + p.why
	}
	return connector.Health{Ready: true, Detail: detail}
}

// probeLoop asks canchat now and every health_interval.
func (v *Vendor) probeLoop(ctx context.Context) {
	tick := time.NewTicker(v.cfg.HealthInterval)
	defer tick.Stop()
	for {
		cc, err := v.canChat(ctx)
		if ctx.Err() != nil {
			return
		}
		p := probeResult{done: true, err: err}
		if err == nil {
			p.why, _ = cc.refusal()
		}
		v.mu.Lock()
		if (v.probe.err == nil) != (err == nil) || !v.probe.done {
			if err != nil {
				v.log.Warn("cention unreachable", zap.String("error", connector.RedactError(err)))
			} else {
				v.log.Info("cention reachable", zap.String("refusing", p.why))
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

// take removes and returns the conversation's session, and forgets its
// half-opened and lost chats: it is being opened again, ended, or left a
// message.
func (v *Vendor) take(id int64) *session {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.sessions[id]
	delete(v.sessions, id)
	delete(v.opened, id)
	delete(v.lost, id)
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

// maxRemembered bounds the opened and lost maps. Forgetting an entry costs
// at most a second chat (opened) or a dial (lost).
const maxRemembered = 4096

func remember(m map[int64]string, id int64, token string) {
	if _, known := m[id]; !known && len(m) >= maxRemembered {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[id] = token
}

func (v *Vendor) keepOpened(id int64, token string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	remember(v.opened, id, token)
}

func (v *Vendor) halfOpened(id int64) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.opened[id]
}

// markLost records that Cention refused to resume chat token of
// conversation id and, in the same step, removes s (when not nil) if it is
// still the conversation's session.
func (v *Vendor) markLost(id int64, token string, s *session) {
	v.mu.Lock()
	defer v.mu.Unlock()
	remember(v.lost, id, token)
	if s != nil && v.sessions[id] == s {
		delete(v.sessions, id)
	}
}

func (v *Vendor) isLost(id int64, token string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.lost[id]
	return ok && t == token
}

// deliver commits e through the sink, which itself retries a store that
// refuses for a moment; an error means ctx ended or e can never be stored.
func (v *Vendor) deliver(ctx context.Context, e connector.Event) error {
	if v.sink == nil {
		return connector.Permanent(errors.New("cention vendor has no event sink"))
	}
	if err := v.sink.Event(ctx, e); err != nil {
		return fmt.Errorf("commit %s event: %w", e.Type, err)
	}
	return nil
}
