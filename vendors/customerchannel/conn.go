package customerchannel

import (
	"context"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// stableAfter is how long a connection must have lasted for the back-off
// to start again from its shortest delay: a server that accepts and drops at
// once must not be redialled in a tight loop.
const stableAfter = 30 * time.Second

// run keeps one Socket.IO connection until ctx is done, reconnecting with
// back-off; each connection registers and rejoins before reading. Every
// redial waits (a jittered, growing delay), also after a connection that was
// up: only one that lasted stableAfter resets the delay.
func (v *Vendor) run(ctx context.Context) {
	defer v.wg.Done()
	opts := sio.Options{URL: v.cfg.URL, EIO: v.cfg.EIO, ConnectTimeout: v.cfg.ConnectTimeout}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		client, err := v.dial(ctx, opts)
		if err == nil {
			err = v.setUp(ctx, client)
		}
		if err != nil {
			v.noteDown(err)
		} else {
			up := time.Now()
			v.read(ctx, client)
			err = client.Err()
			v.noteDown(err)
			if time.Since(up) >= stableAfter {
				attempt = 0
			}
		}
		if ctx.Err() != nil {
			return
		}
		d := v.backoff(attempt)
		if err != nil {
			v.log.Warn("chat server connection lost or failed, will retry", zap.Duration("in", d), zap.Error(connector.Redacted(err)))
		}
		sleep(ctx, d)
	}
}

// setUp registers the connector and rejoins every live conversation; only
// then is the client used for sending.
func (v *Vendor) setUp(ctx context.Context, client sio.Client) error {
	reg := map[string]string{"id": v.cfg.ConnectorID, "name": v.cfg.ConnectorName, "channel": v.cfg.ConnectorChannel}
	if err := client.Emit(ctx, evRegister, reg); err != nil {
		client.Close()
		return err
	}
	v.mu.Lock()
	sessions := make([]session, 0, len(v.live))
	for _, l := range v.live {
		sessions = append(sessions, l.s)
	}
	v.client, v.lastErr = client, ""
	v.connects++
	v.mu.Unlock()
	for _, s := range sessions {
		if err := v.join(ctx, s); err != nil {
			client.Close()
			return err
		}
	}
	v.log.Info("connected to the chat server", zap.Int("eio", v.cfg.EIO), zap.Int("rejoined", len(sessions)))
	return nil
}

// read handles the connection's events in order until it ends.
func (v *Vendor) read(ctx context.Context, client sio.Client) {
	for {
		select {
		case <-ctx.Done():
			client.Close()
			return
		case ev, ok := <-client.Events():
			if !ok {
				return
			}
			v.handle(ctx, ev)
		}
	}
}

func (v *Vendor) noteDown(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.client = nil
	if err != nil {
		v.lastErr = connector.RedactError(err)
	}
}

// backoff is 250ms doubling to reconnect_max, less a random part of up to
// half: many connectors dropped at once by one server do not come back in
// step.
func (v *Vendor) backoff(attempt int) time.Duration {
	d := min(250*time.Millisecond<<min(attempt, 10), v.cfg.ReconnectMax)
	return d - time.Duration(rand.Float64()*0.5*float64(d))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
