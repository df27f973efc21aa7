package customerchannel

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// run keeps one Socket.IO connection until ctx is done, under
// connector.Supervise: the reconnect waits and the health are the core's.
// It ends once the workers have (Stop closes their lanes).
func (v *Vendor) run(ctx context.Context) {
	defer v.wg.Done()
	if err := connector.Supervise(ctx, v.cfg.reconnect(), &v.status, v.log, v.connect); err != nil {
		v.log.Error("chat server connection given up", zap.Error(err))
	}
	v.lanes.Close()
	v.lanes.Wait()
}

// connect makes and serves connections until one fails or ctx is done.
// A connection ended because this instance lost the connector role is
// followed at once by a new one (no reconnect wait: nothing failed).
func (v *Vendor) connect(ctx context.Context, up func()) error {
	for {
		err := v.serve(ctx, up)
		if !errors.Is(err, errResigned) || ctx.Err() != nil {
			return err
		}
		v.log.Info("connecting again without registerConnector: another instance is the registered connector")
	}
}

// serve makes and serves one connection: it registers the connector (when
// this instance leads) and rejoins every live conversation before reading,
// and is up once the namespace is connected and, when leading,
// registerConnector has been sent.
func (v *Vendor) serve(ctx context.Context, up func()) error {
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
	if err := v.read(ctx, client, gen); err != nil {
		return err
	}
	return client.Err()
}

// setUp registers the connector when this instance leads and rejoins every
// live conversation. The client is published for sending in the same step
// as the conversations to rejoin are listed, so that one opened meanwhile
// is joined exactly once: either here or by Open itself. A role change
// meanwhile is acted on by the reader (its kick waits). It returns the
// connection's number.
func (v *Vendor) setUp(ctx context.Context, client sio.Client, up func()) (uint64, error) {
	v.mu.Lock()
	lead := v.leadsLocked()
	v.mu.Unlock()
	if lead {
		if err := v.register(ctx, client); err != nil {
			return 0, err
		}
	}
	v.mu.Lock()
	sessions := make([]session, 0, len(v.live))
	for _, l := range v.live {
		sessions = append(sessions, l.s)
	}
	v.client = client
	v.gen++
	gen := v.gen
	if lead {
		v.role.regGen = gen
	}
	v.changedLocked()
	v.mu.Unlock()
	up()
	for _, s := range sessions {
		if err := v.join(ctx, s); err != nil {
			return 0, err
		}
	}
	v.log.Info("connected to the chat server", zap.Int("eio", v.cfg.EIO), zap.Int("rejoined", len(sessions)),
		zap.Bool("registered", lead))
	return gen, nil
}

// read reads the connection's events until it ends or ctx is done and
// hands each to its chat's worker (workers.go); it watches the joins of
// connection gen for their answer, which counts when it is read: one left
// unanswered is a chat the server lost (lost.go). It acts on a change of
// the connector role (lead.go) and returns errResigned when the
// connection must end for it, once the events already received are handed
// over. While the workers hold as much as they may, it reads nothing and
// the watch's clock stands still (the store holds us, not the server).
func (v *Vendor) read(ctx context.Context, client sio.Client, gen uint64) error {
	w := newWatch(v.cfg.SendConfirmTimeout)
	defer w.timer.Stop()
	rw := roomWait{lanes: v.lanes}
	defer rw.stop()
	for ctx.Err() == nil { // not one more event once stopping
		v.takeJoins(w, gen)
		var events <-chan sio.Event
		var expiry <-chan time.Time
		room := rw.wait(ctx)
		if room == nil {
			events, expiry = client.Events(), w.arm()
		} else {
			w.timer.Stop()
		}
		start := time.Now()
		select {
		case <-ctx.Done():
			return nil
		case <-v.kick:
		case <-room:
		case <-v.role.kick:
			if err := v.actOnRole(ctx, client, gen); err != nil {
				if errors.Is(err, errResigned) {
					v.drain(ctx, client, gen)
				}
				return err
			}
		case <-expiry:
			for _, chat := range w.expired() {
				v.lose(ctx, chat, gen)
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			read := time.Now()
			v.dispatch(ctx, ev, gen, w)
			w.busy += time.Since(read) // decoding: not the server's time
		}
		if room != nil {
			w.busy += time.Since(start) // full: the store holds us, not the server
		}
	}
	return nil
}

// drain hands the events client has received and not yet delivered to
// their workers, before the connection is given up: a campaign message the
// server handed this instance while it was still the registered connector
// is not offered again. (One still in the network when the connection
// closes is lost as at any drop: the spec has no acknowledgement.) Join
// verdicts are not taken from it: the next connection rejoins every chat.
func (v *Vendor) drain(ctx context.Context, client sio.Client, gen uint64) {
	// What is buffered now, not what keeps coming: a busy server must not
	// hold the connection open.
	for n := len(client.Events()); n > 0 && ctx.Err() == nil; n-- {
		select {
		case ev, ok := <-client.Events():
			if !ok {
				return
			}
			if in, ok := v.parse(ev, gen); ok {
				v.queue(ctx, in)
			}
		default:
			return
		}
	}
}

func (v *Vendor) setClient(c sio.Client) {
	v.mu.Lock()
	v.client = c
	v.changedLocked()
	v.mu.Unlock()
}
