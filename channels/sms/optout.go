package sms

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// errOptedOut is the error Send returns for a customer who opted out: no
// call is made (Twilio would refuse it with 21610).
type errOptedOut struct{ sender string }

func (e errOptedOut) Error() string {
	return "the customer opted out of SMS from " + e.sender + " (not sent)"
}

// checkOptOut returns a Permanent error when the customer opted out of
// messages from sender, a retryable one when the store cannot say.
func (c *Channel) checkOptOut(ctx context.Context, sender, customer string) error {
	out, err := c.optOuts.OptedOut(ctx, c.name, sender, customer)
	if err != nil {
		return fmt.Errorf("check opt-out: %w", err)
	}
	if out {
		return connector.Permanent(errOptedOut{sender: sender})
	}
	return nil
}

// noteOptedOut records an opt-out that Twilio reported (error 21610), so that
// nothing more is attempted. Failing to record it is logged: Twilio keeps
// refusing, so it is recorded on the next attempt.
func (c *Channel) noteOptedOut(ctx context.Context, sender, customer string) {
	if err := c.optOuts.SetOptOut(ctx, c.name, sender, customer, true); err != nil {
		c.log.Warn("twilio says the customer opted out (21610); recording it failed", zap.String("sender", sender),
			zap.Error(err))
		return
	}
	c.log.Info("twilio says the customer opted out (21610); recorded", zap.String("sender", sender))
}

// memOptOuts keeps opt-outs in memory for a channel built without the
// core (tests, tools): they do not outlive the process.
type memOptOuts struct {
	mu  sync.Mutex
	out map[[3]string]bool
}

var _ connector.OptOuts = (*memOptOuts)(nil)

// maxMemOptOuts bounds the in-memory stand-in. Past it a new opt-out is
// refused (the webhook answers 500) rather than an old one forgotten.
const maxMemOptOuts = 10000

func (m *memOptOuts) SetOptOut(_ context.Context, channel, sender, customer string, out bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil {
		m.out = map[[3]string]bool{}
	}
	k := [3]string{channel, sender, customer}
	if !out {
		delete(m.out, k)
		return nil
	}
	if len(m.out) >= maxMemOptOuts && !m.out[k] {
		return fmt.Errorf("in-memory opt-outs full (%d)", maxMemOptOuts)
	}
	m.out[k] = true
	return nil
}

func (m *memOptOuts) OptedOut(_ context.Context, channel, sender, customer string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out[[3]string{channel, sender, customer}], nil
}
