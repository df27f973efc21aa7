package customerchannel

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// Several connectord instances may share one store. Each keeps its own
// connection for the conversations it owns, but only one at a time may be
// the registered connector: the server offers campaign messages to the
// registered connector, and with several registered it would offer each to
// all of them. The core names that one through connector.Singleton. The
// spec has no way to unregister, so an instance that loses the role drops
// its connection and connects again without registering; its chats are
// rejoined as after any reconnect, and the join's history replay plus the
// confirmation of customer lines (confirm.go) keep every line once.

var _ connector.Singleton = (*Vendor)(nil)

// errResigned ends a registered connection whose instance lost the
// connector role; connect dials again at once, without registering.
var errResigned = errors.New("customerchannel: no longer the registered connector")

// role is what the vendor was told about the connector role. Its zero
// value is a single instance: it leads and was never told otherwise.
type role struct {
	told     bool          // Lead was called: instances share the store
	follower bool          // told Lead(false): another instance registers
	regGen   uint64        // the connection registerConnector went out on; 0 for none
	kick     chan struct{} // buffered 1: wakes the reader when the role changed
}

// Lead records whether this instance is the registered connector and wakes
// the connection, which acts on it: a leader registers on the live
// connection (and on every connect, as a single instance does); one that
// loses the role while registered ends the connection and connects again
// without registering. Lead does not wait for either.
func (v *Vendor) Lead(ctx context.Context, lead bool) {
	v.mu.Lock()
	changed := !v.role.told || v.role.follower == lead
	v.role.told, v.role.follower = true, !lead
	v.mu.Unlock()
	if !changed {
		return
	}
	v.log.Info("connector role", zap.Bool("lead", lead))
	select {
	case v.role.kick <- struct{}{}:
	default:
	}
}

// leadsLocked reports whether this instance registers as the connector.
// v.mu is held.
func (v *Vendor) leadsLocked() bool { return !v.role.follower }

// register emits registerConnector on client.
func (v *Vendor) register(ctx context.Context, client sio.Client) error {
	reg := map[string]string{"id": v.cfg.ConnectorID, "name": v.cfg.ConnectorName, "channel": v.cfg.ConnectorChannel}
	if err := client.Emit(ctx, evRegister, reg); err != nil {
		return fmt.Errorf("emit %s: %w", evRegister, connector.Redacted(err))
	}
	return nil
}

// actOnRole brings connection gen in line with the role, on the reader's
// goroutine: a leader not registered on it registers now; a follower
// registered on it gets errResigned, which ends the connection.
func (v *Vendor) actOnRole(ctx context.Context, client sio.Client, gen uint64) error {
	v.mu.Lock()
	lead, registered := v.leadsLocked(), v.role.regGen == gen
	v.mu.Unlock()
	switch {
	case lead && !registered:
		if err := v.register(ctx, client); err != nil {
			return err
		}
		v.mu.Lock()
		if v.gen == gen {
			v.role.regGen = gen
		}
		v.mu.Unlock()
		v.log.Info("registered as the connector on the live connection")
	case !lead && registered:
		return errResigned
	}
	return nil
}

// roleDetailLocked adds the role to a ready connection's health detail once
// instances share the store; a single instance's detail is unchanged.
// v.mu is held.
func (v *Vendor) roleDetailLocked() string {
	switch {
	case !v.role.told:
		return ""
	case v.client != nil && v.role.regGen == v.gen:
		return ", the registered connector"
	case v.role.follower:
		return ", not the registered connector (another instance is)"
	}
	return ", registering as the connector"
}
