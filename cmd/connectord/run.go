package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	path, err := configFlag("run", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	log, level, err := newLogger(cfg.Log, cfg.Daemon.InstanceID)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, cfg, log, nil, &reloader{path: path, level: level, signals: hup})
}

// serve runs the daemon until ctx is cancelled, on ln when it is not nil
// (else it binds http.listen itself). It owns ln. With rl, SIGHUP reloads
// the configuration.
func serve(ctx context.Context, cfg *connector.Config, log *zap.Logger, ln net.Listener, rl *reloader) error {
	closeLn := func() {
		if ln != nil {
			ln.Close()
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		closeLn()
		return err
	}
	defer store.Close()
	d, err := connector.New(cfg, registry(), store, log)
	if err != nil {
		closeLn()
		return err
	}
	if ln != nil {
		d.UseListener(ln)
	}
	if rl != nil {
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go rl.loop(rctx, d, log)
	}
	return d.Run(ctx)
}

// loadConfig loads and prints every configuration error at once. A
// ${NAME} whose variable is unset fails only where the adapter needs the key
// as configured; elsewhere it is a warning.
func loadConfig(path string, stderr io.Writer) (*connector.Config, error) {
	x := connector.ExpanderFor(path)
	unset := map[string]string{} // key path -> variable
	x.Unset, x.UnsetEmpty = func(key, name string) { unset[key] = name }, true
	cfg, err := connector.LoadConfigWith(path, x)
	if err == nil {
		err = errors.Join(checkStore(cfg), connector.Check(cfg, registry(), zap.NewNop()))
	}
	if err != nil {
		printErrors(stderr, path, blameUnset(err, unset))
		return nil, errReported
	}
	for _, key := range slices.Sorted(maps.Keys(unset)) {
		fmt.Fprintf(stderr, "%s: warning: %s: environment variable %s is not set; the key is not used as configured\n", path, key, unset[key])
	}
	return cfg, nil
}

// blameUnset says "environment variable X is not set" for a key whose
// complaint comes from its variable being unset.
func blameUnset(err error, unset map[string]string) error {
	var out []error
	for _, e := range connector.Problems(err) {
		var ce *connector.ConfigError
		if errors.As(e, &ce) && unset[ce.Path] != "" {
			e = &connector.ConfigError{Path: ce.Path, Msg: "environment variable " + unset[ce.Path] + " is not set"}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

func printErrors(w io.Writer, path string, err error) {
	errs := connector.Problems(err)
	fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(errs))
	for _, e := range errs {
		fmt.Fprintf(w, "  %v\n", e)
	}
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var connect bool
	path, err := configFlags("check-config", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&connect, "connect", false, "also connect to the store's database and check its schema version")
	})
	if err != nil {
		return err
	}
	x := connector.ExpanderFor(path)
	x.Unset = func(key, name string) {
		fmt.Fprintf(stderr, "%s: warning: %s: environment variable %s is not set; run refuses to start without it where the key is used as configured\n", path, key, name)
	}
	cfg, err := connector.LoadConfigWith(path, x)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if cfg != nil {
		errs = append(errs, checkStore(cfg))
		errs = append(errs, connector.Check(cfg, registry(), zap.NewNop()))
	}
	if connect && errors.Join(errs...) == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		errs = append(errs, checkConnect(cctx, cfg, stdout))
		cancel()
	}
	if err := errors.Join(connector.Problems(errors.Join(errs...))...); err != nil {
		printErrors(stderr, path, err)
		return errReported
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

// newLogger builds the daemon's logger; the level it returns changes the
// logger's level on a reload.
func newLogger(lc connector.LogConfig, instance string) (*zap.Logger, zap.AtomicLevel, error) {
	var zc zap.Config
	if lc.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true // a trace on every warning buries the message
	} else {
		zc = zap.NewProductionConfig()
	}
	if err := zc.Level.UnmarshalText([]byte(lc.Level)); err != nil {
		return nil, zc.Level, fmt.Errorf("log.level: %w", err)
	}
	zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	zc.Sampling = nil // the daemon samples its own logs, counting what it drops
	log, err := zc.Build()
	if err != nil {
		return nil, zc.Level, err
	}
	if instance == "" {
		instance, _ = os.Hostname()
	}
	return log.With(zap.String("instance", instance)), zc.Level, nil
}
