package customerchannel

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// run keeps one Socket.IO connection until ctx is done, under
// connector.Supervise: the reconnect waits and the health are the core's.
func (v *Vendor) run(ctx context.Context) {
	defer v.wg.Done()
	if err := connector.Supervise(ctx, v.cfg.reconnect(), &v.status, v.log, v.connect); err != nil {
		v.log.Error("chat server connection given up", zap.Error(err))
	}
}

// connect makes and serves one connection: it registers the connector and
// rejoins every live conversation before reading, and is up once the
// namespace is connected and registerConnector has been sent.
func (v *Vendor) connect(ctx context.Context, up func()) error {
	client, err := v.dial(ctx, sio.Options{URL: v.cfg.URL, EIO: v.cfg.EIO, ConnectTimeout: v.cfg.ConnectTimeout})
	if err != nil {
		return err
	}
	defer client.Close()
	defer v.setClient(nil)
	gen, err := v.setUp(ctx, client, up)
	if err != nil {
		return err
	}
	v.read(ctx, client, gen)
	return client.Err()
}

// setUp registers the connector and rejoins every live conversation. The
// client is published for sending in the same step as the conversations to
// rejoin are listed, so that one opened meanwhile is joined exactly once:
// either here or by Open itself. It returns the connection's number.
func (v *Vendor) setUp(ctx context.Context, client sio.Client, up func()) (uint64, error) {
	reg := map[string]string{"id": v.cfg.ConnectorID, "name": v.cfg.ConnectorName, "channel": v.cfg.ConnectorChannel}
	if err := client.Emit(ctx, evRegister, reg); err != nil {
		return 0, err
	}
	v.mu.Lock()
	sessions := make([]session, 0, len(v.live))
	for _, l := range v.live {
		sessions = append(sessions, l.s)
	}
	v.client = client
	v.gen++
	gen := v.gen
	v.changedLocked()
	v.mu.Unlock()
	up()
	for _, s := range sessions {
		if err := v.join(ctx, s); err != nil {
			return 0, err
		}
	}
	v.log.Info("connected to the chat server", zap.Int("eio", v.cfg.EIO), zap.Int("rejoined", len(sessions)))
	return gen, nil
}

// read handles the connection's events in order until it ends or ctx is
// done, and watches the joins of connection gen for their answer: one left
// unanswered is a chat the server lost (lost.go).
func (v *Vendor) read(ctx context.Context, client sio.Client, gen uint64) {
	w := newWatch(v.cfg.SendConfirmTimeout)
	defer w.timer.Stop()
	for ctx.Err() == nil { // not one more event once stopping
		v.takeJoins(w, gen)
		var ev sio.Event
		expired := false
		select {
		case <-ctx.Done():
			return
		case <-v.kick:
			continue
		case <-w.arm():
			expired = true
		case e, ok := <-client.Events():
			if !ok {
				return
			}
			ev = e
		}
		start := time.Now()
		if expired {
			for _, chat := range w.expired() {
				v.lose(ctx, chat, gen)
			}
		} else if chat, answer := v.handle(ctx, ev); answer {
			w.answered(chat)
			if chat == "" {
				v.blind(gen)
			}
		}
		w.busy += time.Since(start) // the sink may have held us: not the server's time
	}
}

func (v *Vendor) setClient(c sio.Client) {
	v.mu.Lock()
	v.client = c
	v.changedLocked()
	v.mu.Unlock()
}
