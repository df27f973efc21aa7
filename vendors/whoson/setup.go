package whoson

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/keepalive"
	"github.com/connectord/connectord/connector/wsock"
)

// probeInterval is how often the server is dialled (and hung up on, no
// command sent) so that Health is honest with no chat open.
const probeInterval = 30 * time.Second

var (
	_ connector.Vendor        = (*Vendor)(nil)
	_ connector.Resumer       = (*Vendor)(nil)
	_ connector.MessageLeaver = (*Vendor)(nil)
	_ connector.Checker       = (*Vendor)(nil)
)

// Kind is the "whoson" vendor kind for the daemon's registry.
func Kind() connector.VendorKind { return connector.NewVendorKind("whoson", Build, Defaults) }

// Vendor is one [vendors.whoson.NAME] instance.
type Vendor struct {
	name   string
	cfg    *settings
	log    *zap.Logger
	sink   connector.EventSink
	dialer *websocket.Dialer // one for every socket; it keeps no connection
	target dialTarget
	// progress keeps how many parts of a split message were written: the
	// core's store, or a bounded one in memory when built without the core.
	// Records are left for the core to drop once the message is recorded
	// sent; in memory, an older one falls out when it is full.
	progress connector.SendProgress

	// keep pings every open socket from one ticker.
	keep *keepalive.Keepalive
	// bufs holds the frame buffers of every socket (wsock.Conn.GetBuf).
	bufs wsock.Buffers

	// group runs every session and socket until Stop. Chats start in Open
	// and Resume, whose own contexts end when they return, and must run
	// until End or Stop.
	group *connector.Group

	mu       sync.Mutex
	sessions map[int64]*session
	// lost names, by conversation, the chat WhosOn was found to have lost,
	// until the conversation is opened again or ended (take): a Send or
	// Resume for that chat meanwhile returns ErrChatLost without a dial.
	lost     map[int64]string
	started  bool
	probed   bool
	probeErr error

	// probeEvery is probeInterval; tests shorten it.
	probeEvery time.Duration
}

// Build validates env.Instance's block and makes the vendor without
// connecting anything. Every configuration problem is returned, joined.
func Build(env connector.VendorEnv) (*Vendor, error) {
	cfg, err := parseConfig(env.Instance)
	if err != nil {
		return nil, err
	}
	log := env.Logger // already names the vendor
	if log == nil {
		log = zap.NewNop()
	}
	progress := env.Progress
	if progress == nil {
		progress = connector.NewMemoryProgress(maxMemProgress)
	}
	target, err := newDialTarget(cfg) // parseConfig checked the url already
	if err != nil {
		return nil, err
	}
	v := &Vendor{
		name: env.Instance.FullName(), cfg: cfg, log: log, sink: env.Sink, progress: progress,
		dialer: wsock.NewDialer(cfg.tls, cfg.ConnectTimeout), target: target,
		group: connector.NewGroup(), sessions: map[int64]*session{}, lost: map[int64]string{}, probeEvery: probeInterval,
	}
	v.keep = keepalive.New(cfg.PingInterval, v.group)
	v.warnInsecure()
	if cfg.APIKey.Empty() {
		log.Warn("whoson api_key is empty; the Chat API requires one from Parker Software")
	}
	return v, nil
}

func (v *Vendor) warnInsecure() {
	if v.cfg.insecureTransport() {
		v.log.Warn("INSECURE: whoson url is ws:// to a host that is not loopback (allow_insecure_transport); "+
			"auth_string, api_key and every chat line travel unencrypted", zap.String("host", v.cfg.host()))
	}
	if v.cfg.InsecureSkipVerify {
		v.log.Warn("INSECURE: whoson insecure_skip_verify is on; the chat server's certificate is NOT checked " +
			"and anyone on the path can read and change every chat. Use ca_file instead.")
	}
}

// Name is the instance name, "whoson.sales".
func (v *Vendor) Name() string { return v.name }

// Start starts the reachability probe and returns; chats connect when
// opened or resumed.
func (v *Vendor) Start(ctx context.Context) error {
	v.mu.Lock()
	v.started = true
	v.mu.Unlock()
	v.warnInsecure()
	if !v.group.Go(v.probeLoop) {
		return errStopped
	}
	return nil
}

