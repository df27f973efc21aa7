package connector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"
)

// Registry lists the adapter kinds a binary knows; cmd/connectord is the
// only place that fills it.
type Registry struct {
	Channels []ChannelKind
	Vendors  []VendorKind
	// Build is the binary's version; when its Version is empty, the
	// daemon reads it with ReadBuildInfo("").
	Build BuildInfo
}

// Build constructs every configured adapter without connecting anything and
// returns every problem it finds (unknown kinds, adapter validation errors,
// unknown keys), joined.
func Build(cfg *Config, reg Registry, log *zap.Logger, cs ChannelSink, es EventSink) ([]Channel, []Vendor, error) {
	var errs []error
	var channels []Channel
	for _, inst := range cfg.Channels {
		k, ok := findKind(reg.Channels, inst.Kind, func(k ChannelKind) string { return k.Kind })
		if !ok {
			errs = append(errs, &ConfigError{Path: inst.Path, Msg: fmt.Sprintf("unknown channel kind %q (known: %s)", inst.Kind, kindNames(reg.Channels, func(k ChannelKind) string { return k.Kind }))})
			continue
		}
		lister, _ := cs.(ConversationLister)
		progress, _ := cs.(SendProgress)
		optOuts, _ := cs.(OptOuts)
		receipts, _ := cs.(Receipts)
		ch, err := k.Build(ChannelEnv{Instance: inst, Logger: log.With(zap.String("channel", inst.FullName())),
			Sink: cs, Conversations: lister, Progress: progress, OptOuts: optOuts, Receipts: receipts,
			Metrics: registererFor(cs, inst.FullName()), PublicURL: trimSlash(cfg.HTTP.PublicURL)})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		channels = append(channels, ch)
	}
	var vendors []Vendor
	for _, inst := range cfg.Vendors {
		k, ok := findKind(reg.Vendors, inst.Kind, func(k VendorKind) string { return k.Kind })
		if !ok {
			errs = append(errs, &ConfigError{Path: inst.Path, Msg: fmt.Sprintf("unknown vendor kind %q (known: %s)", inst.Kind, kindNames(reg.Vendors, func(k VendorKind) string { return k.Kind }))})
			continue
		}
		outbound, _ := es.(OutboundSink)
		progress, _ := es.(SendProgress)
		v, err := k.Build(VendorEnv{Instance: inst, Logger: log.With(zap.String("vendor", inst.FullName())),
			Sink: es, Outbound: outbound, Progress: progress, Metrics: registererFor(es, inst.FullName())})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkDeliverVia(cfg, inst, v); err != nil {
			errs = append(errs, err)
		}
		vendors = append(vendors, v)
	}
	errs = append(errs, cfg.CheckUnknown()...)
	return channels, vendors, errors.Join(errs...)
}

// registererFor is the registry an adapter registers its own metrics on,
// labelled with its name: the Router's, or a throwaway one (check-config).
func registererFor(sink any, adapter string) prometheus.Registerer {
	reg := prometheus.NewRegistry()
	if r, ok := sink.(*Router); ok {
		reg = r.metrics.Registry
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"adapter": adapter}, reg)
}

// Check validates a configuration the way check-config does: everything is
// built, nothing connects.
func Check(cfg *Config, reg Registry, log *zap.Logger) error {
	r, err := NewRouter(RouterConfig{Logger: log, Conversation: cfg.Conversation, Notices: cfg.Notices, VendorFor: cfg.VendorFor})
	if err != nil {
		return err
	}
	_, _, err = Build(cfg, reg, log, r, r)
	return err
}

// Daemon is the running whole: store, router, adapters and the HTTP server.
type Daemon struct {
	cfg      *Config
	log      *zap.Logger
	store    Store
	metrics  *Metrics
	router   *Router
	channels []Channel
	vendors  []Vendor
	build    BuildInfo

	probe *writeProbe
	// member is this instance's part in a Cluster, nil when it is the
	// store's only instance.
	member *member

	ln       net.Listener
	srv      *http.Server
	adminLn  net.Listener
	adminSrv *http.Server
	served   chan error
	started  atomic.Bool
	inflight atomic.Int64 // webhooks being handled (admit)
	// stopBG ends the probe and retention loops; bg waits for them.
	stopBG context.CancelFunc
	bg     sync.WaitGroup
}

