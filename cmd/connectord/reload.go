package main

import (
	"context"
	"errors"
	"os"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// reloader re-reads the configuration on SIGHUP ("systemctl reload") and
// applies what can change without dropping a socket.
type reloader struct {
	path    string
	level   zap.AtomicLevel
	signals <-chan os.Signal
}

func (rl *reloader) loop(ctx context.Context, d *connector.Daemon, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-rl.signals:
			rl.reload(d, log)
		}
	}
}

// reload applies the configuration file as it is now, or refuses it whole,
// keeping the running one, when it does not pass what check-config checks.
func (rl *reloader) reload(d *connector.Daemon, log *zap.Logger) {
	next, err := connector.LoadConfig(rl.path)
	if err == nil {
		err = errors.Join(checkStore(next), connector.Check(next, registry(), zap.NewNop()))
	}
	if err != nil {
		var problems []string
		for _, p := range connector.Problems(err) {
			problems = append(problems, p.Error())
		}
		log.Error("reload refused: the configuration has problems; still running on the previous one",
			zap.String("config", rl.path), zap.Strings("problems", problems))
		return
	}
	needsRestart, err := d.Reload(next)
	if err != nil {
		log.Error("reload refused; still running on the previous configuration", zap.Error(err))
		return
	}
	if err := rl.level.UnmarshalText([]byte(next.Log.Level)); err != nil {
		log.Error("reload: log level not changed", zap.Error(err))
	}
	if len(needsRestart) > 0 {
		log.Warn("reload: these changes need a restart to apply", zap.Strings("sections", needsRestart))
	}
	log.Info("configuration reloaded: log level, conversation, notices and routes of new conversations",
		zap.String("config", rl.path))
}