// Stop drops every socket at once (no Quit: the chats are resumed on the
// next start) and waits for every goroutine, within ctx. It tolerates a
// vendor that was never started.
func (v *Vendor) Stop(ctx context.Context) error {
	if err := v.group.Stop(ctx); err != nil {
		return fmt.Errorf("whoson %w", err)
	}
	return nil
}

// Health is an aggregate over the open chats, each with its own socket
// under connector.Supervise: ready while every chat that needs a socket has
// one, else how many are down and why the first is (by conversation id).
// With no chat open, the last probe says whether the server is reachable.
// It does not block.
func (v *Vendor) Health() connector.Health {
	v.mu.Lock()
	started, stopped, probed, probeErr := v.started, v.group.Stopped(), v.probed, v.probeErr
	var chats connector.Chats
	for _, s := range v.sessions {
		if !s.wantsConn.Load() {
			continue
		}
		chats.Add(s.id, s.status.Health())
	}
	v.mu.Unlock()
	switch {
	case stopped:
		return connector.Health{Detail: "stopped"}
	case chats.Down > 0:
		return chats.Trouble("chat sockets", "reconnecting")
	case chats.Total > 0:
		return connector.Health{Ready: true, Detail: fmt.Sprintf("%d chats connected", chats.Total)}
	case !started:
		return connector.Health{Detail: "not started"}
	case !probed:
		return connector.Health{Detail: "checking whoson"}
	case probeErr != nil:
		return connector.Health{Detail: "unreachable: " + probeErr.Error()}
	default:
		return connector.Health{Ready: true, Detail: "reachable, no chats open"}
	}
}

// probeLoop dials the server now and every probeEvery, hanging up at once,
// until ctx ends.
func (v *Vendor) probeLoop(ctx context.Context) {
	tick := time.NewTicker(v.probeEvery)
	defer tick.Stop()
	for {
		err := v.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		v.mu.Lock()
		if v.probeErr == nil && err != nil {
			v.log.Warn("whoson unreachable", zap.Error(err))
		} else if v.probeErr != nil && err == nil {
			v.log.Info("whoson reachable again")
		}
		v.probed, v.probeErr = true, err
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (v *Vendor) probe(ctx context.Context) error {
	c, err := v.dial(ctx, v.log)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// session returns the live session of a conversation, or nil.
func (v *Vendor) session(id int64) *session {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sessions[id]
}

// register makes s the conversation's session, stopping an older one. It
// refuses once Stop was called.
func (v *Vendor) register(s *session) bool {
	v.mu.Lock()
	if v.group.Stopped() {
		v.mu.Unlock()
		return false
	}
	old := v.sessions[s.id]
	v.sessions[s.id] = s
	v.mu.Unlock()
	if old != nil {
		old.stop()
	}
	return true
}

// take removes and returns the conversation's session, and forgets a lost
// chat of it: the conversation is being opened again, ended, or left a
// message.
func (v *Vendor) take(id int64) *session {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.sessions[id]
	delete(v.sessions, id)
	delete(v.lost, id)
	return s
}

// maxLost bounds the lost chats remembered. Forgetting one costs only a
// dial: a Resume of it finds it gone again.
const maxLost = 4096

// markLost records that WhosOn lost chat uid of conversation id and, in
// the same step, removes s (when not nil) if it is still the
// conversation's session.
func (v *Vendor) markLost(id int64, uid string, s *session) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, known := v.lost[id]; !known && len(v.lost) >= maxLost {
		for old := range v.lost {
			delete(v.lost, old)
			break
		}
	}
	v.lost[id] = uid
	if s != nil && v.sessions[id] == s {
		delete(v.sessions, id)
	}
}

// isLost reports whether chat uid of conversation id is known lost.
func (v *Vendor) isLost(id int64, uid string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	lost, ok := v.lost[id]
	return ok && lost == uid
}

// forget removes s if it is still the conversation's session.
func (v *Vendor) forget(s *session) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sessions[s.id] == s {
		delete(v.sessions, s.id)
	}
}

// deliver commits e through the sink. The sink itself retries a store that
// refuses for a moment, blocking until e is stored; it returns an error only
// once ctx is done or when e can never be stored (Permanent: the
// conversation is unknown).
func (v *Vendor) deliver(ctx context.Context, e connector.Event) error {
	if v.sink == nil {
		return connector.Permanent(errors.New("whoson vendor has no event sink"))
	}
	if err := v.sink.Event(ctx, e); err != nil {
		return fmt.Errorf("commit %s event: %w", e.Type, err)
	}
	return nil
}