// New builds the daemon; nothing connects until Start. The caller owns store.
func New(cfg *Config, reg Registry, store Store, log *zap.Logger) (*Daemon, error) {
	m := NewMetrics()
	log = observeLogs(log, m)
	probe := newWriteProbe(store, probeInterval, probeBudget, m.StoreWriteFailures.Inc)
	m.AttachStore(store, probe)
	r, err := NewRouter(RouterConfig{Store: store, Logger: log, Conversation: cfg.Conversation,
		Notices: cfg.Notices, VendorFor: cfg.VendorFor, Metrics: m})
	if err != nil {
		return nil, err
	}
	channels, vendors, err := Build(cfg, reg, log, r, r)
	if err != nil {
		return nil, err
	}
	for _, c := range channels {
		r.AddChannel(c)
		m.AddAdapter(c.Name())
		m.AddChannelLimits(c.Name())
	}
	for _, v := range vendors {
		r.AddVendor(v)
		m.AddAdapter(v.Name())
	}
	build := reg.Build
	if build.Version == "" {
		build = ReadBuildInfo("")
	}
	m.AttachBuild(build)
	d := &Daemon{cfg: cfg, log: log, store: store, metrics: m, router: r,
		channels: channels, vendors: vendors, build: build, probe: probe}
	if cl, ok := store.(Cluster); ok && cl.Instance() != "" {
		d.member = newMember(cl, r, log, m, vendors)
		m.AttachOwned(func() float64 { return float64(d.member.owned.Load()) })
	}
	m.AttachHealth(d.checkers)
	return d, nil
}

// Start binds the listener, starts vendors, the router and the channels, then
// serves HTTP. On error, what started is stopped again.
func (d *Daemon) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Daemon.ShutdownTimeout)
			defer cancel()
			d.Shutdown(sctx)
		}
	}()
	if err = d.listen(); err != nil {
		return err
	}
	if err = d.probe.probe(ctx); err != nil {
		return fmt.Errorf("store cannot commit a write: %w", err)
	}
	bgctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stopBG = stop
	d.goBackground(func() { d.probe.run(bgctx) })
	d.goBackground(func() { d.retain(bgctx) })
	if d.member != nil {
		// Before the vendors start: a Singleton must hear that it does not
		// lead yet, and the Router loads only what the lease makes ours.
		if err = d.member.join(ctx); err != nil {
			return err
		}
	}
	for _, v := range d.vendors {
		if err = v.Start(ctx); err != nil {
			return fmt.Errorf("start vendor %s: %w", v.Name(), err)
		}
	}
	if err = d.router.Start(ctx); err != nil {
		return err
	}
	if d.member != nil {
		d.member.start()
	}
	for _, c := range d.channels {
		if err = c.Start(ctx); err != nil {
			return fmt.Errorf("start channel %s: %w", c.Name(), err)
		}
	}
	d.served = make(chan error, 3)
	d.srv = d.newServer(d.publicHandler())
	go func() { d.served <- d.srv.Serve(d.ln) }()
	fields := []zap.Field{zap.String("listen", d.ln.Addr().String())}
	if d.adminLn != nil {
		d.adminSrv = d.newServer(d.adminHandler())
		go func() { d.served <- d.adminSrv.Serve(d.adminLn) }()
		fields = append(fields, zap.String("admin_listen", d.adminLn.Addr().String()))
	}
	d.started.Store(true)
	d.log.Info("connectord started", append(fields,
		zap.Int("channels", len(d.channels)), zap.Int("vendors", len(d.vendors)))...)
	return nil
}

// listen binds http.listen (unless UseListener gave a listener) and
// http.admin_listen (unless it is empty). The public listener takes at most
// http.max_connections at once; the kernel's backlog holds the rest.
func (d *Daemon) listen() error {
	if d.ln == nil {
		ln, err := net.Listen("tcp", d.cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		d.ln = ln
	}
	d.ln = netutil.LimitListener(d.ln, d.cfg.HTTP.MaxConnections)
	if d.cfg.HTTP.AdminListen == "" || d.adminLn != nil {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.HTTP.AdminListen)
	if err != nil {
		return fmt.Errorf("http.admin_listen: %w", err)
	}
	d.adminLn = netutil.LimitListener(ln, 64)
	return nil
}

func (d *Daemon) newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: zap.NewStdLog(d.log.Named("http"))}
}

func (d *Daemon) goBackground(f func()) {
	d.bg.Add(1)
	go func() { defer d.bg.Done(); f() }()
}

// UseListener makes Start serve on ln instead of binding http.listen. The
// demo and tests use it to learn the port before the channels are built with
// a public URL that names it.
func (d *Daemon) UseListener(ln net.Listener) { d.ln = ln }

// Addr is the bound HTTP address (useful with port 0).
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// AdminAddr is the bound admin address; nil when http.admin_listen is empty.
func (d *Daemon) AdminAddr() net.Addr {
	if d.adminLn == nil {
		return nil
	}
	return d.adminLn.Addr()
}

// Run starts the daemon, tells systemd when it is ready, keeps the watchdog
// fed while it makes progress, and drains when ctx is cancelled (SIGTERM).
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		return err
	}
	d.awaitReady(ctx)
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go d.watchdog(wctx)
	var serveErr, leaseErr error
	select {
	case <-ctx.Done():
	case serveErr = <-d.served:
		d.served <- serveErr
		d.log.Error("http server stopped", zap.Error(serveErr))
	case leaseErr = <-d.leaseLost():
	}
	d.notify(daemon.SdNotifyStopping)
	d.log.Info("draining")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Daemon.ShutdownTimeout)
	defer cancel()
	d.Shutdown(sctx)
	d.log.Info("stopped")
	if leaseErr != nil {
		return fmt.Errorf("stopped because %w", leaseErr)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", serveErr)
	}
	return nil
}

// Shutdown drains: intake stops first, in-flight work finishes (or stays in
// the outbox), then connections close. It tolerates a half start.
func (d *Daemon) Shutdown(ctx context.Context) {
	d.started.Store(false)
	shutdownServer(ctx, d.log, d.srv, d.ln)
	shutdownServer(ctx, d.log, d.adminSrv, d.adminLn)
	for _, c := range d.channels {
		if err := c.Stop(ctx); err != nil {
			d.log.Warn("stop channel", zap.String("channel", c.Name()), zap.Error(err))
		}
	}
	d.router.Stop(ctx)
	for _, v := range d.vendors {
		if err := v.Stop(ctx); err != nil {
			d.log.Warn("stop vendor", zap.String("vendor", v.Name()), zap.Error(err))
		}
	}
	if d.member != nil {
		d.member.stop(ctx)
	}
	if d.stopBG != nil {
		d.stopBG()
		d.bg.Wait()
	}
}

// leaseLost reports this instance's lease lost; never with one instance.
func (d *Daemon) leaseLost() <-chan error {
	if d.member == nil {
		return nil
	}
	return d.member.lost
}

// shutdownServer stops srv, or closes ln when srv never started.
func shutdownServer(ctx context.Context, log *zap.Logger, srv *http.Server, ln net.Listener) {
	switch {
	case srv != nil:
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("http shutdown", zap.Error(err))
		}
	case ln != nil:
		ln.Close()
	}
}

// awaitReady tells systemd READY=1 once /readyz would say ready, waiting at
// most daemon.ready_wait; meanwhile STATUS= says what it waits for. After the
// wait it reports READY=1 anyway, naming what is not ready: webhooks are
// already taken and stored, and a vendor that is down must not make systemd
// kill a daemon that is doing that. /readyz keeps answering 503 until then.
func (d *Daemon) awaitReady(ctx context.Context) {
	deadline := time.Now().Add(d.cfg.Daemon.ReadyWait)
	said := ""
	for {
		rd := d.Ready(ctx)
		if rd.Ready {
			d.notify("STATUS=ready")
			d.notify(daemon.SdNotifyReady)
			return
		}
		if ctx.Err() != nil {
			return // stopping before it was ready: Run drains next
		}
		missing := rd.notReady()
		if time.Now().After(deadline) {
			d.log.Warn("not every adapter is ready; telling systemd the daemon is up anyway",
				zap.Duration("ready_wait", d.cfg.Daemon.ReadyWait), zap.String("not_ready", missing))
			d.notify("STATUS=serving; not ready: " + missing)
			d.notify(daemon.SdNotifyReady)
			return
		}
		if status := "waiting for " + missing; status != said {
			d.notify("STATUS=" + status)
			said = status
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Daemon) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		d.log.Warn("sd_notify", zap.String("state", state), zap.Error(err))
	}
}

// watchdog sends WATCHDOG=1 only while the router's loop turns and the store
// answers, so systemd restarts a daemon that is wedged rather than idle.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	tick := time.NewTicker(interval / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := d.progressing(interval / 2); err != nil {
			d.log.Warn("watchdog withheld", zap.Error(err))
			continue
		}
		d.notify(daemon.SdNotifyWatchdog)
	}
}

func (d *Daemon) progressing(limit time.Duration) error {
	if since := time.Since(d.router.Alive()); since > limit {
		return fmt.Errorf("router loop has not turned for %s", since.Round(time.Millisecond))
	}
	if h := d.probe.Health(); !h.Ready {
		return fmt.Errorf("store: %s", h.Detail)
	}
	return nil
}

func findKind[K any](kinds []K, name string, kindOf func(K) string) (K, bool) {
	for _, k := range kinds {
		if kindOf(k) == name {
			return k, true
		}
	}
	var zero K
	return zero, false
}

func kindNames[K any](kinds []K, kindOf func(K) string) string {
	s := ""
	for i, k := range kinds {
		if i > 0 {
			s += ", "
		}
		s += kindOf(k)
	}
	return s
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// checkDeliverVia refuses a vendor whose deliver-via channel does not exist:
// its campaign messages would otherwise fail one by one at run time.
func checkDeliverVia(cfg *Config, inst Instance, v Vendor) error {
	d, ok := v.(Deliverer)
	if !ok {
		return nil
	}
	via, key := d.DeliverVia()
	if via == "" {
		return nil
	}
	var names []string
	for _, c := range cfg.Channels {
		if c.FullName() == via {
			return nil
		}
		names = append(names, c.FullName())
	}
	return inst.Errorf(key, "names no configured channel %q (configured: %s)", via, strings.Join(names, ", "))
}
